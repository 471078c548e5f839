"""The blog export publishes as is (issue #11, item 10).

* ``--base-url`` joins with exactly one slash, with or without a trailing slash;
* one form per page (Markdown or Hugo shortcodes): each figure renders once;
* figures in notebook order: notebook number, then the order the notebook saved them;
* GIF/MP4 animations are listed (with or without a sidecar);
* alt text describes the picture (the sidecar's alt, title or caption), never the file name;
* quick-mode figures are marked and never replace a quality figure of the same name.

Issue #24 item 5 and issue #25 (robustness round three), on the published ``docs/figures`` and on
tiny files written here: no broken link (sidecars name ``x.png``, publishing wrote ``x.jpg``);
``--output`` (never replaced without ``--overwrite``) and one line saying where; animations in both
formats; alt text on every image; quick figures marked; a FIFO, folder, device or socket named
``*.json`` never hangs the export and a sidecar that parses but does not fit is one warning, not a
traceback; sidecar text and ``--base-url`` never become markup (shortcodes, ``<script>``, attributes).
"""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nst_tf import figures  # noqa: E402
from nst_tf.errors import ConfigError  # noqa: E402


def _save(root, name, notebook, caption="", quick=False, **kw):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    try:
        return figures.save_figure(
            fig, name, notebook=notebook, caption=caption, root=root, quick=quick, **kw
        )
    finally:
        plt.close(fig)


def _frames(n=3, size=8):
    return [np.full((size, size, 3), 40 * i, np.uint8) for i in range(n)]


def _links(text):
    return re.findall(r"\]\(([^)]+)\)|src=\"([^\"]+)\"", text)


@pytest.mark.parametrize("base", ["https://blog.example/img/nst", "https://blog.example/img/nst/"])
def test_base_url_with_or_without_trailing_slash(tmp_path, base):
    _save(tmp_path, "loss_terms", "03_style_transfer", caption="Loss terms per step")
    for fmt in figures.EXPORT_FORMATS:
        text = figures.export_markdown(tmp_path, base_url=base, fmt=fmt).read_text()
        assert "https://blog.example/img/nst/03_style_transfer/loss_terms.png" in text, text
        assert "nst//" not in text and "nst03" not in text


def test_join_url():
    assert figures.join_url("", "01_x/a.png") == "01_x/a.png"
    assert (
        figures.join_url("/img", "01_x/a.png") == figures.join_url("/img/", "01_x/a.png") == "/img/01_x/a.png"
    )
    assert figures.join_url("/img/", "01_x/a b.png") == "/img/01_x/a%20b.png"


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_each_figure_appears_once(tmp_path, fmt):
    _save(tmp_path, "a", "01_content_reconstruction", caption="First")
    _save(tmp_path, "b", "01_content_reconstruction", caption="Second")
    text = figures.export_markdown(tmp_path, fmt=fmt).read_text()
    for name in ("a.png", "b.png"):
        assert text.count(name) == 1, text
    assert "```" not in text  # Hugo expands shortcodes even inside code blocks
    assert ("{{< figure" in text) == (fmt == "hugo")


def test_unknown_format_is_refused(tmp_path):
    _save(tmp_path, "a", "01_content_reconstruction", caption="x")
    with pytest.raises(ConfigError, match="markdown or hugo"):
        figures.export_markdown(tmp_path, fmt="html")


def test_notebook_order_then_saving_order(tmp_path):
    # saved out of alphabetical order, and the later notebook first
    _save(tmp_path, "zeta", "02_texture_synthesis", caption="2z")
    _save(tmp_path, "zulu", "01_content_reconstruction", caption="1z")
    _save(tmp_path, "alpha", "01_content_reconstruction", caption="1a")
    _save(tmp_path, "beta", "02_texture_synthesis", caption="2b")
    text = figures.export_markdown(tmp_path).read_text()
    headings = re.findall(r"^## (\S+): (\S+)$", text, re.MULTILINE)
    assert headings == [
        ("01_content_reconstruction", "zulu"),
        ("01_content_reconstruction", "alpha"),
        ("02_texture_synthesis", "zeta"),
        ("02_texture_synthesis", "beta"),
    ]
    orders = [json.loads((tmp_path / nb / f"{n}.json").read_text())["order"] for nb, n in headings[:2]]
    assert orders[0] < orders[1]


