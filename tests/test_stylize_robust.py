"""The fast path (``stylize``, ``train``) and ``--config`` on hostile but real inputs (issue #25,
"Robustness, round three"): a loadable model that does not fit, a memory bound, two inputs with one
output name, a dangling link among the training photos, and rerunning a masked two-style sidecar.

Every input is real and tiny: images written with PIL, networks from ``fast.build_transformer(4, 1)``
or a few Keras layers, saved as ``.keras``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli


def _photo(path: Path, w: int = 40, h: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _one_line_error(code, err, expected_code=2):
    assert code == expected_code, err
    assert "Traceback" not in err and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from nst_tf import fast

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return fast.save_model(fast.build_transformer(4, 1), path)


def _save_keras(model, path: Path) -> Path:
    model.save(path)
    return path


# ----------------------------------------------------------------------------- content that parses but does not fit
def _misfits():
    import keras

    flat = keras.Input((10,))
    grey = keras.Input((None, None, 1))
    rgb = keras.Input((None, None, 3))
    fixed = keras.Input((8, 8, 3))
    return {
        "vector": (keras.Model(flat, keras.layers.Dense(3)(flat)), "takes inputs of shape (None, 10)"),
        "grey": (keras.Model(grey, keras.layers.Conv2D(3, 1)(grey)), "(None, None, None, 1)"),
        "one-channel-out": (keras.Model(rgb, keras.layers.Conv2D(1, 1)(rgb)), "gives outputs of shape"),
        "fixed-size": (keras.Model(fixed, keras.layers.Conv2D(3, 1)(fixed)), "takes only 8x8 px images"),
    }


@pytest.mark.parametrize("kind", ["vector", "grey", "one-channel-out", "fixed-size"])
def test_stylize_refuses_a_model_that_is_not_image_to_image_in_one_line(kind, tmp_path, capsys):
    model, words = _misfits()[kind]
    path = _save_keras(model, tmp_path / f"{kind}.keras")
    code, out, err = run_cli(
        capsys, "stylize", "--model", str(path), str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "out")
    )
    _one_line_error(code, err)
    assert words in err and "pass a .keras file written by" in err
    assert not (tmp_path / "out").exists()


def test_an_error_inside_stylising_is_one_line_per_input(tmp_path, capsys):
    """A network whose signature fits (any RGB image in, RGB out) but that fails on real images:
    every input, given alone or in a folder, gets one line; the other inputs are still tried."""
    import keras

    rgb = keras.Input((None, None, 3))
    odd = keras.Model(rgb, keras.layers.Reshape((4, 4, 3))(rgb))  # only 16-pixel images reshape
    path = _save_keras(odd, tmp_path / "odd.keras")
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.png", seed=1)
    folder = tmp_path / "photos"
    _photo(folder / "c.png", seed=2)
    _photo(folder / "d.png", 24, 24, seed=3)
    code, out, err = run_cli(
        capsys,
        "stylize",
        "--model",
        str(path),
        str(a),
        str(folder),
        str(b),
        "-o",
        str(tmp_path / "out"),
        "-q",
    )
    assert code == 1 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 5, err  # a, c, d, b and the count
    for name in ("a.png", "c.png", "d.png", "b.png"):
        assert sum(name in line and "stylising failed" in line for line in lines) == 1, err
    assert lines[-1] == "0 written, 4 failed"


# ----------------------------------------------------------------------------- a memory bound on the fast path
def test_stylize_at_a_huge_size_is_refused_before_work_and_the_suggested_size_runs(
    tiny_model, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "0.94")  # ~9 MB above the fixed cost: a few hundred px
    src = _photo(tmp_path / "a.png", 40, 30)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "stylize", "--model", str(tiny_model), str(src), "--size", "16384", "-o", str(out), "-q"
    )
    assert code == 1 and "Traceback" not in err
    line = err.splitlines()[0]
    assert "stylising a 16384x12288 px image needs about" in line and "GiB is available" in line, err
    side = int(line.split("use --size ")[1].split()[0])
    assert 16 <= side < 16384 and not out.exists()
    code, _, err = run_cli(
        capsys, "stylize", "--model", str(tiny_model), str(src), "--size", str(side), "-o", str(out), "-q"
    )
    assert code == 0, err
    assert max(Image.open(out / "a.png").size) == side


def test_stylize_refuses_a_huge_image_from_its_header_without_decoding_it(
    tiny_model, tmp_path, capsys, monkeypatch
):
    """A PNG whose header says 6000 x 4000 (its pixels never written): refused for memory, one line,
    and the small image beside it in the folder is still stylised."""
    import struct
    import zlib

    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "1.5")
    folder = tmp_path / "photos"
    _photo(folder / "small.png")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 6000, 4000, 8, 2, 0, 0, 0)  # 24 Mpx: under the pixel limit
    png = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    (folder / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png)  # truncated: 100 bytes of pixels
    code, out, err = run_cli(
        capsys, "stylize", "--model", str(tiny_model), str(folder), "-o", str(tmp_path / "o"), "-q"
    )
    assert code == 1 and "Traceback" not in err
    assert "stylised 1 of 2 images" in out
    huge = [line for line in err.splitlines() if "huge.png" in line]
    assert len(huge) == 1 and "stylising a 6000x4000 px image needs about" in huge[0], err
    assert (tmp_path / "o/photos/small.png").is_file()


def test_train_with_a_huge_batch_is_refused_before_work(tmp_path, capsys, monkeypatch):
    from nst_tf import resources

    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "3")
    out = tmp_path / "m.keras"
    code, _, err = run_cli(
        capsys, "train", "--style", "gravel", "--size", "256", "--batch-size", "256", "--steps", "1",
        "--output", str(out), "--quiet",
    )  # fmt: skip
    _one_line_error(code, err)
    assert "training on 256 crop(s) of 256x256 px" in err and "GiB is available: use --batch-size" in err
    most = int(err.split("use --batch-size ")[1].split()[0])
    assert 1 <= most < 256
    layers = ["block1_conv1", "block4_conv2", "block5_conv1"]
    assert resources.check_train_memory(256, most, 16, 5, layers) <= 3 * 2**30
    assert not out.exists() and not out.with_name("m.ckpt.npz").exists()


def test_train_memory_estimate_counts_vgg_on_twice_the_batch():
    from nst_tf import resources

    layers = ["block1_conv1", "block5_conv1"]
    one = resources.estimate_transformer_bytes((64, 64), 8, 2, 1, training=True, layers=layers)
    two = resources.estimate_transformer_bytes((64, 64), 8, 2, 2, training=True, layers=layers)
    vgg = resources.estimate_bytes((64, 64), layers, 2) - resources.BASE_BYTES
    assert two - one > vgg  # each more photo adds its output too: VGG19 on 2 images, plus the network
    wide = resources.estimate_transformer_bytes((512, 512), 32)
    assert wide > resources.estimate_transformer_bytes((512, 512), 4) > resources.BASE_BYTES


# ----------------------------------------------------------------------------- two inputs, one output
def test_unique_names_is_the_rule_for_every_run():
    from nst_tf.files import unique_names

    got = unique_names([Path(p) for p in ("a.png", "a.png", "A.png", "a-2.png", "sub/a.png", "a.mp4")])
    assert [p.as_posix() for p in got] == ["a.png", "a-2.png", "A-3.png", "a-2-2.png", "sub/a.png", "a-4.mp4"]


def test_stylize_two_inputs_with_one_stem_write_two_outputs(tiny_model, tmp_path, capsys):
    a_png, a_jpg = _photo(tmp_path / "in/a.png", seed=1), _photo(tmp_path / "in/a.jpg", seed=2)
    folder = tmp_path / "photos"
    _photo(folder / "p.png", seed=3)
    _photo(folder / "p.jpg", seed=4)
    out = tmp_path / "out"
    argv = ["stylize", "--model", str(tiny_model), str(a_png), str(a_jpg), str(folder), "-o", str(out), "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["a-2.png", "a.png", "photos/p-2.png", "photos/p.png"]
    inputs = {json.loads(p.with_suffix(".json").read_text())["input"]["path"] for p in out.rglob("*.png")}
    assert len(inputs) == 4  # each output from its own input
    side = json.loads((out / "photos/p.json").read_text())
    assert side["input"]["path"] == str(folder / "p.jpg")  # the folder's images in sorted order
    # one rule with transfer's folder mode
    from nst_tf.cli import _contents, _stylize_outputs

    items = [str(a_png), str(a_jpg), str(folder)]
    expected = ["a.png", "a-2.png", "photos/p.png", "photos/p-2.png"]
    assert [rel.as_posix() for _, rel in _contents(items)] == expected
    planned = _stylize_outputs([Path(i) for i in items], out)
    names = [planned[0][2], planned[1][2], *planned[2][2].values()]
    assert [p.relative_to(out).as_posix() for p in names] == expected
    # rerun without --overwrite: refused because of the earlier run's files, not this run's own
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "already exists" in err


# ----------------------------------------------------------------------------- a dangling link among the photos
@pytest.mark.slow
def test_train_skips_a_dangling_symlink_among_the_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    _photo(photos / "one.png", 48, 48, seed=1)
    _photo(photos / "two.png", 48, 48, seed=2)
    os.symlink(photos / "gone.png", photos / "dangling.png")
    out = tmp_path / "m.keras"
    code, stdout, err = run_cli(
        capsys, "train", "--style", "gravel", "--content-dir", str(photos), "--size", "32", "--batch-size",
        "1", "--steps", "1", "--width", "4", "--res-blocks", "1", "--output", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err and "dangling.png" in err and "skipped" in err
    data = json.loads(out.with_suffix(".json").read_text())["data"]
    assert sorted(Path(d["path"]).name for d in data) == ["one.png", "two.png"]


# ----------------------------------------------------------------------------- --config SIDECAR reruns what it recorded
@pytest.fixture
def masked_run(tmp_path, capsys):
    """A masked two-style transfer (tiny images, 2 steps) and its sidecar."""
    content = _photo(tmp_path / "in/content.png", 32, 32, seed=1)
    styles = [_photo(tmp_path / f"in/style{i}.png", 32, 32, seed=10 + i) for i in (1, 2)]
    left = np.zeros((32, 32), np.uint8)
    left[:, :16] = 255
    masks = [tmp_path / "in/left.png", tmp_path / "in/right.png"]
    Image.fromarray(left).save(masks[0])
    Image.fromarray(255 - left).save(masks[1])
    keep = np.zeros((32, 32), np.uint8)
    keep[:4] = 255
    Image.fromarray(keep).save(tmp_path / "in/keep.png")
    out = tmp_path / "first.png"
    code, _, err = run_cli(
        capsys, "transfer", "--content", str(content), "--style", str(styles[0]), "--style-mask", str(masks[0]),
        "--style", str(styles[1]), "--style-mask", str(masks[1]), "--content-mask", str(tmp_path / "in/keep.png"),
        "--size", "32", "--steps", "2", "--pyramid", "none", "--quiet", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out.with_suffix(".json")


def _inputs(sidecar: Path) -> dict:
    return json.loads(sidecar.read_text())["inputs"]


@pytest.mark.slow
def test_config_of_a_masked_two_style_sidecar_reruns_its_inputs(masked_run, tmp_path, capsys):
    again = tmp_path / "again.png"
    code, _, err = run_cli(capsys, "transfer", "--config", str(masked_run), "--quiet", "-o", str(again))
    assert code == 0, err
    first, second = _inputs(masked_run), _inputs(again.with_suffix(".json"))
    for key in ("content", "styles", "style_masks", "content_mask"):
        assert key in second, key
    digest = {k: [d["sha256"] for d in (v if isinstance(v, list) else [v])] for k, v in first.items()}
    assert digest == {
        k: [d["sha256"] for d in (v if isinstance(v, list) else [v])] for k, v in second.items()
    }
    same = np.asarray(Image.open(masked_run.with_suffix(".png")), np.int16)
    assert np.abs(np.asarray(Image.open(again), np.int16) - same).max() <= 1  # the same run again

    # a flag still overrides: another content (the masks drawn on the old one go with it)
    other = _photo(tmp_path / "in/other.png", 32, 32, seed=7)
    third = tmp_path / "third.png"
    code, _, err = run_cli(
        capsys, "transfer", "--config", str(masked_run), "--content", str(other), "--quiet", "-o", str(third)
    )
    assert code == 0, err
    rec = _inputs(third.with_suffix(".json"))
    assert rec["content"]["path"] == str(other) and len(rec["styles"]) == 2 and "style_masks" not in rec


@pytest.mark.slow
def test_config_of_a_sidecar_whose_inputs_changed_or_went_says_so_in_one_line(masked_run, tmp_path, capsys):
    recorded = _inputs(masked_run)
    mask = Path(recorded["style_masks"][1]["path"])
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(mask)  # the right-hand mask, repainted
    code, _, err = run_cli(
        capsys, "transfer", "--config", str(masked_run), "--quiet", "-o", str(tmp_path / "x.png")
    )
    _one_line_error(code, err)
    assert "style mask 2 recorded in" in err and "has changed since that run" in err and "--style-mask" in err
    Path(recorded["content"]["path"]).unlink()
    code, _, err = run_cli(
        capsys, "transfer", "--config", str(masked_run), "--quiet", "-o", str(tmp_path / "y.png")
    )
    _one_line_error(code, err)
    assert "content image recorded in" in err and "no longer exists" in err and "--content" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


# ----------------------------------------------------------------------------- an output folder inside the input folder
def test_rerun_into_an_output_folder_inside_the_input_does_not_stylise_the_last_results(
    tiny_model, tmp_path, capsys
):
    photos = tmp_path / "photos"
    for i in range(2):
        _photo(photos / f"p{i}.png", 40, 32, seed=i)
    out = photos / "styled"
    for _ in range(2):  # the second run sees photos/styled/photos/*.png from the first: left out
        code, stdout, err = run_cli(
            capsys,
            "stylize",
            str(photos),
            "--model",
            str(tiny_model),
            "-o",
            str(out),
            "--overwrite",
            "--quiet",
        )
        assert code == 0, err
        assert "stylised 2 of 2 images" in stdout, stdout
    assert sorted(p.name for p in (out / "photos").rglob("*.png")) == ["p0.png", "p1.png"]
    # transfer --content FOLDER -o inside it: the same rule
    shutil.rmtree(out)
    for _ in range(2):
        code, stdout, err = run_cli(
            capsys, "transfer", "--content", str(photos), "--style", "gravel", "--size", "32", "--steps",
            "1", "--pyramid", "", "-o", str(photos / "painted"), "--overwrite",
        )  # fmt: skip
        assert code == 0, err
        assert "painted 2 of 2 images" in stdout, stdout
