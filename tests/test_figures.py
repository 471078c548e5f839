"""The blog export publishes as is (issue #11, item 10).

* ``--base-url`` joins with exactly one slash, with or without a trailing slash;
* one form per page (Markdown or Hugo shortcodes): each figure renders once;
* figures in notebook order: notebook number, then the order the notebook saved them;
* GIF/MP4 animations are listed (with or without a sidecar);
* alt text describes the picture (the sidecar's alt, title or caption), never the file name;
* quick-mode figures are marked and never replace a quality figure of the same name.
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
    assert '![A \\[bracketed\\] "quoted" caption &#123;&#123;< x >}}](' in md
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
