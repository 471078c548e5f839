"""nst_tf.files: safe reads, the checks of output folders and names, the atomic writer, the
``NST_OFFLINE`` parser and ``~`` in every path option.

The robustness checks of the round-two review (issue #13), through every reader and writer that
goes through nst_tf.files. Each asserts the exit status (or the error type), that the message is one
line without a traceback, and the state of the folder: nothing partial, nothing of the user's
replaced. Real special files are used where the machine has them (a FIFO, /dev/zero, /proc, a tiny
tmpfs mounted for the test when running as root, skipped otherwise) and a simulated ENOSPC where it
has not. Last, the README's table of ``NST_*`` variables against what the code reads.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI_TINY, ROOT, run_cli
from conftest import file_tree as _tree
from conftest import in_thread as _in_thread
from conftest import leftovers as _leftovers
from conftest import one_line as _one_line

from nst_tf import data, files, images, transfer
from nst_tf import weights as W
from nst_tf.config import Config
from nst_tf.errors import ConfigError, ImageError, OutputError, WeightsError

CLI_TINY_OWN_WEIGHTS = ["--size", "32", "--pyramid", "none", "--quiet", "--steps", "1"]


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


# ------------------------------------------ special files as inputs: refused at once, never read (open_input)
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


# ----------------------------- output folders and names: checked before the run (check_names, check_writable)
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


# --------------------------- the atomic writer: a full disk, a file appearing, planted symlinks, an interrupt
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


def test_a_file_appearing_during_the_save_is_not_replaced(tmp_path):
    """overwrite=False publishes with a hard link, which fails if the name was taken meanwhile."""

    def sneaky(fh):
        (tmp_path / "r.json").write_bytes(b"appeared meanwhile")
        fh.write(b"{}")

    with pytest.raises(OutputError, match="already exists"):
        files.write_files({tmp_path / "r.json": sneaky}, overwrite=False)
    assert _tree(tmp_path) == {"r.json": b"appeared meanwhile"}


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


def test_an_interrupt_while_writing_leaves_no_temporary_file(tmp_path):
    def interrupted(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    (tmp_path / "r.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        files.write_files({tmp_path / "r.png": lambda fh: fh.write(b"png"), tmp_path / "r.json": interrupted})
    assert _tree(tmp_path) == {"r.json": b"old"}


# ----------------------------------------------------------------------------- NST_OFFLINE: one parser
@pytest.mark.parametrize(
    "value, offline", [("", False), ("0", False), ("off", False), ("No", False), ("1", True), ("2", True),
                       ("on", True), ("TRUE", True), ("yes", True)],
)  # fmt: skip
def test_nst_offline_has_one_parser(value, offline, monkeypatch):
    monkeypatch.setenv("NST_OFFLINE", value)
    assert files.offline() is offline and data.offline() is offline and W._offline() is offline


def test_unknown_nst_offline_value_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("NST_OFFLINE", "maybe\n")
    with pytest.raises(ConfigError) as info:
        files.offline()
    _one_line(str(info.value), "NST_OFFLINE", "set it to 1")


# -------------------------------------- ~ in every path option (user_path); names printed escaped (printable)
def test_tilde_is_expanded_in_every_path_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    Config(size=32, steps=1, pyramid=(), task="texture", weights="random").to_json()
    (tmp_path / "c.json").write_text(
        json.dumps(Config(size=32, steps=1, pyramid=(), weights="random", task="texture").to_dict())
    )
    code, _, err = run_cli(capsys, "texture", "--config", "~/c.json", "-o", "~/r.png", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["config"]["size"] == 32
    code, _, err = run_cli(capsys, "texture", "--weights", "~/missing.h5", *CLI_TINY_OWN_WEIGHTS)
    assert code == 2
    _one_line(err, "missing.h5", "does not exist")
    with pytest.raises(WeightsError, match="does not exist"):
        W.find_vgg19_weights("~/missing.h5")
    assert images.save_image(np.zeros((16, 16, 3), np.uint8), "~/s.png") == tmp_path / "s.png"


NASTY = "bad\nname\x1b[31mred.png"


def test_names_with_newlines_and_escapes_are_printed_escaped(tmp_path, capsys):
    fifo = tmp_path / NASTY
    os.mkfifo(fifo)
    for argv in (
        ["--content", str(fifo)],
        ["--content", str(tmp_path / ("missing" + NASTY))],
        ["-o", str(fifo)],
    ):
        code, _, err = _in_thread(lambda: run_cli(capsys, "transfer", *argv, *CLI_TINY))  # noqa: B023
        assert code == 2
        line = _one_line(err, "bad\\nname\\x1b[31mred.png")
        assert "\x1b" not in line


# ----------------------------------------------------------------------------- README: every NST_* variable
def test_readme_table_lists_every_nst_variable_the_code_reads():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(NST_[A-Z0-9_]+)`", table, flags=re.M))
    used = set()
    for folder in ("nst_tf", "scripts", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"NST_[A-Z0-9_]+", path.read_text()))
    assert used - listed == set(), "README's environment table misses these"
    assert listed - used == set(), "README's environment table lists variables nothing reads"
