"""nst_tf.data's downloads against a real local HTTPS server: redirects hop by hop, the overall
deadline, and SIGTERM during a download (from the round-two review, issue #13).

The server runs on 127.0.0.1 only, with a self-signed certificate made with the openssl CLI (skipped
where there is no openssl). These tests sit beside test_data.py, not in it, because its autouse fake
network replaces the very opener (``data._urlopen``) they exercise.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from conftest import leftovers as _leftovers
from conftest import one_line as _one_line
from conftest import png_bytes as _png

from nst_tf import data
from nst_tf.errors import DownloadError


# --------------------------------------------------- a local HTTPS server (and a plain HTTP one) on 127.0.0.1
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


# ----------------------------------------------------------------------------- redirects and the deadline
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
