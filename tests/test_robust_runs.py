"""Robustness (#5): runs that go wrong half-way.

* a NaN/inf loss stops the run with one line and keeps the last finite image;
* Ctrl-C (in a notebook: a ``KeyboardInterrupt`` from a callback; on the
  command line: a real SIGINT) returns / saves the best image so far, its
  frames and its sidecar (``"stopped": "interrupted"``), exit status 130;
* results never overwrite an earlier run, and no temporary file is left.

Runs use 32-48 px images, a few steps and ``weights="random"``.
"""

from __future__ import annotations

import json
import signal
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli, signal_cli_run

from nst_tf import cli, transfer
from nst_tf.errors import ImageError

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=32, pyramid=(), weights="random", progress=False)
CLI_TINY = ["--size", "32", "--pyramid", "none", "--weights", "random", "--quiet"]


def _img(h=32, w=40, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


def _strict_json(path: Path) -> dict:
    """Parse a sidecar as strict JSON: NaN/Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")]


def _stop_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "run stopped early" in str(w.message)]


# ----------------------------------------------------------------------------- NaN / inf
@pytest.fixture
def nan_after(monkeypatch):
    """Make the objective return NaN from its k-th evaluation on (k set by the test)."""
    state = {"k": None, "calls": None}
    real = transfer.make_objective

    def make_objective(*args, **kwargs):
        objective = real(*args, **kwargs)
        calls = tf.Variable(0, dtype=tf.int64, trainable=False)
        state["calls"] = calls

        def poisoned(x):
            total, terms = objective(x)
            calls.assign_add(1)
            bad = calls >= state["k"]
            return tf.where(bad, tf.constant(np.nan, tf.float32), total), terms

        return poisoned

    monkeypatch.setattr(transfer, "make_objective", make_objective)
    return state


def test_nan_loss_stops_the_run_and_keeps_the_last_finite_image(nan_after, tmp_path):
    nan_after["k"] = 4  # L-BFGS (the default): may stop inside a line search
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = transfer.transfer_style(_img(), _img(seed=1), steps=20, frame_every=1, **TINY)
    assert result.stopped == "non-finite loss"
    assert 1 <= len(result.history.loss) < 20 and np.isfinite(result.history.loss).all()
    assert result.image.dtype == np.uint8 and result.image.shape == (26, 32, 3)
    assert len(result.frames) == len(result.history.step) + 1
    (message,) = _stop_warnings(record)
    assert "\n" not in message and "NaN or infinite" in message and "lower" in message
    path = result.save(tmp_path / "nan.png")
    meta = _strict_json(path.with_suffix(".json"))
    assert meta["stopped"] == "non-finite loss" and meta["final_losses"]["total"] is not None
    assert not _leftovers(tmp_path)


def test_nan_run_returns_exactly_the_best_image_before_the_nan(nan_after):
    nan_after["k"] = 4  # Adam: evaluations 1-3 (at x0, x1, x2) are finite, i.e. steps 1 and 2
    with pytest.warns(RuntimeWarning, match="NaN or infinite after 2 step"):
        stopped = transfer.transfer_style(_img(), _img(seed=1), steps=10, optimizer="adam", **TINY)
    nan_after["k"] = 10**9
    clean = transfer.transfer_style(_img(), _img(seed=1), steps=2, optimizer="adam", **TINY)
    assert stopped.stopped == "non-finite loss" and clean.stopped == "completed"
    assert stopped.history.loss == clean.history.loss
    np.testing.assert_array_equal(stopped.image, clean.image)


def test_infinite_loss_from_the_first_step_keeps_the_starting_image(tmp_path):
    """Weights near float32's maximum overflow at once: the start image comes back, no crash."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = transfer.transfer_style(
            _img(), _img(seed=1), steps=5, init="content", content_weight=3e38, style_weight=3e38, **TINY
        )
    assert result.stopped == "non-finite loss" and result.history.loss == []
    start = np.clip(np.round(transfer.resize_image(_img(), size=(26, 32))), 0, 255)
    assert np.abs(result.image.astype(float) - start).max() <= 1
    assert "starting image" in _stop_warnings(record)[0]
    _strict_json(result.save(tmp_path / "inf.png").with_suffix(".json"))
    result.final_losses = {"total": float("inf"), "style": float("nan"), "content": 1.0}
    assert result.metadata()["final_losses"] == {"total": None, "style": None, "content": 1.0}


def test_cli_nan_stop_prints_one_line_saves_and_exits_1(tmp_path, capsys):
    out = tmp_path / "nan.png"
    code, stdout, err = run_cli(
        capsys, "transfer", "--steps", "3", "--content-weight", "3e38", "--style-weight", "3e38",
        "--init", "noise", "-o", str(out), *CLI_TINY,
    )  # fmt: skip
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "NaN or infinite" in lines[0] and "--style-weight" in lines[0]
    assert "saved" in stdout and out.exists()
    assert _strict_json(out.with_suffix(".json"))["stopped"] == "non-finite loss"
    assert not _leftovers(tmp_path)


