"""Figure export as notebook 03 uses it, and the committed gallery in docs/gallery/.

* ``nst_tf.figures.save_figure`` writes the image(s) and a caption sidecar;
* ``export_markdown`` (and ``python -m nst_tf figures``) lists them in plain
  Markdown and as Hugo ``{{< figure >}}`` shortcodes;
* every image that ``docs/gallery/README.md`` shows exists, is small, and has
  a sidecar whose ``config`` re-creates the run; every entry of
  ``scripts/make_gallery.py`` has been generated.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import matplotlib

from tests.conftest import load_script

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from nst_tf import Config  # noqa: E402
from nst_tf.errors import ConfigError  # noqa: E402
from nst_tf.figures import export_markdown, figures_dir, save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"
NOTEBOOK = "03_style_transfer"


def _tiny_figure():
    fig, ax = plt.subplots(figsize=(1.5, 1))
    ax.plot([0, 1, 2], [3, 1, 2])
    return fig


def _make_gallery():
    return load_script("make_gallery")


# ----------------------------------------------------------------------------- save_figure
def test_save_figure_writes_png_and_caption_sidecar(tmp_path):
    fig = _tiny_figure()
    path = save_figure(
        fig, "weight_sweep", notebook=NOTEBOOK, caption="style_weight 0.1 to 1000", root=tmp_path
    )
    plt.close(fig)
    assert path == tmp_path / NOTEBOOK / "weight_sweep.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["name"] == "weight_sweep" and meta["notebook"] == NOTEBOOK
    assert meta["caption"] == "style_weight 0.1 to 1000"
    assert meta["files"] == ["weight_sweep.png"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_save_figure_more_formats_and_default_folder():
    fig = _tiny_figure()
    path = save_figure(fig, "grid_3x3", notebook=NOTEBOOK, caption="grid", formats=("png", "svg", "pdf"))
    plt.close(fig)
    # conftest points NST_OUTPUT_DIR at a temporary folder: figures go to <it>/figures/<notebook>/
    assert path.parent == figures_dir() / NOTEBOOK
    assert Path(os.environ["NST_OUTPUT_DIR"]) in path.parents
    assert {p.name for p in path.parent.iterdir()} == {
        "grid_3x3.png",
        "grid_3x3.svg",
        "grid_3x3.pdf",
        "grid_3x3.json",
    }
    assert json.loads(path.with_suffix(".json").read_text())["files"] == [
        "grid_3x3.png",
        "grid_3x3.svg",
        "grid_3x3.pdf",
    ]


def test_save_figure_rejects_unknown_format(tmp_path):
    fig = _tiny_figure()
    with pytest.raises(ConfigError, match="png, svg, pdf or jpg"):
        save_figure(fig, "x", notebook=NOTEBOOK, formats=("bmp",), root=tmp_path)
    plt.close(fig)


# ----------------------------------------------------------------------------- Markdown / Hugo export
def _two_figures(root):
    for name, caption in [("weight_sweep", 'style_weight "sweep"'), ("grid_3x3", "Three x three")]:
        fig = _tiny_figure()
        save_figure(fig, name, notebook=NOTEBOOK, caption=caption, root=root, quick=False)
        plt.close(fig)


def test_export_markdown_writes_markdown_or_hugo_shortcodes(tmp_path):
    _two_figures(tmp_path)
    out = export_markdown(tmp_path, base_url="/images/nst/")
    assert out == tmp_path / "FIGURES.md"
    text = out.read_text()
    assert "![Three x three](/images/nst/03_style_transfer/grid_3x3.png)" in text
    assert "{{<" not in text  # one form per page: Hugo would render a shortcode even inside a code block
    assert text.index("weight_sweep") < text.index("grid_3x3")  # the order the notebook saved them
    text = export_markdown(tmp_path, base_url="/images/nst/", fmt="hugo").read_text()
    assert (
        '{{< figure src="/images/nst/03_style_transfer/grid_3x3.png" alt="Three x three" caption="Three x three" >}}'
        in text
    )
    assert "![" not in text
    # double quotes in a caption would end the shortcode's attribute early
    assert "caption=\"style_weight 'sweep'\"" in text


def test_export_markdown_without_figures_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="run a notebook first"):
        export_markdown(tmp_path)


def test_cli_figures_command(tmp_path, capsys):
    from nst_tf.cli import main  # what `python -m nst_tf figures` runs (in-process: no second TF start-up)

    _two_figures(tmp_path)
    assert main(["figures", "--root", str(tmp_path), "--base-url", "/img/", "--format", "hugo"]) == 0
    assert "FIGURES.md" in capsys.readouterr().out
    assert '{{< figure src="/img/03_style_transfer/weight_sweep.png"' in (tmp_path / "FIGURES.md").read_text()


# ----------------------------------------------------------------------------- the committed gallery
def _readme_images():
    text = (GALLERY / "README.md").read_text()
    return sorted(set(re.findall(r"\]\(([^)\s]+\.(?:jpg|jpeg|png|gif))\)", text)))


def test_gallery_readme_images_exist_with_config_sidecars():
    from nst_tf import Config

    assert (GALLERY / "README.md").is_file(), "run: python scripts/make_gallery.py"
    images = _readme_images()
    assert len(images) >= 6, images
    for name in images:
        path = GALLERY / name
        assert path.is_file(), f"docs/gallery/README.md shows {name}, which does not exist"
        assert path.stat().st_size < 250_000, (
            f"{name} is {path.stat().st_size // 1024} KB: keep gallery images < 250 KB"
        )
        sidecar = path.with_suffix(".json")
        assert sidecar.is_file(), f"{name} has no JSON sidecar"
        meta = json.loads(sidecar.read_text())
        config = Config.from_dict(meta["config"]).validate()
        assert config.task == "transfer"
        assert meta["versions"]["nst_tf"] and meta["gallery"]["name"] == path.stem
        assert "/" not in json.dumps(meta.get("inputs", {})), "sidecar leaks a local path"


def test_gallery_is_small_and_has_no_source_paintings():
    files = [p for p in GALLERY.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total < 3_000_000, f"docs/gallery holds {total / 1e6:.1f} MB: keep it under 3 MB"
    paintings = {"starry_night", "great_wave", "kandinsky_composition_vii", "woman_with_hat", "night_cafe",
                 "picabia_edtaonisl", "water_lilies", "tubingen"}  # fmt: skip
    copied = [p.name for p in files if p.stem in paintings]
    assert not copied, f"source images must not be committed: {copied}"


def test_every_gallery_entry_was_generated():
    module = _make_gallery()
    shown = {Path(n).stem for n in _readme_images()}
    missing = [e.name for e in module.ENTRIES if e.name not in shown]
    assert not missing, (
        f"entries not generated yet: run python scripts/make_gallery.py --only {' '.join(missing)}"
    )
    assert len({e.name for e in module.ENTRIES}) == len(module.ENTRIES), "two entries share a name"


# ----------------------------------------------------------------------------- the script itself
def test_make_gallery_readme_from_sidecars(tmp_path):
    module = _make_gallery()
    entry = module.Transfer("demo", "chelsea", ["starry_night", "great_wave"], "A demo", {"size": 64})
    meta = {
        "config": {"size": 64, "optimizer": "lbfgs", "steps": 100, "pyramid": [[0.5, 100]], "content_weight": 1.0,
                   "style_weight": 10.0, "tv_weight": 0.01, "init": "content", "preserve_color": "luminance",
                   "style_blend": [0.5, 0.5]},
        "timings": {"total_s": 12.3},
        "gallery": {"name": "demo", "title": "A demo", "kind": "transfer", "content": "chelsea",
                    "style": "starry_night + great_wave", "cpu_count": 2},
    }  # fmt: skip
    (tmp_path / "demo.json").write_text(json.dumps(meta))
    text = module.write_readme(
        tmp_path, [entry, module.Transfer("absent", "a", "b", "not generated")]
    ).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| [!["))
    assert "(demo.jpg)" in row and "starry_night + great_wave" in row and "12 s, 2 CPUs" in row
    assert (
        "100 steps after 100 at 0.5x" in row
        and "preserve_color luminance" in row
        and "style_blend 0.5/0.5" in row
    )
    assert "absent" not in text


@pytest.mark.slow
def test_make_gallery_entries_end_to_end(tmp_path, vgg_weights):
    module = _make_gallery()
    tiny = dict(size=32, steps=1, pyramid=())
    entries = [
        module.Transfer("t", "chelsea", "hubble_deep_field", "transfer", tiny),
        module.Sweep(
            "s", "chelsea", "hubble_deep_field", "style_weight", [1.0, Config().style_weight], "sweep", tiny
        ),
        module.Grid("g", ["chelsea"], ["hubble_deep_field", "gravel"], "grid", tiny),
    ]
    for entry in entries:
        path = module.make(entry, tmp_path)
        assert path.read_bytes()[:2] == b"\xff\xd8"  # JPEG
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["config"]["size"] == 32 and meta["gallery"]["name"] == entry.name
    assert len(json.loads((tmp_path / "s.json").read_text())["cells"]) == 2
    assert len(module._CACHE) == 3  # the sweep's default-weight cell is the transfer: run once
    readme = module.write_readme(tmp_path, entries).read_text()
    assert all(f"({name}.jpg)" in readme for name in "tsg")


def test_grid_shows_only_results_never_the_input_images(tmp_path, monkeypatch):
    """Committed figures must not contain a copy of an input (paintings may not be redistributed)."""
    import types

    import numpy as np

    import nst_tf.data
    import nst_tf.images
    import nst_tf.plotting

    module = _make_gallery()
    results = {}

    def fake_run(content, style, settings):
        image = np.full((24, 32, 3), len(results) * 20, np.uint8)
        results[(content, style)] = image
        meta = {"config": {"size": 32}, "inputs": {"content": {"name": content}, "styles": [{"name": style}]}}
        return types.SimpleNamespace(
            image=image, metadata=lambda: dict(meta), final_losses={"total": 1.0}, timings={"total_s": 0.1}
        )

    def no_inputs(*args, **kwargs):
        raise AssertionError("make_gallery loaded an input image for a committed figure")

    shown = []
    real_show = nst_tf.plotting.show_images

    def spy(images, *args, **kwargs):
        shown.extend(images)
        return real_show(images, *args, **kwargs)

    monkeypatch.setattr(module, "_run", fake_run)
    for target, name in [
        (nst_tf.data, "load"),
        (nst_tf.data, "resolve_image"),
        (nst_tf.images, "load_image"),
    ]:
        monkeypatch.setattr(target, name, no_inputs)
    monkeypatch.setattr(nst_tf.plotting, "show_images", spy)
    entry = module.Grid("g", ["chelsea", "coffee"], ["gravel", "brick", "grass"], "grid", {"size": 32})
    path = module.make(entry, tmp_path)
    assert path.read_bytes()[:2] == b"\xff\xd8"
    assert len(shown) == 6 and all(any(img is r for r in results.values()) for img in shown)


def test_make_gallery_refuses_a_result_that_is_a_copy_of_its_content_image():
    import types

    module = _make_gallery()
    entry = module.Transfer("t", "tubingen", "starry_night", "t")
    copy = types.SimpleNamespace(final_losses={"content": 0.0}, config=types.SimpleNamespace(init="content"))
    moved = types.SimpleNamespace(final_losses={"content": 0.4}, config=types.SimpleNamespace(init="content"))
    module._refuse_copies(entry, [moved])
    with pytest.raises(SystemExit, match="copy of its content image"):
        module._refuse_copies(entry, [moved, copy])
