"""The training pool (nst_tf.datasets, issue #23.1): offline sources, folders with bad files, crops,
manifests, and the COCO download against an HTTP server on 127.0.0.1 serving a tiny archive.

Real tiny inputs throughout: photos written by PIL, a zip of three small images, a loopback server
that supports Range requests and can cut a response short. No network beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_tf import datasets
from nst_tf.errors import ConfigError, DownloadError

ROOT = Path(__file__).resolve().parents[1]


def _jpeg(w: int, h: int, seed: int = 0, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    # smooth colour gradients plus noise: a photo-like image that JPEG keeps recognisable
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def _one_line(message: str, *words: str) -> None:
    assert message and "\n" not in message.strip(), message
    for word in words:
        assert word in message, (word, message)


# ----------------------------------------------------------------------------- offline sources
@pytest.fixture
def bad_folder(tmp_path):
    """A folder with two good photos (one in a subfolder) and every kind of bad entry."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.jpg").write_bytes(_jpeg(96, 80, seed=1))
    (folder / "sub" / "good2.png").write_bytes(_jpeg(80, 120, seed=2, fmt="PNG"))
    whole = _jpeg(96, 96, seed=3)
    (folder / "corrupt.jpg").write_bytes(whole[: len(whole) // 2])  # truncated mid-scan
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    os.symlink(folder / "missing.jpg", folder / "dangling.jpg")
    os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
    os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
    os.symlink(folder, folder / "sub" / "up")  # a folder link back up: never followed
    (folder / ".hidden.jpg").write_bytes(_jpeg(96, 96, seed=4))  # hidden: left out silently
    return folder


BAD = ("corrupt.jpg", "notes.jpg", "dangling.jpg", "loop_a.jpg", "loop_b.jpg")


def test_pool_from_skimage_photos_and_a_folder_with_bad_files(bad_folder):
    pytest.importorskip("skimage")
    with pytest.warns(UserWarning) as record:
        pool = datasets.training_pool(["skimage", bad_folder], crop_size=32)
    messages = [str(w.message) for w in record]
    for name in BAD:  # each bad entry skipped with a warning that names it
        assert any(name in m and "skipped training photo" in m for m in messages), (name, messages)
    assert all("\n" not in m for m in messages)
    by_source = pool.counts()
    skimage = {p.name for p in pool.photos if p.source == "scikit-image"}
    assert skimage == {"astronaut", "chelsea", "retina", "ihc"}  # coffee and rocket held out
    assert all(p.file.startswith("skimage/data/") for p in pool.photos if p.source == "scikit-image")
    folder = sorted(p.path.relative_to(bad_folder).as_posix() for p in pool.photos if p.source == "folder")
    assert folder == ["good.jpg", "sub/good2.png"]
    assert by_source == {"scikit-image": 4, "folder": 2}
    # the pool's stream only ever decodes good photos
    crops = next(iter(pool.dataset(batch_size=6, seed=0))).numpy()
    assert crops.shape == (6, 32, 32, 3)


def test_offline_sources_name_every_photo_with_its_licence():
    pool = datasets.training_pool(["offline"], crop_size=64)
    for photo in pool.photos:
        assert photo.licence and photo.source and photo.file
    mpl = [p for p in pool.photos if p.source == "matplotlib"]
    assert [p.name for p in mpl] == ["grace_hopper"] and "public domain" in mpl[0].licence
    assert not {p.name for p in pool.photos} & set(datasets.HELD_OUT)
    held = datasets.training_pool(["skimage"], crop_size=64, include_held_out=True)
    assert set(datasets.HELD_OUT) <= {p.name for p in held.photos}


def test_without_scikit_image_the_bundled_copies_stand_in(monkeypatch):
    real = datasets._package_dir
    monkeypatch.setattr(datasets, "_package_dir", lambda m: None if m == "skimage" else real(m))
    notes = []
    photos = datasets.skimage_photos(notes=notes)
    assert {p.name for p in photos} == {"astronaut", "chelsea", "retina"}  # ihc has no bundled copy
    assert all(p.source == "scikit-image (bundled copy)" and p.file.startswith("data/src/") for p in photos)
    assert len(notes) == 1 and "not installed" in notes[0] and "immunohistochemistry" in notes[0]


def test_scikit_learn_photos_are_used_when_installed_and_left_out_with_a_note_when_not(tmp_path, monkeypatch):
    images = tmp_path / "sklearn" / "datasets" / "images"
    images.mkdir(parents=True)
    for i, name in enumerate(("china.jpg", "flower.jpg")):
        (images / name).write_bytes(_jpeg(120, 90, seed=10 + i))
    real = datasets._package_dir
    monkeypatch.setattr(
        datasets, "_package_dir", lambda m: tmp_path / "sklearn" if m == "sklearn" else real(m)
    )
    photos = datasets.sklearn_photos()
    assert [p.name for p in photos] == ["china", "flower"]
    assert all("CC BY 2.0" in p.licence and "flickr.com" in p.credit for p in photos)
    monkeypatch.setattr(datasets, "_package_dir", lambda m: None if m == "sklearn" else real(m))
    notes = []
    assert datasets.sklearn_photos(notes) == [] and "scikit-learn is not installed" in notes[0]


def test_empty_pool_and_photos_too_small_for_the_crop_are_config_errors(tmp_path):
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "a.jpg").write_text("not an image")
    with pytest.warns(UserWarning, match="a.jpg"), pytest.raises(ConfigError) as info:
        datasets.training_pool([only_bad], crop_size=32)
    _one_line(str(info.value), "empty", "--data")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no images"):
        datasets.training_pool([empty])
    with pytest.raises(ConfigError, match="unknown data source"):
        datasets.training_pool(["imagenet"])

    small = tmp_path / "small"
    small.mkdir()
    (small / "tiny.jpg").write_bytes(_jpeg(60, 40))
    with pytest.raises(ConfigError) as info:
        datasets.training_pool([small], crop_size=64)
    _one_line(str(info.value), "smaller than the 64 px crop", "40 px", "--size")

    (small / "big.jpg").write_bytes(_jpeg(100, 80, seed=5))
    with pytest.warns(UserWarning, match="tiny.jpg"):
        pool = datasets.training_pool([small], crop_size=64)
    assert [p.name for p in pool.photos] == ["big"]


def test_crops_are_deterministic_by_seed_with_the_right_shape_and_range():
    pool = datasets.training_pool(["bundled"], crop_size=32)
    first = next(iter(pool.dataset(batch_size=4, seed=1))).numpy()
    again = next(iter(pool.dataset(batch_size=4, seed=1))).numpy()
    other = next(iter(pool.dataset(batch_size=4, seed=2))).numpy()
    resumed = next(iter(pool.dataset(batch_size=2, seed=1, start=2))).numpy()
    assert first.shape == (4, 32, 32, 3) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 255 and first.std() > 1
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(first[2:], resumed)  # resuming at crop 2 sees crops 2 and 3
    assert not np.array_equal(first[0], first[1])
    # a larger scale range zooms out further: the same (seed, i) gives a different crop
    wide = next(iter(pool.dataset(batch_size=4, seed=1, scales=(3.0, 4.0)))).numpy()
    assert not np.array_equal(first, wide)
    with pytest.raises(ConfigError, match="scales"):
        datasets.crops(pool.paths(), 32, 2, scales=(2.0, 1.0))


def test_fast_keeps_its_training_data_names():
    from nst_tf import fast

    assert fast._Photos is datasets.PhotoStream
    assert fast._sha256(ROOT / "data/src/content/chelsea.jpg") == datasets.sha256_file(
        ROOT / "data/src/content/chelsea.jpg", 12
    )
    stems = {p.stem for p in fast.training_photos()}
    assert {"astronaut", "chelsea", "camera", "coins", "retina"} <= stems and not stems & set(fast.HELD_OUT)


def test_manifest_lists_file_source_licence_and_sha256_beside_the_model(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine.jpg").write_bytes(_jpeg(80, 80, seed=7))
    # a copy of a bundled photo counts once: same bytes, same photo
    (folder / "copy.jpg").write_bytes((ROOT / "data/src/content/chelsea.jpg").read_bytes())
    pool = datasets.training_pool(["bundled", folder], crop_size=32)
    assert len(pool) == 6 and pool.counts() == {"bundled": 5, "folder": 1}
    path = datasets.write_manifest(tmp_path / "models" / "starry.keras", pool, style="starry_night")
    assert path == tmp_path / "models" / "starry.data.json"
    doc = json.loads(path.read_text("utf-8"))
    assert doc["format"] == 1 and doc["count"] == 6 and doc["crop_size"] == 32
    assert doc["style"] == "starry_night" and doc["sources"] == {"bundled": 5, "folder": 1}
    for entry, photo in zip(doc["photos"], pool.photos, strict=True):
        assert set(entry) == {"file", "source", "licence", "sha256"}
        assert entry["sha256"] == hashlib.sha256(photo.path.read_bytes()).hexdigest()
    files = [e["file"] for e in doc["photos"]]
    assert files[0] == "data/src/content/astronaut.jpg" and files[-1] == str(folder / "mine.jpg")
    chelsea = next(e for e in doc["photos"] if e["file"].endswith("chelsea.jpg"))
    assert chelsea["source"] == "bundled" and chelsea["licence"] == "CC0"


# ----------------------------------------------------------------------------- COCO, from 127.0.0.1
class _Server:
    """A loopback HTTP server for one archive: Range support, and a switch to cut responses short."""

    def __init__(self, payload: bytes, name: str = "val2017.zip"):
        self.payload, self.name = payload, name
        self.requests: list[str | None] = []  # the Range header of each GET (None: whole file)
        self.cut_next = 0  # cut this many coming responses after half their bytes
        self.ranges = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if not self.path.endswith("/" + server.name):
                    self.send_error(404)
                    return
                body, start = server.payload, 0
                if rng and server.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.cut_next > 0:
                    server.cut_next -= 1
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/zips"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _tiny_coco() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("val2017/", "")
        zf.writestr("val2017/000000000139.jpg", _jpeg(64, 48, seed=21))
        zf.writestr("val2017/000000000285.jpg", _jpeg(48, 64, seed=22))
        zf.writestr("val2017/000000000632.png", _jpeg(56, 56, seed=23, fmt="PNG"))
        zf.writestr("val2017/README.txt", "not an image")  # left out
        zf.writestr("../escape.jpg", _jpeg(40, 40, seed=24))  # a path out of the folder: left out
    return buf.getvalue()


@pytest.fixture
def coco(tmp_path, monkeypatch):
    payload = _tiny_coco()
    entry = {
        "file": "val2017.zip",
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "images": 3,
    }
    monkeypatch.setitem(datasets.COCO_ARCHIVES, "val2017", entry)
    monkeypatch.setattr(datasets, "_RETRY_PAUSE", 0.0)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NST_OFFLINE", raising=False)
    server = _Server(payload)
    monkeypatch.setenv("NST_COCO_URL", server.url)
    yield server
    server.close()


def _cache(tmp_path) -> list[str]:
    root = tmp_path / "cache" / "datasets" / "coco"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def test_the_pinned_coco_archives_are_the_ones_tensorflow_datasets_records():
    assert datasets.COCO_URL.startswith("https://")
    val, train = datasets.COCO_ARCHIVES["val2017"], datasets.COCO_ARCHIVES["train2017"]
    assert val["bytes"] == 815_585_330 and val["sha256"].startswith("4f7e2ccb2866")
    assert train["bytes"] == 19_336_861_798 and train["sha256"].startswith("69a8bb58ea5f")
    assert all(len(e["sha256"]) == 64 for e in datasets.COCO_ARCHIVES.values())


def test_coco_download_checks_extracts_and_happens_once(coco, tmp_path):
    folder = datasets.download_coco("val2017", progress=False)
    assert folder == tmp_path / "cache" / "datasets" / "coco" / "val2017"
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert names == ["000000000139.jpg", "000000000285.jpg", "000000000632.png"]
    assert not (tmp_path / "cache" / "datasets" / "escape.jpg").exists()
    assert _cache(tmp_path) == ["val2017", *(f"val2017/{n}" for n in [".nst_manifest.json", *names])]
    assert coco.requests == [None]
    pool = datasets.training_pool(["coco"], crop_size=32)  # again: no second request
    assert coco.requests == [None] and len(pool) == 3 and pool.counts() == {"coco/val2017": 3}
    entry = pool.manifest()[0]
    assert entry["file"] == "val2017/000000000139.jpg" and "Creative Commons" in entry["licence"]
    assert entry["sha256"] == hashlib.sha256((folder / "000000000139.jpg").read_bytes()).hexdigest()
    assert next(iter(pool.dataset(2))).numpy().shape == (2, 32, 32, 3)


def test_coco_checksum_mismatch_is_one_line_and_keeps_no_file(coco, tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.COCO_ARCHIVES["val2017"], "sha256", "0" * 64)
    with pytest.raises(DownloadError) as info:
        datasets.download_coco("val2017", progress=False)
    _one_line(str(info.value), "SHA-256", "expected 000000000000", "deleted", "NST_COCO_URL")
    assert _cache(tmp_path) == []  # neither the archive nor a partial file, nor a folder


def test_coco_download_interrupted_then_resumed(coco, tmp_path):
    size = len(coco.payload)
    coco.cut_next = 1  # within one call: the second try asks for the rest with a Range header
    folder = datasets.download_coco("val2017", progress=False)
    assert coco.requests == [None, f"bytes={size // 2}-"]
    assert len([p for p in folder.iterdir() if p.suffix in (".jpg", ".png")]) == 3


def test_coco_download_interrupted_resumes_on_the_next_call(coco, tmp_path):
    size = len(coco.payload)
    coco.cut_next = 1
    with pytest.raises(DownloadError) as info:
        datasets.download_coco("val2017", retries=0, progress=False)
    _one_line(str(info.value), "interrupted", f"{size // 2:,} of {size:,}", "resume")
    part = tmp_path / "cache" / "datasets" / "coco" / "val2017.zip.part"
    assert part.stat().st_size == size // 2 and _cache(tmp_path) == ["val2017.zip.part"]
    datasets.download_coco("val2017", retries=0, progress=False)
    assert coco.requests == [None, f"bytes={size // 2}-"]
    assert "val2017/.nst_manifest.json" in _cache(tmp_path) and "val2017.zip.part" not in _cache(tmp_path)


def test_coco_resume_from_a_server_without_range_starts_again(coco, tmp_path):
    coco.cut_next, coco.ranges = 1, False
    datasets.download_coco("val2017", progress=False)
    assert len(coco.requests) == 2  # the second answer was the whole file (200), written from byte 0
    assert "val2017/.nst_manifest.json" in _cache(tmp_path)


def test_coco_offline_and_unreachable_are_one_line_errors_that_name_the_fix(coco, tmp_path, monkeypatch):
    monkeypatch.setenv("NST_OFFLINE", "1")
    with pytest.raises(DownloadError) as info:
        datasets.training_pool(["coco"], crop_size=32)
    _one_line(str(info.value), "NST_OFFLINE=1", "val2017.zip", "--data")
    assert coco.requests == [] and _cache(tmp_path) == []

    monkeypatch.delenv("NST_OFFLINE")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused, at once
    with pytest.raises(DownloadError) as info:
        datasets.download_coco("val2017", base_url=f"http://127.0.0.1:{port}/zips", progress=False)
    _one_line(str(info.value), "cannot download", "NST_COCO_URL", "--data")
    assert _cache(tmp_path) == []


def test_coco_archive_placed_by_hand_is_checked_and_used_offline(coco, tmp_path, monkeypatch):
    monkeypatch.setenv("NST_OFFLINE", "1")
    target = tmp_path / "cache" / "datasets" / "coco" / "val2017.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(coco.payload[:-1] + b"!")  # one byte wrong
    with pytest.raises(DownloadError, match="SHA-256"):
        datasets.download_coco("val2017", progress=False)
    target.write_bytes(coco.payload)
    assert len(datasets.coco_photos("val2017", progress=False)) == 3 and coco.requests == []


def test_a_plain_http_address_is_refused_unless_the_user_set_it(monkeypatch):
    for env, default, kind in (("NST_COCO_URL", datasets.COCO_URL, "COCO"),
                               ("NST_CYCLEGAN_URL", datasets.CYCLEGAN_URL, "CycleGAN")):  # fmt: skip
        monkeypatch.delenv(env, raising=False)
        assert datasets._base(None, env, default, kind) == (default, False)
        with pytest.raises(DownloadError, match=f"https.*{env}"):
            datasets._base(None, env, default.replace("https://", "http://"), kind)
        assert datasets._base("http://127.0.0.1:1/zips", env, default, kind) == (
            "http://127.0.0.1:1/zips",
            True,
        )
        monkeypatch.setenv(env, "http://127.0.0.1:2/zips")  # a mirror the user set
        assert datasets._base(None, env, default, kind) == ("http://127.0.0.1:2/zips", True)
        with pytest.raises(DownloadError, match="https"):
            datasets._base("ftp://example.org/zips", env, default, kind)


# ----------------------------------------------------------------------------- train --data
def test_train_config_data_sources_and_their_errors(tmp_path):
    from nst_tf.fast_config import TrainConfig

    assert TrainConfig().sources() == ("bundled",)
    assert TrainConfig(content_dir="photos").sources() == ("photos",)
    config = TrainConfig(data=("offline", "photos/")).validate()
    assert config.sources() == ("offline", "photos/")
    # JSON has no tuples: a sidecar's config comes back equal
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    for bad in ("offline", [], [""], [3]):
        with pytest.raises(ConfigError, match="data must be a list of sources"):
            TrainConfig(data=bad).validate()
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(data=("offline",), content_dir="photos").validate()


@pytest.mark.slow
def test_train_data_folder_writes_the_manifest_beside_the_model(tmp_path, capsys):
    from tests.conftest import run_cli

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "p0.jpg").write_bytes(_jpeg(48, 40, seed=0))
    with Image.open(io.BytesIO(_jpeg(48, 40, seed=1))) as im:  # another picture (not p0 re-saved)
        im.transpose(Image.ROTATE_180).save(folder / "p1.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "tiny.png").write_bytes(_jpeg(20, 20, seed=9, fmt="PNG"))  # below the 32 px crop
    out = tmp_path / "m.keras"
    code, stdout, err = run_cli(
        capsys, "train", "--style", "gravel", "--data", str(folder), "--size", "32", "--batch-size", "1",
        "--steps", "1", "--width", "4", "--res-blocks", "1", "--output", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "broken.jpg" in err and "tiny.png" in err  # both reported, neither trained on
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["data_sources"] == [str(folder)] and side["held_out"] == []
    assert sorted(Path(d["path"]).name for d in side["data"]) == ["p0.jpg", "p1.jpg"]
    manifest = json.loads((tmp_path / side["data_manifest"]).read_text())
    assert side["data_manifest"] == "m.data.json" and manifest["count"] == 2
    assert manifest["sources"] == {"folder": 2} and manifest["style"] == "gravel"
    assert {e["sha256"][:12] for e in manifest["photos"]} == {d["sha256"] for d in side["data"]}
    # an unknown source: one line, exit 2, no model written
    code, _, err = run_cli(
        capsys, "train", "--data", "nosuchsource", "--size", "32", "--steps", "1",
        "--output", str(tmp_path / "n.keras"), "--quiet",
    )  # fmt: skip
    assert code == 2 and "unknown data source 'nosuchsource'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "n.keras").exists()


def test_a_picture_saved_again_counts_once_and_a_different_one_of_its_shape_does_not(tmp_path):
    """The bundled JPEG copies of scikit-image's astronaut, chelsea and retina (re-encoded, retina
    also smaller) are one picture each with the originals; a resized JPEG copy in a user's folder
    too; another photo of the same shape stays."""
    from PIL import Image

    pool = datasets.training_pool(("offline", "bundled"), crop_size=128)
    names = [p.name for p in pool.photos]
    assert len(names) == len(set(names)), names
    assert {p.source for p in pool.photos if p.name in ("astronaut", "chelsea", "retina")} == {"scikit-image"}
    folder = tmp_path / "mine"
    folder.mkdir()
    with Image.open(ROOT / "data/src/content/chelsea.jpg") as im:
        im.resize((im.width * 3 // 4, im.height * 3 // 4)).save(folder / "small_cat.jpg", quality=70)
        im.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "mirrored_cat.jpg")  # same shape, new picture
    pool = datasets.training_pool(["bundled", folder], crop_size=32)
    assert sorted(p.name for p in pool.photos if p.source == "folder") == ["mirrored_cat"]


# ----------------------------------------------------------------------------- CycleGAN, from 127.0.0.1
def _tiny_cyclegan() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("monet2photo/trainA/00001.jpg", _jpeg(40, 32, seed=31))
        zf.writestr("monet2photo/trainA/00002.jpg", _jpeg(32, 40, seed=32))
        zf.writestr("monet2photo/trainB/2013-11-08 16:45:24.jpg", _jpeg(48, 32, seed=33))
        zf.writestr("monet2photo/testA/00001.jpg", _jpeg(36, 36, seed=34))  # same name as in trainA
        zf.writestr("monet2photo/trainA/.hidden.jpg", _jpeg(32, 32, seed=35))  # left out
        zf.writestr("monet2photo/cover.jpg", _jpeg(32, 32, seed=36))  # not in a part: left out
        zf.writestr("../escape.jpg", _jpeg(32, 32, seed=37))  # out of the folder: left out
    return buf.getvalue()


@pytest.fixture
def cyclegan(tmp_path, monkeypatch):
    payload = _tiny_cyclegan()
    entry = {"file": "monet2photo.zip", "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
             "images": {"trainA": 2, "trainB": 1, "testA": 1, "testB": 0}}  # fmt: skip
    monkeypatch.setitem(datasets.CYCLEGAN_ARCHIVES, "monet2photo", entry)
    monkeypatch.setattr(datasets, "_RETRY_PAUSE", 0.0)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NST_OFFLINE", raising=False)
    server = _Server(payload, "monet2photo.zip")
    monkeypatch.setenv("NST_CYCLEGAN_URL", server.url)
    yield server
    server.close()


def test_the_pinned_cyclegan_archives_are_the_ones_tensorflow_datasets_records():
    assert datasets.CYCLEGAN_URL.startswith("https://")
    got = {k: (v["bytes"], v["sha256"][:12]) for k, v in datasets.CYCLEGAN_ARCHIVES.items()}
    assert got == {
        "monet2photo": (305_231_073, "88f91b00fc22"), "vangogh2photo": (306_590_349, "362c3473e70b"),
        "ukiyoe2photo": (292_946_532, "02a2a2fb5ecf"), "cezanne2photo": (279_885_071, "3a6c10ca21f9"),
    }  # fmt: skip
    assert all(
        len(v["sha256"]) == 64 and v["file"] == f"{k}.zip" for k, v in datasets.CYCLEGAN_ARCHIVES.items()
    )


def test_cyclegan_download_keeps_its_parts_and_happens_once(cyclegan, tmp_path):
    folder = datasets.download_cyclegan("monet2photo", progress=False)
    assert folder == tmp_path / "cache" / "datasets" / "cyclegan" / "monet2photo"
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    assert found == [
        "testA/00001.jpg",
        "trainA/00001.jpg",
        "trainA/00002.jpg",
        "trainB/2013-11-08 16:45:24.jpg",
    ]
    assert not (tmp_path / "cache" / "datasets" / "escape.jpg").exists()
    assert not (
        tmp_path / "cache" / "datasets" / "cyclegan" / "monet2photo.zip"
    ).exists()  # deleted once unpacked
    paintings = datasets.cyclegan_photos("monet2photo", "trainA", progress=False)
    photos = datasets.cyclegan_photos("monet2photo", "trainB", progress=False)
    assert cyclegan.requests == [None]  # one download for all of it
    assert [p.path.name for p in paintings] == ["00001.jpg", "00002.jpg"] and len(photos) == 1
    assert paintings[0].source == "cyclegan/monet2photo/trainA" and "WikiArt" in paintings[0].licence
    assert paintings[0].sha256 == hashlib.sha256(paintings[0].path.read_bytes()).hexdigest()
    assert (paintings[0].width, paintings[0].height) == (40, 32)
    with pytest.raises(ConfigError, match="choose trainA"):
        datasets.cyclegan_photos("monet2photo", "train")
    with pytest.raises(ConfigError, match="monet2photo"):
        datasets.download_cyclegan("picasso2photo")


def test_cyclegan_download_resumes_refuses_a_bad_archive_and_says_offline_in_one_line(
    cyclegan, tmp_path, monkeypatch
):
    cyclegan.cut_next = 1
    with pytest.raises(DownloadError) as info:
        datasets.download_cyclegan("monet2photo", progress=False, retries=0)
    _one_line(str(info.value), "interrupted", "resume", "NST_CYCLEGAN_URL")
    folder = datasets.download_cyclegan("monet2photo", progress=False)  # picks up where it stopped
    assert cyclegan.requests[0] is None and cyclegan.requests[1].startswith("bytes=")
    assert (folder / "trainA" / "00002.jpg").is_file()
    shutil.rmtree(folder)
    monkeypatch.setitem(datasets.CYCLEGAN_ARCHIVES["monet2photo"], "sha256", "f" * 64)
    with pytest.raises(DownloadError) as info:
        datasets.download_cyclegan("monet2photo", progress=False)
    _one_line(str(info.value), "SHA-256", "deleted", "NST_CYCLEGAN_URL")
    assert not any((tmp_path / "cache" / "datasets" / "cyclegan").glob("monet2photo*"))
    monkeypatch.setenv("NST_OFFLINE", "1")
    with pytest.raises(DownloadError) as info:
        datasets.download_cyclegan("monet2photo", progress=False)
    _one_line(str(info.value), "NST_OFFLINE=1", "CycleGAN monet2photo", "monet2photo.zip")