def test_animations_are_exported(tmp_path):
    nb = "02_texture_synthesis"
    gif = figures.save_animation(
        _frames(),
        "texture_growing",
        notebook=nb,
        caption="A texture growing from noise",
        root=tmp_path,
        quick=False,
    )
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert json.loads(gif.with_suffix(".json").read_text())["kind"] == "animation"
    # a GIF written without a sidecar (animation.save_animation straight into the folder) is listed too
    from nst_tf.animation import save_animation

    save_animation(_frames(), tmp_path / nb / "optimisation.gif", fps=5)
    text = figures.export_markdown(tmp_path).read_text()
    assert f"![A texture growing from noise]({nb}/texture_growing.gif)" in text
    assert f"]({nb}/optimisation.gif)" in text
    assert text.index("texture_growing") < text.index("optimisation")  # sidecar order first


def test_mp4_becomes_a_video_element(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    nb = "03_style_transfer"
    figures.save_animation(
        _frames(size=16),
        "optimisation",
        notebook=nb,
        caption="The optimisation, step by step",
        formats=("mp4", "gif"),
        root=tmp_path,
        quick=False,
    )
    for fmt in figures.EXPORT_FORMATS:
        text = figures.export_markdown(tmp_path, base_url="/v/", fmt=fmt).read_text()
        assert f'<video src="/v/{nb}/optimisation.mp4" title="The optimisation, step by step"' in text
        assert f'<img src="/v/{nb}/optimisation.gif"' in text  # fallback inside the video element
        assert text.count("<video") == 1


def test_alt_text_describes_the_picture_not_the_file(tmp_path):
    nb = "01_content_reconstruction"
    _save(tmp_path, "layer_grid", nb, caption="Reconstructions from conv1_1 to conv5_1")
    _save(tmp_path, "noise_start", nb, caption="Short", alt="Grey noise turning into a cat, five steps")
    _save(tmp_path, "no_words", nb)
    md = figures.export_markdown(tmp_path).read_text()
    hugo = figures.export_markdown(tmp_path, fmt="hugo").read_text()
    assert "![Reconstructions from conv1_1 to conv5_1](" in md
    assert "![Grey noise turning into a cat, five steps](" in md
    assert 'alt="Grey noise turning into a cat, five steps" caption="Short"' in hugo
    alts = re.findall(r"!\[([^\]]*)\]", md) + re.findall(r'alt="([^"]*)"', hugo)
    assert alts and not [a for a in alts if re.search(r"layer_grid|noise_start|no_words|\.png", a)], alts


def test_alt_text_is_escaped(tmp_path):
    _save(tmp_path, "x", "01_content_reconstruction", caption='A [bracketed] "quoted"\ncaption {{< x >}}')
    md = figures.export_markdown(tmp_path).read_text()
    assert '![A &#91;bracketed&#93; "quoted" caption &#123;&#123;&lt; x &gt;&#125;&#125;](' in md
    assert "{{<" not in md  # a Hugo site would run it as a shortcode
    hugo = figures.export_markdown(tmp_path, fmt="hugo").read_text()
    assert hugo.count("{{<") == 1  # only the figure shortcode itself


def test_quick_figures_are_marked_and_never_replace_quality_ones(tmp_path, capsys):
    nb = "03_style_transfer"
    quality = _save(tmp_path, "weight_sweep", nb, caption="quality", quick=False)
    before = quality.read_bytes()
    quick = _save(tmp_path, "weight_sweep", nb, caption="quick", quick=True)
    assert quick != quality and quick.parent == tmp_path / nb / "quick"
    assert quality.read_bytes() == before
    assert json.loads(quality.with_suffix(".json").read_text())["quick"] is False
    assert json.loads(quick.with_suffix(".json").read_text())["quick"] is True
    lines = [line for line in capsys.readouterr().out.splitlines() if "quick mode" in line]
    assert len(lines) == 1 and "kept the quality figure" in lines[0]
    # a quick save over a quick one just replaces it; over nothing it goes to the usual place
    assert _save(tmp_path, "other", nb, caption="q1", quick=True) == tmp_path / nb / "other.png"
    assert _save(tmp_path, "other", nb, caption="q2", quick=True) == tmp_path / nb / "other.png"


def test_quick_mode_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_QUICK", "1")
    path = _save(tmp_path, "a", "01_content_reconstruction", caption="x", quick=None)
    assert json.loads(path.with_suffix(".json").read_text())["quick"] is True
    monkeypatch.setenv("NST_QUICK", "0")
    path = _save(tmp_path, "b", "01_content_reconstruction", caption="x", quick=None)
    assert json.loads(path.with_suffix(".json").read_text())["quick"] is False


def test_export_leaves_quick_figures_out_unless_asked(tmp_path, capsys):
    nb = "01_content_reconstruction"
    _save(tmp_path, "quality_one", nb, caption="q", quick=False)
    _save(tmp_path, "quick_one", nb, caption="k", quick=True)
    text = figures.export_markdown(tmp_path).read_text()
    assert "quality_one" in text and "quick_one" not in text
    assert "left out 1 quick-mode figure" in capsys.readouterr().out
    assert "quick_one" in figures.export_markdown(tmp_path, include_quick=True).read_text()


def test_export_with_only_quick_figures_says_so(tmp_path):
    _save(tmp_path, "k", "01_content_reconstruction", caption="k", quick=True)
    with pytest.raises(ConfigError, match="quality mode"):
        figures.export_markdown(tmp_path)


def test_cli_format_and_include_quick(tmp_path, capsys):
    from nst_tf.cli import main

    _save(tmp_path, "k", "01_content_reconstruction", caption="Quick one", quick=True)
    argv = ["figures", "--root", str(tmp_path), "--base-url", "/b", "--format", "hugo", "--include-quick"]
    assert main(argv) == 0
    assert "FIGURES.md" in capsys.readouterr().out
    assert (
        '{{< figure src="/b/01_content_reconstruction/k.png" alt="Quick one"'
        in (tmp_path / "FIGURES.md").read_text()
    )


# ----------------------------------------------------------------------------- issue #24 item 5, issue #25
# The export publishes the committed reference figures, and hostile figure folders neither hang it,
# nor crash it, nor inject markup into the page.
import html.parser  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import urllib.parse  # noqa: E402
from pathlib import Path  # noqa: E402

PUBLISHED = Path(__file__).resolve().parent.parent / "docs" / "figures"
HUGO_FIGURE = re.compile(
    r'^\{\{< figure src="([^"]*)" alt="([^"]*)" caption="([^"]*)"( class="nst-quick")? >\}\}$'
)


def _png(path, size=4):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (200, 40, 40)).save(path)
    return path


