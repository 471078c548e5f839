"""Robustness, round two (issue #13): hostile or unlucky inputs on real tiny files.

One section per class of the issue. Each test asserts the exit status (or the
error type), that the message is one line without a traceback, and the state
of the output folder: nothing partial, nothing of the user's replaced. Real
special files are used where the machine has them (a FIFO, /dev/zero, /proc,
a tiny tmpfs mounted for the test when running as root, skipped otherwise),
a simulated ENOSPC where it has not, real SIGTERM/SIGHUP to a CLI subprocess,
and a local HTTPS server (self-signed certificate made with the openssl CLI)
on 127.0.0.1 only.
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from nst_tf import cli, data, files, images, transfer
from nst_tf import weights as W
from nst_tf.config import MAX_STEPS, Config
from nst_tf.errors import ConfigError, DownloadError, ImageError, OutputError, WeightsError

ROOT = Path(__file__).resolve().parents[1]
CLI_TINY = ["--size", "32", "--pyramid", "none", "--weights", "random", "--quiet", "--steps", "1"]
CLI_TINY_OWN_WEIGHTS = ["--size", "32", "--pyramid", "none", "--quiet", "--steps", "1"]


def _png(h=40, w=48, seed=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _one_line(text: str, *words: str) -> str:
    """The error output is exactly one line, no traceback, containing ``words``."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to compare before and after)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or p.suffix == ".part"]


def _in_thread(fn, seconds=20):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def tiny_fs(tmp_path):
    """A real 256 KiB tmpfs (mounted for the test; skipped where mounting is not allowed)."""
    mnt = tmp_path / "tinyfs"
    mnt.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    vfs = os.statvfs(folder)
    free = vfs.f_bavail * vfs.f_frsize
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError:
            pass


def _result(h=96, w=96) -> transfer.Result:
    from nst_tf.optimize import History

    image = np.random.default_rng(1).integers(0, 256, (h, w, 3), np.uint8)
    frames = [image, image[::-1].copy()]
    return transfer.Result(image, History(), Config(size=w), {"total_s": 0.1}, frames=frames)


# ============================================================================ 1. OS errors about paths
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def test_fifo_as_image_is_refused_at_once_without_blocking(fifo, capsys):
    with pytest.raises(ImageError) as info:
        _in_thread(lambda: images.load_image(fifo))
    _one_line(str(info.value), "FIFO", str(fifo))
    code, out, err = _in_thread(lambda: run_cli(capsys, "transfer", "--content", str(fifo), *CLI_TINY))
    assert code == 2 and out == ""
    _one_line(err, "FIFO", "not an image")
    assert not (fifo.parent / "output").exists()  # no run folder made for a run that never started


@pytest.mark.parametrize(
    "path, words",
    [("/dev/zero", "character device"), ("/proc/self/status", "kernel file"), ("/", "directory")],
)
def test_special_files_as_images_say_what_they_are(path, words, capsys):
    if not os.path.exists(path):
        pytest.skip(f"no {path} here")
    with pytest.raises(ImageError) as info:
        _in_thread(lambda: images.load_image(path))
    message = _one_line(str(info.value), words)
    assert "0 bytes" not in message and "no such file" not in message


def test_dev_zero_as_weights_does_not_hang(monkeypatch, capsys, tmp_path):
    """It used to hash /dev/zero forever; now its type is checked before a byte is read."""
    monkeypatch.setenv("NST_VGG19_WEIGHTS", "/dev/zero")
    started = time.perf_counter()
    with pytest.raises(WeightsError) as info:
        _in_thread(lambda: W.resolve_vgg19_weights(verbose=False))
    assert time.perf_counter() - started < 5
    _one_line(str(info.value), "character device", "/dev/zero")
    monkeypatch.delenv("NST_VGG19_WEIGHTS")
    code, _, err = _in_thread(
        lambda: run_cli(
            capsys, "transfer", "--weights", "/dev/zero", "-o", str(tmp_path / "r.png"), *CLI_TINY_OWN_WEIGHTS
        )
    )
    assert code == 2
    _one_line(err, "character device")
    assert list(tmp_path.iterdir()) == []


def test_fifo_as_weights_and_config_do_not_block(fifo, capsys, tmp_path):
    with pytest.raises(WeightsError, match="FIFO"):
        _in_thread(lambda: W.read_keras_h5(fifo))
    code, _, err = _in_thread(lambda: run_cli(capsys, "transfer", "--config", str(fifo), *CLI_TINY))
    assert code == 2
    _one_line(err, "FIFO", "config")