# ----------------------------------------------------------------------------- Ctrl-C (API / notebook)
def _interrupt_at(k):
    def callback(step, loss, x):
        if step == k:
            raise KeyboardInterrupt

    return callback


def test_keyboard_interrupt_returns_the_best_image_so_far(tmp_path):
    """L-BFGS here; the CLI tests below interrupt L-BFGS in-process and Adam with a real SIGINT."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = transfer.transfer_style(
            _img(), _img(seed=1), steps=50, frame_every=1,
            callback=_interrupt_at(3), **TINY,
        )  # fmt: skip
    assert result.stopped == "interrupted"
    assert result.history.step == [1, 2, 3] and len(result.frames) == 4
    assert result.image.dtype == np.uint8 and result.image.shape == (26, 32, 3)
    (message,) = _stop_warnings(record)
    assert "interrupted after 3 step(s)" in message
    path = result.save(tmp_path / "stopped.png", animation=tmp_path / "stopped.gif")
    meta = _strict_json(path.with_suffix(".json"))
    assert meta["stopped"] == "interrupted" and meta["animation"].endswith("stopped.gif")
    assert (tmp_path / "stopped.gif").stat().st_size > 0
    assert not _leftovers(tmp_path)


def test_interrupt_between_pyramid_stages_keeps_the_coarse_result(monkeypatch):
    calls = []
    real = transfer._initial

    def initial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # preparing the full-size stage
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(transfer, "_initial", initial)
    with pytest.warns(RuntimeWarning, match="interrupted after 2 step"):
        result = transfer.transfer_style(
            _img(64, 64),
            _img(seed=1),
            size=64,
            steps=5,
            pyramid=((0.5, 2),),
            weights="random",
            progress=False,
        )
    assert result.stopped == "interrupted" and result.history.step == [1, 2]
    assert result.image.shape == (32, 32, 3)  # the finished coarse stage
    assert len(result.timings["stages"]) == 1


def test_interrupt_before_any_step_propagates_from_the_api(monkeypatch):
    def slow_build(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "build_extractor", slow_build)
    with pytest.raises(KeyboardInterrupt):
        transfer.transfer_style(_img(), _img(seed=1), steps=3, **TINY)


def test_cli_interrupt_before_any_step_prints_one_line_and_exits_130(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))

    def slow_build(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "build_extractor", slow_build)
    code, stdout, err = run_cli(capsys, "transfer", "--steps", "3", *CLI_TINY)
    assert code == 130 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err
    assert not list((tmp_path / "out").rglob("*.png"))


def test_cli_interrupt_saves_image_sidecar_and_frames(monkeypatch, tmp_path, capsys):
    real = transfer.optimize

    def optimize(*args, **kwargs):
        return real(*args, **{**kwargs, "callback": _interrupt_at(2)})

    monkeypatch.setattr(transfer, "optimize", optimize)
    out = tmp_path / "ctrl_c.png"
    code, stdout, err = run_cli(
        capsys, "transfer", "--steps", "50", "--animation", "gif", "-o", str(out), *CLI_TINY
    )
    assert code == 130
    assert err.strip() == "interrupted: saved the best image so far"
    meta = _strict_json(out.with_suffix(".json"))
    assert meta["stopped"] == "interrupted" and meta["timings"]["stages"][0]["steps"] == 2
    assert out.exists() and (tmp_path / "ctrl_c_optimisation.gif").exists()
    assert not _leftovers(tmp_path)


def test_cli_sigint_in_a_subprocess_saves_everything_and_exits_130(tmp_path):
    """A real Ctrl-C: SIGINT once the progress bar shows the first step."""
    code, stdout, stderr = signal_cli_run(tmp_path, signal.SIGINT)
    assert code == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted: saved the best image so far" in stderr
    (image,) = (tmp_path / "out").glob("transfer/*/result.png")
    meta = _strict_json(image.with_suffix(".json"))
    assert meta["stopped"] == "interrupted" and 1 <= meta["timings"]["stages"][0]["steps"] < 5000
    assert image.with_name("result_optimisation.gif").stat().st_size > 0
    assert str(image) in stdout
    assert not _leftovers(tmp_path / "out")


# ----------------------------------------------------------------------------- never overwrite
def test_run_folders_are_reserved_exclusively(tmp_path):
    wanted = tmp_path / "transfer" / "20250101-120000-chelsea" / "result.png"
    first = cli._reserve(wanted, explicit=False, overwrite=False)
    second = cli._reserve(wanted, explicit=False, overwrite=False)
    assert first == wanted and second.parent.name.endswith("-chelsea-2") and first.parent.is_dir()


def test_explicit_output_that_appeared_during_the_run_is_not_overwritten(tmp_path):
    out = tmp_path / "mine.png"
    assert cli._reserve(out, explicit=True, overwrite=False) == out
    out.write_bytes(b"someone else's")
    (tmp_path / "mine-2.png").write_bytes(b"also taken")
    assert cli._reserve(out, explicit=True, overwrite=False) == tmp_path / "mine-3.png"
    assert cli._reserve(out, explicit=True, overwrite=True) == out


def test_two_cli_runs_in_the_same_second_get_two_folders(monkeypatch, tmp_path, capsys):
    import datetime as real_dt

    class Frozen(real_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2025, 1, 1, 12, 0, 0)

    monkeypatch.setattr(cli, "dt", types.SimpleNamespace(datetime=Frozen))
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    for _ in range(2):
        code, _, err = run_cli(capsys, "texture", "--steps", "1", *CLI_TINY)
        assert code == 0, err
    folders = sorted(p.parent.name for p in (tmp_path / "out").glob("texture/*/result.png"))
    assert folders == ["20250101-120000-hubble-deep-field", "20250101-120000-hubble-deep-field-2"]


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    code, _, err = run_cli(capsys, "texture", "--steps", "1", "-o", str(out), *CLI_TINY)
    assert code == 2 and "--overwrite" in err and out.read_bytes() == b"precious"
    code, _, err = run_cli(capsys, "texture", "--steps", "1", "-o", str(out), "--overwrite", *CLI_TINY)
    assert code == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".json").exists()


# ----------------------------------------------------------------------------- no partial files
def test_sidecar_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transfer.os, "replace", broken_replace)
    with pytest.raises(OSError):
        transfer.write_json({"a": 1}, tmp_path / "meta.json")
    assert list(tmp_path.iterdir()) == []


def test_failed_animation_still_writes_the_sidecar_and_says_so(tmp_path, monkeypatch):
    result = transfer.synthesize_texture(_img(), steps=2, frame_every=1, **TINY)
    import imageio.v3 as iio

    def no_writer(*args, **kwargs):
        raise RuntimeError("no backend for this format\nsecond line")

    monkeypatch.setattr(iio, "imwrite", no_writer)
    with pytest.raises(ImageError) as info:
        result.save(tmp_path / "t.png", animation=tmp_path / "t.gif")
    assert "\n" not in str(info.value) and "sidecar" in str(info.value)
    meta = _strict_json(tmp_path / "t.json")
    assert "no backend" in meta["animation_error"] and (tmp_path / "t.png").exists()
    assert not (tmp_path / "t.gif").exists() and not _leftovers(tmp_path)


def test_a_folder_summary_names_the_first_few_failures_and_counts_the_rest():
    """10,000 bad files: one short summary line (it was 120 KB), not every name."""
    from pathlib import Path

    from nst_tf.files import SUMMARY_NAMES, FolderReport

    report = FolderReport(written=[Path("ok.png")], seconds=2.0, total=10_001)
    report.failed = {f"photos/bad{i:05d}.jpg": "not an image" for i in range(10_000)}
    line = report.summary()
    assert "\n" not in line and len(line) < 300, line
    assert "10000 failed: bad00000.jpg, bad00001.jpg" in line and "and 9,995 more" in line
    assert line.count(".jpg") == SUMMARY_NAMES
    report.failed = {"a/x.jpg": "bad"}
    assert "; 1 failed: x.jpg; 9999 not started" in report.summary()


def test_an_output_name_too_long_for_the_file_system_is_refused_before_the_run(tmp_path, capsys):
    """A 250-byte -o name fits the file system but not its temporary name: refused at once (it was
    found only when the result was saved, and the rescue copy failed on the same name)."""
    from tests.conftest import run_cli

    long = tmp_path / ("x" * 246 + ".png")
    code, out, err = run_cli(capsys, "transfer", "--steps", "1", "--size", "32", "-o", str(long))
    assert code == 2 and "bytes, longer than the file system allows" in err and err.count("\n") == 1, err
    assert "transfer" not in out and list(tmp_path.iterdir()) == []  # no work, nothing written
    deep = tmp_path / ("d" * 300) / "r.png"  # a folder on the way
    code, _, err = run_cli(capsys, "transfer", "--steps", "1", "--size", "32", "-o", str(deep))
    assert code == 2 and "300 bytes" in err, err
    code, _, err = run_cli(
        capsys, "train", "--steps", "1", "--size", "32", "-o", str(tmp_path / ("m" * 250 + ".keras"))
    )
    assert code == 2 and "bytes, longer than the file system allows" in err, err
