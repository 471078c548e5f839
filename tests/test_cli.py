"""The command line end to end, in a subprocess like a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