def test_name_longer_than_the_file_system_allows(tmp_path, capsys):
    long = tmp_path / ("x" * 300 + ".png")
    with pytest.raises(ImageError) as info:
        images.load_image(long)
    _one_line(str(info.value), "longer than the file system allows")
    code, _, err = run_cli(capsys, "transfer", "-o", str(long), *CLI_TINY)
    assert code == 2
    _one_line(err, "longer than the file system allows")
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_is_refused_before_the_run(tiny_fs, capsys, monkeypatch):
    (tiny_fs / "mine.txt").write_text("keep")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    before = _tree(tiny_fs)
    started = []
    monkeypatch.setattr(transfer, "build_extractor", lambda *a, **k: started.append(1))
    code, _, err = run_cli(capsys, "texture", "-o", str(tiny_fs / "sub" / "r.png"), *CLI_TINY)
    assert code == 2 and not started  # refused before the optimisation
    _one_line(err, "read-only")
    with pytest.raises(ImageError, match="read-only"):
        images.save_image(np.zeros((16, 16, 3), np.uint8), tiny_fs / "x.png")
    assert _tree(tiny_fs) == before


@pytest.mark.parametrize("where", ["dir", "proc"])
def test_unwritable_output_is_refused_before_the_run(where, tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(transfer, "build_extractor", lambda *a, **k: started.append(1))
    if where == "dir":
        out = tmp_path / "existing_dir.png"
        out.mkdir()
        argv, words = ["-o", str(out), "--overwrite"], "directory"
    else:
        argv, words = ["-o", "/proc/nst_tf_x.png"], "cannot write results to '/proc'"
    code, out_text, err = run_cli(capsys, "texture", *argv, *CLI_TINY)
    assert code == 2 and out_text == "" and not started
    _one_line(err, words)


def test_output_folders_are_created_only_after_the_inputs_loaded(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "r.png"
    code, _, err = run_cli(
        capsys, "transfer", "--content", str(tmp_path / "missing.png"), "-o", str(out), *CLI_TINY
    )
    assert code == 2
    _one_line(err, "no such file")
    assert not (tmp_path / "new").exists()
    code, _, err = run_cli(capsys, "transfer", "--content", "no_such_name_x", *CLI_TINY)
    assert code == 2 and not (tmp_path / "output").exists()  # the default run folder neither


# ============================================================================ 2. full disk
def test_full_file_system_is_refused_before_the_run(tiny_fs, capsys, monkeypatch):
    (tiny_fs / "mine.txt").write_text("keep")
    before = _tree(tiny_fs)
    started = []
    monkeypatch.setattr(transfer, "build_extractor", lambda *a, **k: started.append(1))
    code, _, err = run_cli(
        capsys,
        "texture",
        "-o",
        str(tiny_fs / "r.png"),
        "--size",
        "512",
        "--pyramid",
        "none",
        "--weights",
        "random",
        "--quiet",
        "--steps",
        "1",
    )
    assert code == 2 and not started
    _one_line(err, "MiB free", "free some space")
    assert _tree(tiny_fs) == before


def test_real_enospc_while_saving_writes_nothing_and_replaces_nothing(tiny_fs):
    """Image fits, sidecar and animation do not: nothing is published, the old files stay."""
    (tiny_fs / "r.png").write_bytes(b"the user's old image")
    (tiny_fs / "r.json").write_bytes(b"the user's old sidecar")
    _fill(tiny_fs, leave=30_000)
    before = _tree(tiny_fs)
    with pytest.raises(OutputError) as info:
        _result(160, 160).save(tiny_fs / "r.png", animation=tiny_fs / "r.gif")
    _one_line(str(info.value), "no space left", "free some space")
    assert _tree(tiny_fs) == before and not _leftovers(tiny_fs)


def test_enospc_during_the_cli_save_rescues_the_result(tmp_path, capsys, monkeypatch):
    """Simulated ENOSPC in the output folder (the disk filled during the run)."""
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    (out_dir / "mine.txt").write_text("keep")
    real = files._create_temp

    def full(final, *rest):  # the check before the run (a probe file) passes: the disk fills later
        if out_dir in Path(final).parents and Path(final).name != "probe":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(final, *rest)

    monkeypatch.setattr(files, "_create_temp", full)
    code, out, err = run_cli(capsys, "texture", "-o", str(out_dir / "r.png"), "--animation", "gif", *CLI_TINY)
    assert code == 2
    line = _one_line(err, "no space left", "saved to")
    rescued = Path(re.search(r"saved to (\S+\.png) instead", line).group(1))
    try:
        assert rescued.read_bytes()[:4] == b"\x89PNG"
        assert json.loads(rescued.with_suffix(".json").read_text())["stopped"] == "completed"
        assert rescued.with_name("r_optimisation.gif").stat().st_size > 0
    finally:
        shutil.rmtree(rescued.parent, ignore_errors=True)
    assert _tree(out_dir) == {"mine.txt": b"keep"}


def test_sidecar_failure_never_leaves_an_image_without_its_sidecar(tmp_path, monkeypatch):
    real = files._create_temp

    def no_json(final, *rest):
        if str(final).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(final, *rest)

    monkeypatch.setattr(files, "_create_temp", no_json)
    with pytest.raises(OutputError, match="no space left"):
        _result().save(tmp_path / "r.png")
    assert list(tmp_path.iterdir()) == []


# ============================================================================ 3. --overwrite protects every file
@pytest.mark.parametrize("taken", ["keep.json", "keep_optimisation.gif", "keep.png"])
def test_every_file_a_run_writes_is_protected(taken, tmp_path, capsys):
    (tmp_path / taken).write_bytes(b"the user's own file")
    code, _, err = run_cli(
        capsys, "texture", "-o", str(tmp_path / "keep.png"), "--animation", "gif", *CLI_TINY
    )
    assert code == 2
    _one_line(err, taken, "already exists", "--overwrite")
    assert _tree(tmp_path) == {taken: b"the user's own file"}
    code, _, err = run_cli(
        capsys, "texture", "-o", str(tmp_path / "keep.png"), "--animation", "gif", "--overwrite", *CLI_TINY
    )
    assert code == 0, err
    assert sorted(_tree(tmp_path)) == ["keep.json", "keep.png", "keep_optimisation.gif"]
    assert (tmp_path / taken).read_bytes() != b"the user's own file"


def test_tilde_output_is_checked_where_it_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "keep.json").write_bytes(b"mine")
    code, _, err = run_cli(capsys, "texture", "-o", "~/keep.png", *CLI_TINY)
    assert code == 2
    _one_line(err, str(tmp_path / "keep.json"), "already exists")
    code, _, err = run_cli(capsys, "texture", "-o", "~/other.png", *CLI_TINY)
    assert code == 0, err
    assert (tmp_path / "other.png").is_file() and not Path("~").exists()


def test_a_file_appearing_during_the_save_is_not_replaced(tmp_path):
    """overwrite=False publishes with a hard link, which fails if the name was taken meanwhile."""

    def sneaky(fh):
        (tmp_path / "r.json").write_bytes(b"appeared meanwhile")
        fh.write(b"{}")

    with pytest.raises(OutputError, match="already exists"):
        files.write_files({tmp_path / "r.json": sneaky}, overwrite=False)
    assert _tree(tmp_path) == {"r.json": b"appeared meanwhile"}


# ============================================================================ atomic writer: planted symlink
def test_planted_symlink_at_the_temp_name_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    target = tmp_path / "out.json"
    planted = tmp_path / f".out.{'0' * 16}.tmp.json"
    planted.symlink_to(victim)
    files.write_text(target, '{"ok": true}')
    assert victim.read_text() == "precious" and planted.is_symlink()  # not followed, not removed
    assert json.loads(target.read_text()) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([victim.name, planted.name, target.name])


def test_every_temp_name_planted_is_one_line_and_touches_nothing(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "a" * 16)
    (tmp_path / f".out.{'a' * 16}.tmp.png").symlink_to(victim)
    with pytest.raises(ImageError) as info:
        images.save_image(np.zeros((16, 16, 3), np.uint8), tmp_path / "out.png")
    _one_line(str(info.value), "temporary names")
    assert victim.read_text() == "precious" and not (tmp_path / "out.png").exists()


def test_temp_names_are_unpredictable_and_cleaned_up_on_failure(tmp_path):
    seen = []

    def fail(fh):
        seen.append(Path(fh.name).name)
        fh.write(b"partial")
        raise OSError(errno.EIO, "Input/output error")

    for _ in range(2):
        with pytest.raises(OutputError, match="input/output error"):
            files.atomic_write(tmp_path / "x.png", fail)
    assert len(set(seen)) == 2 and all(re.fullmatch(r"\.x\.[0-9a-f]{16}\.tmp\.png", n) for n in seen)
    assert list(tmp_path.iterdir()) == []
