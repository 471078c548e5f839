"""``transfer --content FOLDER`` (issue #15.3): one result + sidecar per image, bad files skipped,
VGG19 and the style targets built once, the same pixels as one-image runs. Tiny images, few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
#: 2 L-BFGS steps at 32 px, then 2 at 64 px: two stage sizes per image.
FAST = ("--style", "hubble_deep_field", "--size", "64", "--steps", "2", "--pyramid", "0.5:1", "--quiet")


def _photos(folder: Path, names=("chelsea", "astronaut"), broken: bool = True) -> Path:
    """Bundled photos at 80 px as PNGs in ``folder`` (and a corrupt 'JPEG' when ``broken``)."""
    from nst_tf.images import load_image, save_image

    for name in names:
        save_image(load_image(ROOT / f"data/src/content/{name}.jpg", 80), folder / f"{name}.png")
    if broken:
        (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.mark.slow
def test_a_folder_with_a_corrupt_file_gives_every_other_result_once_built_vgg_and_exit_1(
    tmp_path, capsys, monkeypatch
):
    from nst_tf import transfer

    built, grams = [], []
    real_build, real_gram = transfer.build_extractor, transfer.gram_matrix
    monkeypatch.setattr(transfer, "build_extractor", lambda *a, **k: built.append(a) or real_build(*a, **k))
    monkeypatch.setattr(transfer, "gram_matrix", lambda f: grams.append(f.shape) or real_gram(f))
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "transfer", "--content", str(photos), "--output", str(out), *FAST)

    assert code == 1, stderr
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*"))
    assert made == [
        "photos/astronaut.json",
        "photos/astronaut.png",
        "photos/chelsea.json",
        "photos/chelsea.png",
    ]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "[2/3]" in errors[0] and "broken.jpg" in errors[0], stderr
    assert "Traceback" not in stderr
    lines = stdout.splitlines()
    assert [line[:5] for line in lines[:2]] == ["[1/3]", "[3/3]"] and "saved" in lines[0]
    assert lines[-1].startswith("painted 2 of 3 images") and "1 failed: broken.jpg" in lines[-1]
    assert str(out) in lines[-1]
    side = json.loads((out / "photos/chelsea.json").read_text())
    assert side["inputs"]["content"]["path"] == str(photos / "chelsea.png")
    assert side["config"]["size"] == 64 and side["stopped"] == "completed" and side["weights"]["source"]
    # the network once for the folder; the style's Gram matrices once per stage size (32 and 64 px,
    # the same for the 64x43 cat and the 64x64 astronaut), not once per image: 2 sizes x 5 layers
    assert len(built) == 1
    assert len(grams) == 2 * 5, grams


@pytest.mark.slow
def test_folder_results_equal_one_image_runs_with_the_same_seed(tmp_path, capsys):
    from nst_tf.images import load_image

    photos = _photos(tmp_path / "photos", broken=False)
    code, _, err = run_cli(
        capsys, "transfer", "--content", str(photos), "-o", str(tmp_path / "folder"), *FAST
    )
    assert code == 0, err
    for name in ("astronaut", "chelsea"):  # the second one reuses the first one's network and targets
        single = tmp_path / f"{name}.png"
        code, _, err = run_cli(
            capsys, "transfer", "--content", str(photos / f"{name}.png"), "-o", str(single), *FAST
        )
        assert code == 0, err
        together = tmp_path / "folder" / "photos" / f"{name}.png"
        np.testing.assert_array_equal(load_image(together), load_image(single))
        a, b = (json.loads(p.with_suffix(".json").read_text()) for p in (together, single))
        assert a["config"] == b["config"] and a["final_losses"] == b["final_losses"]


@pytest.mark.slow
def test_ctrl_c_in_a_folder_run_keeps_the_saved_results_and_the_current_one(tmp_path, capsys, monkeypatch):
    from nst_tf import transfer

    photos = _photos(tmp_path / "photos", ("astronaut", "chelsea", "coffee"), broken=False)
    real, calls = transfer.optimize, []

    def optimize(objective, x0, **kw):  # Ctrl-C during the second image's first (coarse) stage
        calls.append(x0.shape)
        if len(calls) == 3:

            def ctrl_c(step, loss, x):
                raise KeyboardInterrupt

            kw["callback"] = ctrl_c
        return real(objective, x0, **kw)

    monkeypatch.setattr(transfer, "optimize", optimize)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "transfer", "--content", str(photos), "-o", str(out), *FAST)
    assert code == 130, stderr
    first = json.loads((out / "photos/astronaut.json").read_text())
    second = json.loads((out / "photos/chelsea.json").read_text())
    assert first["stopped"] == "completed" and second["stopped"] == "interrupted"
    assert not list(out.rglob("coffee*")) and len(calls) == 3
    assert "interrupted: saved the best image so far" in stderr
    assert "painted 2 of 3 images" in stdout and "1 not started" in stdout


def test_folder_outputs_are_named_like_stylize_and_never_twice(tmp_path):
    from nst_tf.cli import _contents
    from nst_tf.errors import ConfigError

    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "empty").mkdir()
    for rel in ("a/x.jpg", "a/x.png", "a/sub/y.png", "a/.hidden.png", "a/notes.txt", "b/x.jpg"):
        (tmp_path / rel).write_bytes(b"")
    assert _contents(["chelsea"]) is None and _contents([str(tmp_path / "a/x.jpg")]) is None  # one image
    pairs = _contents([str(tmp_path / "a"), str(tmp_path / "b/x.jpg"), "chelsea"])
    assert [(Path(src).name, out.as_posix()) for src, out in pairs] == [
        ("x.jpg", "a/x.png"),
        ("x.png", "a/x-2.png"),
        ("y.png", "a/sub/y.png"),
        ("x.jpg", "x.png"),
        ("chelsea", "chelsea.png"),
    ]
    with pytest.raises(ConfigError, match="no images"):
        _contents([str(tmp_path / "empty"), str(tmp_path / "b")])


def test_a_bad_style_or_output_in_folder_mode_is_one_error_before_any_work(tmp_path, capsys):
    photos = _photos(tmp_path / "photos", ("chelsea",), broken=True)
    code, stdout, stderr = run_cli(
        capsys, "transfer", "--content", str(photos), "--style", "no_such_painting", "-o", str(tmp_path / "o")
    )
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "no_such_painting" in stderr
    assert not (tmp_path / "o").exists() and "painted" not in stdout
    code, _, stderr = run_cli(capsys, "transfer", "--content", str(photos), "-o", str(tmp_path / "r.png"))
    assert code == 2 and "must be a folder" in stderr
