"""Tests for nst_tf.data: bundled names, NST_EXTRA_IMAGES, the cache, and safe downloads.

No test touches the network: an autouse fixture replaces urllib.request.urlopen.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeResponse, run_cli
from PIL import Image

from nst_tf import data
from nst_tf.errors import ConfigError, DownloadError, ImageError

BUNDLED = {
    "content": ["astronaut", "chelsea", "coffee", "rocket"],
    "style": ["hubble_deep_field", "brick", "grass", "gravel"],
}
SHARED_IMAGES = Path(os.environ.get("NST_SHARED_IMAGES", "/work/shared/images"))


def _png_bytes(h=32, w=48, color=(200, 30, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def isolated(fake_net):
    """Every test here runs on the fake network (conftest.fake_net)."""
    return fake_net


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------
# bundled images
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind,name", [(k, n) for k, names in BUNDLED.items() for n in names])
def test_bundled_names_resolve_and_load(kind, name):
    path = data.resolve_image(name)
    assert path.is_file() and path.parent == data.BUNDLED_DIR / kind
    assert data.resolve_image(name, kind) == path
    assert data.resolve_image(path.name) == path  # with its extension
    assert path.stat().st_size < 300_000
    img = data.load(name, long_side=64)
    assert img.shape[-1] == 3 and max(img.shape[:2]) == 64 and img.dtype == np.float32


def test_bundled_listing_and_credits():
    content, style = data.list_images("content"), data.list_images("style")
    assert sorted(content) == sorted(BUNDLED["content"])
    assert sorted(style) == sorted(BUNDLED["style"])
    assert data.list_images() == {**content, **style}
    credits = (data.BUNDLED_DIR / "CREDITS.md").read_text(encoding="utf-8")
    for path in data.list_images().values():
        assert path.name in credits, f"{path.name} has no entry in data/src/CREDITS.md"


def test_kind_is_a_preference_not_a_filter():
    assert data.resolve_image("chelsea", "style") == data.list_images("content")["chelsea"]
    with pytest.raises(ConfigError):
        data.list_images("painting")


def test_existing_paths_pass_through(tmp_path):
    path = tmp_path / "mine.png"
    path.write_bytes(_png_bytes())
    assert data.resolve_image(path) == path
    assert data.resolve_image(str(path)) == path
    with pytest.raises(ImageError, match="no such file") as info:
        data.resolve_image(tmp_path / "missing.png")
    assert "missing.png" in str(info.value)
    with pytest.raises(ImageError, match="directory"):
        data.resolve_image(str(tmp_path) + "/")


# --------------------------------------------------------------------------
# NST_EXTRA_IMAGES
# --------------------------------------------------------------------------


def test_extra_images_folder(tmp_path, monkeypatch):
    extra = tmp_path / "extra"
    (extra / "style").mkdir(parents=True)
    (extra / "style" / "my_texture.png").write_bytes(_png_bytes())
    (extra / "holiday.jpg").write_bytes(_png_bytes())  # content sniffed, not the extension
    (extra / "chelsea.png").write_bytes(_png_bytes())  # must not shadow the bundled one
    (extra / "notes.txt").write_text("not an image")
    monkeypatch.setenv("NST_EXTRA_IMAGES", os.pathsep.join([str(tmp_path / "absent"), str(extra)]))

    assert data.resolve_image("my_texture") == extra / "style" / "my_texture.png"
    assert data.resolve_image("holiday", "content") == extra / "holiday.jpg"
    assert data.resolve_image("chelsea").parent == data.BUNDLED_DIR / "content"
    assert "my_texture" in data.list_images("style") and "my_texture" not in data.list_images("content")
    assert "holiday" in data.list_images("content") and "holiday" in data.list_images("style")
    assert "notes" not in data.list_images()
    assert data.load("my_texture").shape == (32, 48, 3)


@pytest.mark.skipif(not SHARED_IMAGES.is_dir(), reason="shared example paintings are not on this machine")
def test_shared_paintings_via_extra_images(monkeypatch, isolated):
    monkeypatch.setenv("NST_EXTRA_IMAGES", str(SHARED_IMAGES))
    monkeypatch.setenv("NST_OFFLINE", "1")
    path = data.resolve_image("starry_night")
    assert path.is_file() and SHARED_IMAGES in path.parents
    assert max(data.load("starry_night", long_side=64).shape[:2]) == 64
    assert data.resolve_image("tubingen", "content").is_file()
    assert isolated.requests == []  # found locally: no download attempted


# --------------------------------------------------------------------------
# not found / offline
# --------------------------------------------------------------------------


def test_offline_unknown_name_names_the_fix(monkeypatch, isolated):
    monkeypatch.setenv("NST_OFFLINE", "1")
    with pytest.raises(ImageError) as info:
        data.resolve_image("no_such_picture")
    message = str(info.value)
    assert "\n" not in message
    assert "no image named 'no_such_picture'" in message
    assert "NST_EXTRA_IMAGES" in message and "file path" in message
    assert "chelsea" in message  # lists what is available
    assert isolated.requests == []


def test_offline_painting_is_not_downloaded(monkeypatch, isolated):
    monkeypatch.setenv("NST_OFFLINE", "1")
    with pytest.raises(ImageError, match="downloads are off"):
        data.resolve_image("starry_night")
    assert isolated.requests == []
    with pytest.raises(ImageError, match="downloads are off"):
        data.resolve_image("night_cafe", allow_download=False)


def test_typo_gets_a_suggestion():
    with pytest.raises(ImageError, match="did you mean 'chelsea'"):
        data.resolve_image("chelsae", allow_download=False)


# --------------------------------------------------------------------------
# paintings: download into the cache, fallback URL, cache reuse
# --------------------------------------------------------------------------


def test_painting_downloads_once_then_comes_from_cache(isolated, tmp_path):
    entry = data.PAINTINGS["great_wave"]
    isolated.routes[entry["url"]] = _png_bytes(40, 60)
    path = data.resolve_image("great_wave")
    assert path.parent == tmp_path / "cache" / "images"
    assert data.load_image(path).shape == (40, 60, 3)
    request = isolated.requests[0]
    assert request.get_header("User-agent", "").startswith("nst_tf/")
    assert data.resolve_image("great_wave") == path
    assert len(isolated.requests) == 1  # second time: from the cache


def test_painting_falls_back_to_special_filepath(isolated):
    entry = data.PAINTINGS["water_lilies"]
    isolated.routes[entry["url"]] = urllib.error.HTTPError(entry["url"], 404, "Not Found", {}, None)
    fallback = "https://commons.wikimedia.org/wiki/Special:FilePath/Claude_Monet_-_Water_Lilies_-_1906%2C_Ryerson.jpg"
    isolated.routes[f"{fallback}?width={data.THUMB_WIDTH}"] = _png_bytes()
    assert data.resolve_image("water_lilies").is_file()
    assert isolated.urls[0] == entry["url"]


def test_failed_painting_download_is_one_line_image_error(isolated, tmp_path):
    with pytest.raises(ImageError) as info:
        data.resolve_image("kandinsky_composition_vii")
    message = str(info.value)
    assert "download failed" in message and "no network in tests" in message and "\n" not in message
    assert len(isolated.requests) == 2  # the URL, then the Special:FilePath fallback
    assert _files(tmp_path / "cache" / "images") == []


def test_painting_table_is_well_formed():
    assert {
        "starry_night",
        "night_cafe",
        "great_wave",
        "kandinsky_composition_vii",
        "woman_with_hat",
        "picabia_edtaonisl",
        "water_lilies",
        "tubingen",
    } <= set(data.PAINTINGS)
    for name, entry in data.PAINTINGS.items():
        assert {"title", "artist", "year", "url", "sha256"} <= set(entry), name
        assert entry["url"].startswith("https://upload.wikimedia.org/wikipedia/commons/"), name
        # Commons stores files under md5(name)[0]/md5(name)[:2]/: check the URL agrees
        digest = hashlib.md5(entry["commons_file"].encode()).hexdigest()
        assert f"/{digest[0]}/{digest[:2]}/" in entry["url"], name


# --------------------------------------------------------------------------
# download(): https only, size cap, checksum, image check, atomic
# --------------------------------------------------------------------------


URL = "https://example.org/picture.png"


@pytest.mark.parametrize(
    "url", ["http://example.org/a.png", "ftp://example.org/a.png", "file:///etc/passwd", "a.png"]
)
def test_download_refuses_non_https(url, tmp_path, isolated):
    with pytest.raises(DownloadError, match="https"):
        data.download(url, tmp_path / "dl" / "a.png")
    assert isolated.requests == [] and _files(tmp_path / "dl") == []


def test_download_success(tmp_path, isolated):
    body = _png_bytes()
    isolated.routes[URL] = body
    dest = data.download(URL, tmp_path / "dl" / "p.png", sha256=hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body
    assert _files(tmp_path / "dl") == ["p.png"]


def test_download_rejects_non_image_content(tmp_path, isolated):
    isolated.routes[URL] = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    with pytest.raises(DownloadError, match="not a usable image") as info:
        data.download(URL, tmp_path / "dl" / "p.png")
    assert "\n" not in str(info.value)
    assert _files(tmp_path / "dl") == []


def test_download_size_cap_while_streaming(tmp_path, isolated):
    isolated.routes[URL] = _png_bytes() + b"\0" * 5000
    with pytest.raises(DownloadError, match="limit"):
        data.download(URL, tmp_path / "dl" / "p.png", max_bytes=1000)
    assert _files(tmp_path / "dl") == []


def test_download_size_cap_from_content_length(tmp_path, isolated):
    isolated.routes[URL] = lambda url: FakeResponse(b"x", url=url, headers={"Content-Length": "999999999"})
    with pytest.raises(DownloadError, match="999,999,999 bytes"):
        data.download(URL, tmp_path / "dl" / "p.png")
    assert _files(tmp_path / "dl") == []


def test_download_checksum_mismatch(tmp_path, isolated):
    isolated.routes[URL] = _png_bytes()
    with pytest.raises(DownloadError, match="SHA-256"):
        data.download(URL, tmp_path / "dl" / "p.png", sha256="0" * 64)
    assert _files(tmp_path / "dl") == []


def test_download_failure_keeps_the_previous_file(tmp_path, isolated):
    dest = tmp_path / "dl" / "p.png"
    isolated.routes[URL] = _png_bytes(color=(1, 2, 3))
    data.download(URL, dest)
    before = dest.read_bytes()
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "PNG")
    isolated.routes[URL] = buf.getvalue()[: len(buf.getvalue()) // 2]  # truncated
    with pytest.raises(DownloadError):
        data.download(URL, dest)
    assert dest.read_bytes() == before
    assert _files(tmp_path / "dl") == ["p.png"]


def test_download_refuses_redirect_to_http(tmp_path, isolated):
    isolated.routes[URL] = lambda url: FakeResponse(_png_bytes(), url="http://evil.example/p.png")
    with pytest.raises(DownloadError, match="non-https"):
        data.download(URL, tmp_path / "dl" / "p.png")
    assert _files(tmp_path / "dl") == []


class _Exploding(FakeResponse):
    def read(self, n=-1):
        import http.client

        raise http.client.IncompleteRead(b"partial")


@pytest.mark.parametrize(
    "route",
    [
        urllib.error.HTTPError(URL, 503, "Service Unavailable", {}, None),
        urllib.error.URLError("Name or service not known"),
        TimeoutError("timed out"),
        ConnectionResetError(104, "Connection reset by peer"),
        lambda url: _Exploding(b"", url=url),
        lambda url: FakeResponse(b"", url=url),
    ],
    ids=["http-503", "dns", "timeout", "reset", "incomplete-read", "empty-body"],
)
def test_download_network_failures_are_download_errors(route, tmp_path, isolated):
    isolated.routes[URL] = route
    with pytest.raises(DownloadError) as info:
        data.download(URL, tmp_path / "dl" / "p.png")
    assert URL in str(info.value) and "\n" not in str(info.value)
    assert _files(tmp_path / "dl") == []


# --------------------------------------------------------------------------
# folders from the environment
# --------------------------------------------------------------------------


def test_output_and_cache_dirs_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    assert data.output_dir() == tmp_path / "out"
    from nst_tf.data import OUTPUT_DIR  # read when imported, not frozen at module import

    assert OUTPUT_DIR == data.OUTPUT_DIR == tmp_path / "out"
    monkeypatch.delenv("NST_OUTPUT_DIR")
    assert data.output_dir() == data.OUTPUT_DIR == data.PROJECT_ROOT / "data" / "output"
    assert data.image_cache_dir() == tmp_path / "cache" / "images"
    assert (data.PROJECT_ROOT / "nst_tf" / "data.py").is_file()


# --------------------------------------------------------------------------
# robustness (from the round-two review, issue #13): unreadable NST_EXTRA_IMAGES folders
# --------------------------------------------------------------------------


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
