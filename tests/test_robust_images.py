"""Robustness (#5): awkward and broken image files through the high-level API and the CLI.

``tests/test_images.py`` checks ``load_image`` itself; here the same files go
through what a student actually calls: ``transfer_style`` / ``synthesize_texture``
/ ``reconstruct_content`` and ``python -m nst_tf``. Each file is either handled
correctly or refused with one line (no traceback) that names the file and
the fix. Runs use 32-px images, 1 step and ``weights="random"``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from nst_tf import data, transfer
from nst_tf.errors import ImageError, NSTError
from nst_tf.images import MIN_SIDE, deprocess, load_image, preprocess, resize_image

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=32, steps=1, pyramid=(), weights="random", progress=False)
CLI_TINY = ["--size", "32", "--steps", "1", "--pyramid", "none", "--weights", "random", "--quiet"]


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _noise(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, words the one-line error must contain)."""
    jpeg = _encode(Image.fromarray(_noise(48, 64)), "JPEG", quality=90)
    png = _encode(Image.fromarray(_noise(48, 64)), "PNG")
    specs = {
        "missing.png": (None, "no such file"),
        "a_folder.png": ("DIR", "directory"),
        "notes.jpg": (b"this is not a picture, just some notes\n", "not a recognised image format"),
        "random.png": (np.random.default_rng(1).bytes(700), "not a recognised image format"),
        "login_page.png": (b"<!DOCTYPE html><html><body>Please log in</body></html>", "not a recognised"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated or corrupt"),
        "truncated.png": (png[: len(png) // 2], "truncated or corrupt"),
        "empty.jpg": (b"", "empty (0 bytes)"),
        "one_pixel.png": (_encode(Image.new("RGB", (1, 1)), "PNG"), f"smaller than {MIN_SIDE} px"),
        "tiny_10px.png": (_encode(Image.new("RGB", (10, 10)), "PNG"), f"smaller than {MIN_SIDE} px"),
        "strip_400x10.png": (_encode(Image.new("RGB", (400, 10)), "PNG"), "aspect ratio 40:1"),
        "tower_12x300.png": (_encode(Image.new("RGB", (12, 300)), "PNG"), "aspect ratio 25:1"),
    }
    out = {}
    for name, (content, words) in specs.items():
        path = folder / name
        if content == "DIR":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        out[name] = (path, words)
    return out


def _good_files(folder: Path) -> dict[str, Path]:
    """Unusual but valid images: each must load as (H, W, 3) float RGB in [0, 255]."""
    files = {}

    def put(name, data: bytes):
        files[name] = folder / name
        files[name].write_bytes(data)

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 high x 64 wide, displayed rotated: 64 high x 48 wide
    put("exif_rotated.jpg", _encode(Image.fromarray(_noise(48, 64)), "JPEG", exif=exif.tobytes()))
    put("gray.png", _encode(Image.fromarray(_noise(40, 40)[..., 0], "L"), "PNG"))
    rgba = np.dstack([_noise(40, 40, 2), np.zeros((40, 40, 1), np.uint8)])  # fully transparent
    put("transparent.png", _encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    put("cmyk.jpg", _encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"))
    deep = (np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40).astype(np.uint16)
    put("deep_16bit.png", _encode(Image.fromarray(deep), "PNG"))
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("animated.gif", buf.getvalue())
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * (3 * 254))
    put("palette_transparent.png", _encode(pal, "PNG", transparency=1))
    put("extreme_but_allowed_20x1.png", _encode(Image.fromarray(_noise(16, 320)), "PNG"))
    return files


def _one_line(message: str, *must: str) -> str:
    assert message.strip() and "\n" not in message.strip(), repr(message)
    assert "Traceback" not in message
    for word in must:
        assert word in message, (word, message)
    return message


@pytest.fixture
def no_network(monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr("nst_tf.data._urlopen", refuse)
    monkeypatch.setenv("NST_OFFLINE", "1")


# ----------------------------------------------------------------------------- bad files
BAD_NAMES = [
    "missing.png", "a_folder.png", "notes.jpg", "random.png", "login_page.png", "truncated.jpg",
    "truncated.png", "empty.jpg", "one_pixel.png", "tiny_10px.png", "strip_400x10.png", "tower_12x300.png",
]  # fmt: skip


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("entry", ["transfer_content", "transfer_style", "texture", "reconstruct"])
def test_api_bad_file_is_one_line_image_error_naming_it(name, entry, tmp_path, no_network):
    path, words = _bad_files(tmp_path)[name]
    call = {
        "transfer_content": lambda: transfer.transfer_style(str(path), "brick", **TINY),
        "transfer_style": lambda: transfer.transfer_style("chelsea", str(path), **TINY),
        "texture": lambda: transfer.synthesize_texture(path, **TINY),  # a Path works too
        "reconstruct": lambda: transfer.reconstruct_content(str(path), **TINY),
    }[entry]
    with pytest.raises(ImageError) as info:
        call()
    _one_line(str(info.value), str(path), words, " — ")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_cli_bad_file_prints_one_line_and_exits_2(name, tmp_path, capsys, no_network, monkeypatch):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    path, words = _bad_files(tmp_path)[name]
    for argv in (
        ["transfer", "--content", str(path)],
        ["transfer", "--style", "brick", "--style", str(path)],
        ["texture", "--style", str(path)],
        ["reconstruct", "--content", str(path)],
    ):
        code, out, err = run_cli(capsys, *argv, *CLI_TINY)
        assert code == 2, (argv, out, err)
        assert err.startswith("error: ")
        _one_line(err, str(path), words)
    assert not list((tmp_path / "out").rglob("*.*")), "nothing may be written for a bad input"


def test_cli_non_image_file_in_a_subprocess_prints_one_line(tmp_path):
    """The acceptance check of #5, exactly as a user runs it."""
    bad = tmp_path / "holiday.jpg"
    bad.write_text("I am a text file with a .jpg name")
    proc = subprocess.run(
        [sys.executable, "-m", "nst_tf", "transfer", "--content", str(bad), *CLI_TINY],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "NST_OUTPUT_DIR": str(tmp_path / "out"), "NST_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    _one_line(lines[0], "holiday.jpg", "not a recognised image format", "PNG or JPEG")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "name, words",
    [("", "no image named"), ("chelsae", "did you mean 'chelsea'"), ("   ", "no image named")],
)
def test_bad_image_names(name, words, capsys, no_network):
    with pytest.raises(ImageError) as info:
        transfer.transfer_style(name, "brick", **TINY)
    _one_line(str(info.value), words)
    code, _, err = run_cli(capsys, "transfer", "--content", name, *CLI_TINY)
    assert code == 2
    _one_line(err, words)


def test_image_too_small_for_the_layers_names_the_file_and_minimum(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (200, 20)).save(wide)  # 10:1: short side 3 px at size 32
    with pytest.raises(NSTError) as info:
        transfer.transfer_style(str(wide), "brick", **TINY)
    _one_line(str(info.value), "wide.png", "16 px", "size >= 155")


# ----------------------------------------------------------------------------- unusual but valid files
def test_unusual_files_load_through_the_api(tmp_path):
    files = _good_files(tmp_path)
    for name, path in files.items():
        img = transfer._load(str(path))
        assert img.ndim == 3 and img.shape[-1] == 3 and img.dtype == np.float32, name
        assert 0 <= img.min() and img.max() <= 255, name
    assert transfer._load(files["exif_rotated.jpg"]).shape[:2] == (64, 48)  # EXIF orientation applied
    assert np.all(transfer._load(files["transparent.png"]) == 255)  # documented: composited on white
    np.testing.assert_allclose(transfer._load(files["cmyk.jpg"]).mean(axis=(0, 1)), [255, 0, 0], atol=8)
    np.testing.assert_allclose(transfer._load(files["animated.gif"]).mean(axis=(0, 1)), [255, 0, 0], atol=1)
    deep = transfer._load(files["deep_16bit.png"])
    assert deep.max() > 200 and np.allclose(deep[..., 0], deep[..., 1])  # 16 bit -> 0..255, grey
    assert np.all(transfer._load(files["palette_transparent.png"]) == 255)


def test_unusual_files_run_through_the_api_in_every_role(tmp_path):
    files = _good_files(tmp_path)
    styles = [
        str(p) for n, p in files.items() if n not in ("exif_rotated.jpg", "extreme_but_allowed_20x1.png")
    ]
    result = transfer.transfer_style(str(files["exif_rotated.jpg"]), styles, **TINY)
    assert result.stopped == "completed"
    assert result.image.shape == (32, 24, 3)  # portrait, as the photo is displayed
    assert len(result.inputs["styles"]) == len(styles)
    texture = transfer.synthesize_texture(str(files["cmyk.jpg"]), **TINY)
    assert texture.image.shape == (32, 32, 3) and texture.image.dtype == np.uint8


def test_unusual_files_run_through_the_cli(tmp_path, capsys):
    files = _good_files(tmp_path)
    out = tmp_path / "result.png"
    argv = ["transfer", "--content", str(files["exif_rotated.jpg"]), "-o", str(out)]
    for name in (
        "gray.png",
        "transparent.png",
        "cmyk.jpg",
        "deep_16bit.png",
        "animated.gif",
        "extreme_but_allowed_20x1.png",
    ):
        argv += ["--style", str(files[name])]
    code, stdout, err = run_cli(capsys, *argv, *CLI_TINY)
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["image_size"] == [32, 24] and meta["stopped"] == "completed"
    assert Image.open(out).size == (24, 32)


# ----------------------------------------------------------------------------- fuzzing
def _fuzz_inputs():
    png = _encode(Image.fromarray(_noise(24, 24)), "PNG")
    jpeg = _encode(Image.fromarray(_noise(24, 24)), "JPEG")
    gif = _encode(Image.fromarray(_noise(24, 24)), "GIF")
    seeds = st.sampled_from([png, jpeg, gif])
    truncated = st.tuples(seeds, st.floats(0.0, 0.99)).map(lambda t: t[0][: int(len(t[0]) * t[1])])
    headers = st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"RIFF"])
    with_header = st.tuples(headers, st.binary(max_size=600)).map(lambda t: t[0] + t[1])
    return st.one_of(st.binary(max_size=2000), truncated, with_header)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=_fuzz_inputs())
def test_fuzz_bytes_through_the_api_loader_only_raise_image_error(blob, tmp_path):
    path = tmp_path / "fuzz.img"
    path.write_bytes(blob)
    for load in (lambda: transfer._load(str(path)), lambda: data.load(str(path), long_side=32)):
        try:
            img = load()
        except ImageError as exc:
            _one_line(str(exc), str(path))
        else:
            assert img.ndim == 3 and img.shape[-1] == 3 and np.isfinite(img).all()


def test_fuzz_bytes_through_the_cli_only_print_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    rng = np.random.default_rng(5)
    for i in range(12):
        path = tmp_path / f"fuzz_{i}.jpg"
        path.write_bytes(rng.bytes(int(rng.integers(0, 3000))))
        code, _, err = run_cli(capsys, "transfer", "--content", str(path), *CLI_TINY)
        assert code == 2
        _one_line(err, str(path))


# ----------------------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arr=hnp.arrays(
        np.uint8, st.tuples(st.integers(MIN_SIDE, 40), st.integers(MIN_SIDE, 40), st.sampled_from([1, 3, 4]))
    ),
)
def test_png_files_load_losslessly(arr, tmp_path):
    if arr.shape[-1] == 4:
        arr = arr.copy()
        arr[..., 3] = 255  # opaque: compositing on white changes nothing
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[-1]]
    path = tmp_path / "p.png"
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(path)
    img = load_image(path)
    expected = np.repeat(arr[..., :1], 3, -1) if mode == "L" else arr[..., :3]
    assert np.array_equal(img, expected.astype(np.float32))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(MIN_SIDE, 120), w=st.integers(MIN_SIDE, 120), long_side=st.integers(MIN_SIDE, 96))
