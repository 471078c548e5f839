"""Shared fixtures: real (tiny) images and the real VGG19 weights, resolved once."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")
# precision="auto" means float32 in the tests, so they give the same numbers on every machine; the
# bfloat16 path and auto's detection are tested by name (tests/test_precision.py).
os.environ.setdefault("NST_PRECISION", "float32")

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """A module of ``scripts/`` (not a package), loaded by its path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# Property tests: free to search locally, reproducible in CI (CI=true). The "ci" profile is
# derandomised (the same examples every run, chosen from the test's own code) and keeps no
# example database, so a CI run cannot fail by the luck of the draw; NST_HYPOTHESIS_PROFILE
# picks either profile by hand.
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    _hypothesis_settings.register_profile("dev")
    _profile = os.environ.get("NST_HYPOTHESIS_PROFILE") or (
        "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
    )
    _hypothesis_settings.load_profile(_profile)
except ImportError:  # hypothesis is a dev requirement; tests that use it import it themselves
    pass


@pytest.fixture(autouse=True)
def _isolated_output(tmp_path, monkeypatch):
    """Runs in tests write into a temporary data/output, never the repository's."""
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "output"))


@pytest.fixture(scope="session")
def vgg_weights():
    """The resolved ImageNet VGG19 weights (dict) - the same files users get."""
    from nst_tf.weights import load_vgg19_weights

    weights, _ = load_vgg19_weights()
    return weights


@pytest.fixture(scope="session")
def content_small():
    from nst_tf.images import load_image

    return load_image(ROOT / "data/src/content/chelsea.jpg", long_side=64)


@pytest.fixture(scope="session")
def style_small():
    from nst_tf.images import load_image

    return load_image(ROOT / "data/src/style/hubble_deep_field.jpg", long_side=64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def quadratic_objective(target):
    """Mean squared distance to ``target``: a mean-based loss like ours, with per-pixel gradients ~1/n."""
    import tensorflow as tf

    target = tf.constant(target)

    def objective(x):
        total = tf.reduce_mean(tf.square(x - target), axis=[1, 2, 3])
        return total, {"distance": total}

    return objective


def run_cli(capsys, *argv):
    """``python -m nst_tf ARGV`` in-process: (exit code, stdout, stderr)."""
    from nst_tf.cli import main as _cli_main

    try:
        code = _cli_main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------- a fake network
class FakeResponse:
    """Enough of http.client.HTTPResponse for nst_tf's downloads."""

    def __init__(self, body: bytes, *, url: str, headers: dict | None = None, status: int = 200):
        self._buf = io.BytesIO(body)
        self._url = url
        self.headers = headers or {}
        self.status = status

    def read(self, n=-1):
        return self._buf.read(n)

    def geturl(self):
        return self._url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeNet:
    """Stands in for the network: maps URL -> bytes (a 200 response), an exception to raise, or a
    callable ``url -> response``; any other URL fails like an unreachable host."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.requests: list = []  #: what was asked for (Request objects or URLs)
        self.calls: list[tuple[str, float]] = []  #: (url, timeout) of every request

    def __call__(self, request, timeout=None):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.requests.append(request)
        self.calls.append((url, timeout))
        assert timeout is not None, "downloads must use a timeout"
        route = self.routes.get(url, urllib.error.URLError("no network in tests"))
        if isinstance(route, BaseException):
            raise route
        return route(url) if callable(route) else FakeResponse(route, url=url)

    @property
    def urls(self) -> list[str]:
        return [url for url, _ in self.calls]


@pytest.fixture
def fake_net(tmp_path, monkeypatch) -> FakeNet:
    """No real network (urllib and nst_tf.data's opener answer from ``fake_net.routes``), an empty
    cache, no extra image folders, and downloads allowed unless a test says otherwise."""
    from nst_tf import data

    net = FakeNet()
    monkeypatch.setattr(urllib.request, "urlopen", net)
    monkeypatch.setattr(data, "_urlopen", lambda request, timeout, deadline: net(request, timeout=timeout))
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NST_EXTRA_IMAGES", raising=False)
    monkeypatch.delenv("NST_OFFLINE", raising=False)
    return net


def signal_cli_run(tmp_path, sig, *, steps: int = 5000) -> tuple[int, str, str]:
    """Start ``python -m nst_tf transfer`` (Adam, 48 px, frames for a GIF) writing into
    ``tmp_path/out``, send it ``sig`` once the progress bar shows a step, and return
    (exit status, stdout, stderr): a real Ctrl-C, SIGTERM or SIGHUP."""
    import re
    import subprocess
    import sys
    import threading
    import time

    env = {**os.environ, "NST_OUTPUT_DIR": str(tmp_path / "out"), "NST_OFFLINE": "1", "NST_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", "transfer", "--size", "48", "--steps", str(steps), "--pyramid", "none",
         "--optimizer", "adam", "--weights", "random", "--animation", "gif", "--frame-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    chunks: list[bytes] = []
    progressed = threading.Event()
    step = re.compile(rb"\b[1-9]\d*/" + str(steps).encode() + rb"\b")

    def read():
        while True:
            chunk = proc.stderr.read1(4096)
            if not chunk:
                return
            chunks.append(chunk)
            if step.search(b"".join(chunks)):
                progressed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert progressed.wait(240), b"".join(chunks).decode(errors="replace")[-2000:]
        time.sleep(0.3)
        proc.send_signal(sig)
        # not communicate(): it would read stderr too, racing the reader thread for the last lines;
        # stdout is a few short lines, far below a pipe's buffer, so waiting first cannot block
        proc.wait(timeout=120)
        stdout = proc.stdout.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


# ----------------------------------------------------------------------------- robustness checks
# Shared by the robustness checks from the round-two review (issue #13) in test_files, test_cli,
# test_config, test_data, test_data_https, test_images and test_weights.
CLI_TINY = ["--size", "32", "--pyramid", "none", "--weights", "random", "--quiet", "--steps", "1"]


def png_bytes(h=40, w=48, seed=0) -> bytes:
    """A small random RGB PNG, as the bytes of the file."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def one_line(text: str, *words: str) -> str:
    """The error output is exactly one line, no traceback, containing ``words``."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def file_tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to compare before and after)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[Path]:
    """Hidden, temporary or partial files under ``folder`` (a failed write must leave none)."""
    return [p for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or p.suffix == ".part"]


def in_thread(fn, seconds=20):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    import threading

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
    import shutil
    import subprocess

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
