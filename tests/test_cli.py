"""The command line end to end, in a subprocess like a user runs it (the robustness checks at the
end run in-process, through ``conftest.run_cli``, or send real signals to a subprocess)."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI_TINY, run_cli, signal_cli_run
from conftest import file_tree as _tree
from conftest import leftovers as _leftovers
from conftest import one_line as _one_line

from nst_tf import files

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None, cwd=ROOT):
    full_env = {**os.environ, "NST_PROGRESS": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nst_tf", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def test_help_explains_every_flag():
    out = cli("transfer", "--help")
    assert out.returncode == 0
    for flag in (
        "--content",
        "--style",
        "--style-weight",
        "--size",
        "--steps",
        "--optimizer",
        "--pyramid",
        "--preserve-color",
        "--style-blend",
        "--style-scale",
        "--overwrite",
        "--animation",
    ):
        assert flag in out.stdout


@pytest.mark.slow
def test_transfer_end_to_end_writes_image_sidecar_and_gif(tmp_path):
    out = cli(
        "transfer",
        "--size",
        "48",
        "--steps",
        "4",
        "--pyramid",
        "none",
        "--animation",
        "gif",
        "--quiet",
        env={"NST_OUTPUT_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    (image,) = tmp_path.glob("transfer/*/result.png")
    meta = json.loads(image.with_suffix(".json").read_text())
    assert meta["config"]["steps"] == 4 and meta["config"]["size"] == 48
    assert meta["inputs"]["content"]["name"] == "chelsea"
    assert image.with_name("result_optimisation.gif").exists()
    # a second identical run gets its own folder instead of overwriting the first
    assert (
        cli(
            "transfer",
            "--size",
            "48",
            "--steps",
            "2",
            "--pyramid",
            "none",
            "--quiet",
            env={"NST_OUTPUT_DIR": str(tmp_path)},
        ).returncode
        == 0
    )
    assert len(list(tmp_path.glob("transfer/*/result.png"))) == 2


@pytest.mark.slow
def test_sidecar_reruns_the_same_config(tmp_path):
    first = tmp_path / "a.png"
    assert cli("texture", "--size", "32", "--steps", "3", "-o", str(first), "--quiet").returncode == 0
    second = tmp_path / "b.png"
    out = cli("texture", "--config", str(first.with_suffix(".json")), "-o", str(second), "--quiet")
    assert out.returncode == 0, out.stderr
    a = json.loads(first.with_suffix(".json").read_text())["config"]
    b = json.loads(second.with_suffix(".json").read_text())["config"]
    assert a == b


def test_existing_output_is_not_overwritten(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    out = cli("transfer", "-o", str(target), "--steps", "1", "--size", "32")
    assert out.returncode == 2 and "--overwrite" in out.stderr
    assert target.read_bytes() == b"precious"


def test_non_image_file_gives_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    out = cli("transfer", "--content", str(bad), "--size", "32", "--steps", "1")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "notes.jpg" in lines[0]


def test_unknown_layer_is_refused_before_any_work():
    out = cli("transfer", "--style-layers", "block1_conv1,conv9_9", "--size", "32")
    assert out.returncode == 2 and "conv9_9" in out.stderr and "block4_conv2" in out.stderr


# --------------------------- robustness (from the round-two review, issue #13), in-process (conftest.run_cli)


# ----------------------------------------------------------------- the run folder only once the inputs loaded
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


# --------------------------------------------------------- a full disk during the save: the result is rescued
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


# --------------------------------------------------------------- --overwrite protects every file a run writes
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


# ----------------------------------------------------------------------------- SIGTERM / SIGHUP
@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_save_like_ctrl_c(name, status, tmp_path):
    code, stdout, stderr = signal_cli_run(tmp_path, getattr(signal, name))
    assert code == status, stderr[-2000:]
    assert "Traceback" not in stderr and f"({name}): saved the best image so far" in stderr
    (image,) = (tmp_path / "out").glob("transfer/*/result.png")
    meta = json.loads(image.with_suffix(".json").read_text())
    assert meta["stopped"] == "interrupted" and 1 <= meta["timings"]["stages"][0]["steps"] < 5000
    assert image.with_name("result_optimisation.gif").stat().st_size > 0
    assert str(image) in stdout and not _leftovers(tmp_path / "out")