def test_files_resize_to_the_requested_long_side(h, w, long_side, tmp_path):
    path = tmp_path / "p.jpg"
    Image.fromarray(_noise(h, w)).save(path, quality=90)
    try:
        img = load_image(path, long_side)
    except ImageError as exc:  # too small after resizing, or too elongated: one line naming the file
        _one_line(str(exc), str(path))
        assert round(min(h, w) * long_side / max(h, w)) < MIN_SIDE or max(h, w) / min(h, w) > 20
        return
    assert max(img.shape[:2]) == long_side
    # the orientation is kept; rounding may make a nearly square picture square (31 x 32 at 16 px)
    assert img.shape[0] <= img.shape[1] if h < w else img.shape[0] >= img.shape[1]
    scale = long_side / max(h, w)
    assert abs(img.shape[0] - h * scale) <= 1 and abs(img.shape[1] - w * scale) <= 1
    assert img.min() >= 0 and img.max() <= 255


@settings(max_examples=40, deadline=None)
@given(
    img=hnp.arrays(
        np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)),
        elements=st.floats(0, 255, width=32),
    )
)  # fmt: skip
def test_preprocess_deprocess_round_trip_on_float_images(img):
    x = preprocess(img)
    assert x.shape == (1, *img.shape) and x.dtype == "float32"
    back = deprocess(x)
    np.testing.assert_allclose(back, img, atol=2e-5 * 255 + 1e-4)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(
        np.float32, st.tuples(st.integers(1, 2), st.integers(1, 8), st.integers(1, 8), st.just(3)),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)  # fmt: skip
def test_deprocess_always_gives_displayable_pixels(x):
    img = deprocess(x)
    assert img.dtype == np.float32 and img.min() >= 0 and img.max() <= 255
    assert img.shape[-1] == 3


@settings(max_examples=30, deadline=None)
@given(
    img=hnp.arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 30), st.just(3)),
                   elements=st.floats(0, 255, width=32)),
    hw=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)  # fmt: skip
def test_resize_image_gives_the_exact_size_within_range(img, hw):
    out = resize_image(img, size=hw)
    assert out.shape == (*hw, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