def _sidecar(folder, stem, **fields):
    """A sidecar written by hand (as a hostile or broken one would be), next to a tiny PNG."""
    meta = {"name": stem, "notebook": folder.name, "kind": "image", "caption": "", "alt": ""}
    meta.update(files=[f"{stem}.png"], order=0, quick=False, created="2026-01-01T00:00:00")
    meta.update(fields)
    _png(folder / f"{stem}.png")
    (folder / f"{stem}.json").write_text(json.dumps(meta))


def _all_links(text):
    return [a or b for a, b in _links(text)] + re.findall(r'href="([^"]+)"', text)


def _target(link, base, page_dir):
    """The file a link on the page names (base URL stripped, percent-decoding undone)."""
    if base:
        assert link.startswith(base), link
        return PUBLISHED / urllib.parse.unquote(link[len(base) :])
    return page_dir / urllib.parse.unquote(link)


class _Tags(html.parser.HTMLParser):
    """Every element and attribute in rendered HTML, and every <img>'s alt."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.alts, self.text = set(), set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs |= {name for name, _ in attrs}
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))

    def handle_data(self, data):
        self.text.append(data)


def _render(markdown_text):
    """The page as a CommonMark renderer with raw HTML on (Hugo with unsafe) shows it."""
    markdown_it = pytest.importorskip("markdown_it")
    parser = _Tags()
    parser.feed(markdown_it.MarkdownIt("commonmark").render(markdown_text))
    return parser


def _cli(argv, timeout=60):
    """``python -m nst_tf ARGV`` in a child process: a hang fails the test instead of stalling it."""
    return subprocess.run(
        [sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("fmt", ["hugo", "markdown"])
def test_published_reference_figures_have_no_broken_link(tmp_path, fmt, capsys):
    """docs/figures: the sidecars name x.png, publishing wrote x.jpg: every link must name a file there."""
    sidecars = sorted(PUBLISHED.glob("*/*.json"))
    assert sidecars, "docs/figures has no published figures"
    base = "/x/" if fmt == "hugo" else ""
    out = tmp_path / "site" / "content" / "figures.md"  # not next to the figures: relative links from here
    path, count = figures.export_page(PUBLISHED, out, base_url=base, fmt=fmt)
    assert path == out and count == len(sidecars)
    text = out.read_text()
    links = _all_links(text)
    assert len(links) == len(sidecars), links
    broken = [link for link in links if not _target(link, base, out.parent).is_file()]
    assert not broken, f"{len(broken)} of {len(links)} links are broken: {broken[:3]}"
    assert "warning" not in capsys.readouterr().err
    if fmt == "hugo":
        shortcodes = [line for line in text.splitlines() if line.startswith("{{<")]
        assert len(shortcodes) == len(sidecars) and all(HUGO_FIGURE.match(s) for s in shortcodes)
        assert all(HUGO_FIGURE.match(s).group(2) for s in shortcodes)  # every image has alt text


def test_published_set_with_animations_reaches_the_page(tmp_path):
    """The published figures plus a GIF with a sidecar and one without: all reach both page forms."""
    root = tmp_path / "figures"
    shutil.copytree(PUBLISHED, root)
    nb = "03_style_transfer"
    figures.save_animation(
        _frames(),
        "optimisation",
        notebook=nb,
        caption="The optimisation, step by step",
        root=root,
        quick=False,
    )
    from nst_tf.animation import save_animation

    save_animation(_frames(), root / nb / "no_sidecar.gif", fps=5)
    for fmt in figures.EXPORT_FORMATS:
        out, count = figures.export_page(root, tmp_path / f"{fmt}.md", base_url="/x", fmt=fmt)
        text = out.read_text()
        assert count == len(list(PUBLISHED.glob("*/*.json"))) + 2
        for name in ("optimisation.gif", "no_sidecar.gif"):
            assert text.count(f"/x/{nb}/{name}") == 1, (fmt, name)
        for link in _all_links(text):
            assert (root / urllib.parse.unquote(link[len("/x/") :])).is_file(), link
        if fmt == "hugo":
            assert f'{{{{< figure src="/x/{nb}/optimisation.gif" alt="The optimisation, step by step"' in text


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_animations_in_both_formats(tmp_path, fmt):
    nb = "02_texture_synthesis"
    figures.save_animation(
        _frames(), "texture_growing", notebook=nb, caption="A texture growing", root=tmp_path, quick=False
    )
    from nst_tf.animation import save_animation

    save_animation(_frames(), tmp_path / nb / "optimisation.gif", fps=5)  # no sidecar
    text = figures.export_markdown(tmp_path, base_url="/v/", fmt=fmt).read_text()
    for name in ("texture_growing.gif", "optimisation.gif"):
        assert text.count(f"/v/{nb}/{name}") == 1, text
    if fmt == "hugo":
        assert f'{{{{< figure src="/v/{nb}/texture_growing.gif" alt="A texture growing"' in text
        assert (
            f'{{{{< figure src="/v/{nb}/optimisation.gif" alt="Animation: Optimisation, from notebook' in text
        )
    else:
        assert f"![A texture growing](/v/{nb}/texture_growing.gif)" in text


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_every_image_has_alt_text(tmp_path, fmt):
    nb = "01_content_reconstruction"
    _save(tmp_path, "with_caption", nb, caption="A caption")
    _save(tmp_path, "with_alt", nb, alt="An alt text")
    _save(tmp_path, "bare_figure", nb)
    from nst_tf.animation import save_animation

    save_animation(_frames(), tmp_path / nb / "bare_animation.gif", fps=5)
    text = figures.export_markdown(tmp_path, fmt=fmt).read_text()
    if fmt == "hugo":
        alts = [HUGO_FIGURE.match(line).group(2) for line in text.splitlines() if line.startswith("{{<")]
    else:
        alts = _render(text).alts
    assert len(alts) == 4 and all(a and a.strip() for a in alts), alts
    assert "A caption" in alts and "An alt text" in alts
    assert any("Bare figure" in a for a in alts) and any("Bare animation" in a for a in alts)


def test_mp4_only_animation_has_alt_text_and_no_bare_link(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    figures.save_animation(
        _frames(size=16),
        "clip",
        notebook="03_x",
        caption="A clip",
        formats=("mp4",),
        root=tmp_path,
        quick=False,
    )
    tags = _render(figures.export_markdown(tmp_path).read_text())
    assert {"video", "a"} <= tags.tags
    assert "A clip (MP4)" in "".join(tags.text)


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_quick_figures_are_marked_in_the_export(tmp_path, fmt):
    nb = "03_style_transfer"
    _save(tmp_path, "sweep", nb, caption="Weights", quick=False)
    _save(tmp_path, "sweep", nb, caption="Weights", quick=True)  # -> 03_style_transfer/quick/, never over it
    _save(tmp_path, "only_quick", nb, caption="Preview", quick=True)
    text = figures.export_markdown(tmp_path, base_url="/q/", fmt=fmt, include_quick=True).read_text()
    headings = re.findall(r"^## (.*)$", text, re.MULTILINE)
    assert headings.count(f"{nb}: sweep") == 1 and headings.count(f"{nb}: sweep (quick mode)") == 1
    assert f"{nb}: only_quick (quick mode)" in headings
    assert text.count(figures.QUICK_NOTE) == 2
    assert f"/q/{nb}/quick/sweep.png" in text and f"/q/{nb}/sweep.png" in text  # both, each where it is
    assert (tmp_path / nb / "quick" / "sweep.png").is_file()
    if fmt == "hugo":
        assert text.count('class="nst-quick"') == 2
    # the quality figure stays as it was, and without --include-quick only it is listed
    assert json.loads((tmp_path / nb / "sweep.json").read_text())["quick"] is False
    text = figures.export_markdown(tmp_path, fmt=fmt).read_text()
    assert figures.QUICK_NOTE not in text and "quick/" not in text and "only_quick" not in text


def test_output_option_and_the_line_saying_where(tmp_path, capsys):
    from nst_tf.cli import main

    root = tmp_path / "figs"
    _save(root, "a", "01_content_reconstruction", caption="First")
    out = tmp_path / "blog" / "nst.md"
    assert main(["figures", "--root", str(root), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"wrote 1 figure(s) as markdown to {out}"]
    assert not (root / "FIGURES.md").exists()
    # links are relative to the page, wherever it is
    (link,) = _all_links(out.read_text())
    assert (out.parent / link).resolve() == (root / "01_content_reconstruction" / "a.png").resolve()
    # an existing --output is never replaced without --overwrite
    out.write_text("my own notes")
    assert main(["figures", "--root", str(root), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and out.read_text() == "my own notes"
    assert main(["figures", "--root", str(root), "-o", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith(figures.PAGE_HEADER)
    capsys.readouterr()
    # the default page: replaced when this export wrote it, refused when someone else did
    assert main(["figures", "--root", str(root)]) == 0 and main(["figures", "--root", str(root)]) == 0
    assert capsys.readouterr().out.count(str(root / "FIGURES.md")) == 2
    (root / "FIGURES.md").write_text("hand written")
    assert main(["figures", "--root", str(root)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (root / "FIGURES.md").read_text() == "hand written"
    assert main(["figures", "--root", str(root), "-o", str(tmp_path)]) == 2  # a folder
    assert "is a folder" in capsys.readouterr().err


def test_non_regular_files_never_hang_the_export(tmp_path):
    """A FIFO, a folder, a device or a socket named like a sidecar or a figure: skipped, one line each."""
    nb = tmp_path / "01_content_reconstruction"
    _save(tmp_path, "good", nb.name, caption="Good one")
    os.mkfifo(nb / "fifo.json")
    (nb / "folder.json").mkdir()
    os.symlink("/dev/zero", nb / "device.json")
    os.mkfifo(nb / "pipe.gif")  # an "animation" without a sidecar
    _sidecar(nb, "listed_fifo", caption="x", files=["listed_fifo.mp4"])
    os.mkfifo(nb / "listed_fifo.mp4")
    os.remove(nb / "listed_fifo.png")
    bad = 5
    sock = None
    if len(str(nb / "sock.json")) < 100:  # AF_UNIX path limit
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(nb / "sock.json"))
        bad += 1
    try:
        out = tmp_path / "page.md"
        result = _cli(["figures", "--root", str(tmp_path), "-o", str(out)], timeout=60)
    finally:
        if sock is not None:
            sock.close()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings_ = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings_) == bad, result.stderr
    assert any("FIFO" in w for w in warnings_) and any("directory" in w for w in warnings_)
    assert any("character device" in w for w in warnings_)
    text = out.read_text()
    assert "good.png" in text and "fifo" not in text.lower() and "pipe" not in text


def test_a_fifo_sidecar_never_hangs_a_direct_call(tmp_path):
    nb = tmp_path / "01_content_reconstruction"
    _save(tmp_path, "good", nb.name, caption="Good one")
    os.mkfifo(nb / "other.json")
    done = []
    thread = threading.Thread(target=lambda: done.append(figures.collect(tmp_path)), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert done, "collect() blocked on a FIFO named *.json"
    assert [m["name"] for m in done[0][0]] == ["good"]


BAD_SIDECARS = {
    "not_json": b"{not json",
    "not_utf8": b'{"name": "\xff\xfe"}',
    "top_list": b"[1, 2, 3]",
    "top_number": b"42",
    "name_a_list": json.dumps({"name": ["a"], "files": ["name_a_list.png"]}).encode(),
    "files_a_number": json.dumps({"name": "x", "files": 3}).encode(),
    "files_of_numbers": json.dumps({"files": [1, 2]}).encode(),
    "files_outside": json.dumps({"files": ["../../../../etc/passwd"]}).encode(),
    "caption_an_object": json.dumps({"caption": {"a": 1}, "files": ["caption_an_object.png"]}).encode(),
    "order_text": json.dumps({"order": "first", "files": ["order_text.png"]}).encode(),
    "order_nan": b'{"order": NaN, "files": ["order_nan.png"]}',
    "quick_text": json.dumps({"quick": "yes", "files": ["quick_text.png"]}).encode(),
    "kind_unknown": json.dumps({"kind": "movie", "files": ["kind_unknown.png"]}).encode(),
    "no_files_there": json.dumps({"files": ["missing.png"]}).encode(),
    "too_deep": b"[" * 100_000 + b"]" * 100_000,
}


def test_malformed_sidecars_are_skipped_with_one_warning_each(tmp_path, capsys):
    from nst_tf.cli import main

    nb = tmp_path / "02_texture_synthesis"
    _save(tmp_path, "good", nb.name, caption="Good one")
    for name, data in BAD_SIDECARS.items():
        if name != "no_files_there":
            _png(nb / f"{name}.png")
        (nb / f"{name}.json").write_bytes(data)
    for fmt in figures.EXPORT_FORMATS:
        assert main(["figures", "--root", str(tmp_path), "--format", fmt]) == 0
        captured = capsys.readouterr()
        warnings_ = captured.err.splitlines()
        assert len(warnings_) == len(BAD_SIDECARS), captured.err
        for name in BAD_SIDECARS:
            assert sum(f"/{name}.json'" in line for line in warnings_) == 1, (name, warnings_)
        assert all(line.startswith("warning: skipped") for line in warnings_)
        text = (tmp_path / "FIGURES.md").read_text()
        assert "good.png" in text and not [n for n in BAD_SIDECARS if f"{n}.png" in text]
        assert "passwd" not in text


def test_a_quick_save_over_a_malformed_sidecar_does_not_crash(tmp_path):
    nb = tmp_path / "03_style_transfer"
    nb.mkdir()
    (nb / "sweep.json").write_text("[1, 2]")  # parses, but is no sidecar
    assert _save(tmp_path, "sweep", nb.name, caption="q", quick=True) == nb / "sweep.png"


HOSTILE = {
    "name": "<script>alert(1)</script>{{< shortcode >}}",
    "notebook": '{{% evil %}}"><img src=x onerror=alert(2)>',
    "caption": '*bold* [link](javascript:alert(3)) " onmouseover="x" `code` ## \\',
    "alt": 'a" onerror="alert(4)" x="{{< y >}}\\',
}


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_sidecar_text_never_becomes_markup(tmp_path, fmt):
    nb = tmp_path / "01_content_reconstruction"
    _sidecar(nb, "img", **HOSTILE)
    pytest.importorskip("imageio_ffmpeg")
    _sidecar(nb, "vid", **{**HOSTILE, "files": ["vid.mp4", "vid.gif"], "kind": "animation"})
    from nst_tf.animation import save_animation

    save_animation(_frames(size=16), nb / "vid.mp4", fps=5)
    save_animation(_frames(size=16), nb / "vid.gif", fps=5)
    text = figures.export_markdown(tmp_path, fmt=fmt, base_url="/b/").read_text()
    # Hugo: the only shortcodes are the figure ones, each a whole line with exactly its own parameters
    assert "{{%" not in text and text.count("}}") == text.count("{{<")
    assert text.count("{{<") == (1 if fmt == "hugo" else 0)
    if fmt == "hugo":
        (line,) = [line for line in text.splitlines() if line.startswith("{{<")]
        match = HUGO_FIGURE.match(line)
        assert match and match.group(1) == "/b/01_content_reconstruction/img.png", line
        assert not re.search(r"\{\{|\}\}", "".join(match.groups("")))
        text = text.replace(line, "")
    # rendered as CommonMark with raw HTML on (Hugo's unsafe mode): no element or attribute of theirs
    tags = _render(text)
    assert tags.tags <= {"h1", "h2", "p", "em", "img", "video"}, tags.tags
    assert tags.attrs <= {"src", "alt", "title", "aria-label", "controls", "loop", "muted", "playsinline"}
    shown = "".join(tags.text)
    assert HOSTILE["name"] in shown  # shown as text, as written
    assert "*bold* [link](javascript:alert(3))" in shown  # the caption, as text
    assert "javascript" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', text))
    for alt in tags.alts:
        assert alt == " ".join(HOSTILE["alt"].split())  # the alt text itself survives, escaped


@pytest.mark.parametrize(
    "base",
    [
        "javascript:alert(1)//",
        "JavaScript:alert(1)",
        "data:text/html,<script>x</script>",
        "//evil.example/img",
        "ftp://files.example/img",
        "https://",
        "https://host/img?x=1",
        "/img#top",
        '/img" onerror="x',
        "/img\nx",
        "\\\\evil\\img",
        'https://ho"st/img',
    ],
)
def test_base_url_must_be_a_relative_path_or_http(tmp_path, capsys, base):
    from nst_tf.cli import main

    _save(tmp_path, "a", "01_content_reconstruction", caption="A")
    with pytest.raises(ConfigError, match="relative path"):
        figures.export_markdown(tmp_path, base_url=base)
    assert main(["figures", "--root", str(tmp_path), "--base-url", base]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--base-url" in err and "https://" in err
    assert not (tmp_path / "FIGURES.md").exists()


@pytest.mark.parametrize("fmt", ["markdown", "hugo"])
def test_base_url_is_percent_encoded_in_links(tmp_path, fmt):
    pytest.importorskip("imageio_ffmpeg")
    nb = "01_content_reconstruction"
    _save(tmp_path, "a", nb, caption="A")
    figures.save_animation(
        _frames(size=16), "v", notebook=nb, caption="V", formats=("mp4",), root=tmp_path, quick=False
    )
    base = "/im\"g'(x)<y>{{z}}&/"
    text = figures.export_markdown(tmp_path, base_url=base, fmt=fmt).read_text()
    encoded = "/im%22g%27%28x%29%3Cy%3E%7B%7Bz%7D%7D%26"
    assert f"{encoded}/{nb}/a.png" in text and f'src="{encoded}/{nb}/v.mp4"' in text
    assert "{{z" not in text and "(x)" not in text
    tags = _render(text.replace("{{<", "").replace(">}}", ""))
    assert tags.attrs <= {
        "src",
        "alt",
        "title",
        "aria-label",
        "controls",
        "loop",
        "muted",
        "playsinline",
        "href",
    }
    for good in (
        "https://blog.example/img/",
        "http://localhost:1313/img",
        "img/nst",
        "../static/img",
        "/a%20b/",
    ):
        assert figures.check_base_url(good) == good
