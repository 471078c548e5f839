"""The training pool: photos for the networks that learn from data (issue #23.1).

A pool is built from *sources*, in the order given:

* ``"skimage"``: scikit-image's colour photos, read from the files its wheel ships
  (:data:`SKIMAGE_PHOTOS`; no download). scikit-image is a dev requirement: without it the
  bundled copies in ``data/src`` stand in for the photos that have one.
* ``"matplotlib"``: matplotlib's sample photo, ``grace_hopper.jpg`` (:data:`MATPLOTLIB_PHOTOS`).
* ``"sklearn"``: scikit-learn's two sample photos, ``china.jpg`` and ``flower.jpg`` (CC BY 2.0),
  only when scikit-learn is installed (it is not a dependency); otherwise left out, with a note.
* ``"offline"``: the three above (the default).
* ``"bundled"``: the bundled training set of ``nst_tf.fast`` (``data/src``, see CREDITS.md).
* ``"coco"`` / ``"coco-train"``: COCO 2017 ``val2017`` (5k images, 815 MB) or ``train2017``
  (118k images, 19 GB), downloaded once into ``cache_dir()/datasets/coco`` (:func:`download_coco`).
* (not a pool source) :func:`download_cyclegan` / :func:`cyclegan_photos`: the CycleGAN authors'
  painter-and-photo archives (``monet2photo``, ``vangogh2photo``, ``ukiyoe2photo``,
  ``cezanne2photo``, about 300 MB each) for the unpaired training of notebook 07 (issue #27),
  by the same pinned, resumable download as COCO, into ``cache_dir()/datasets/cyclegan``.
* a folder: every image below it, with folder mode's rules (:func:`nst_tf.data.images_below`;
  hidden files left out, a bad file, a dangling link or a link loop skipped with a warning).

The held-out photos of ``nst_tf.fast`` (coffee, rocket) stay out unless asked for. Every photo
carries its file, source and licence, so :func:`write_manifest` can store beside a model what
it was trained on. :meth:`Pool.dataset` is the ``tf.data`` stream of random crops at several
scales with random flips, a fixed function of (seed, crop index), so a resumed run sees the
crops a run that never stopped would have seen.

Nothing touches the network, TensorFlow or scikit-learn at import time.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from nst_tf import data as nst_data
from nst_tf import files
from nst_tf.errors import ConfigError, DownloadError, ImageError, NSTError
from nst_tf.images import image_info, load_image, resize_image

__all__ = [
    "COCO_ARCHIVES", "COCO_URL", "CYCLEGAN_ARCHIVES", "CYCLEGAN_URL", "MATPLOTLIB_PHOTOS", "SKIMAGE_PHOTOS", "SKLEARN_PHOTOS", "SOURCES",
    "Photo", "PhotoStream", "Pool", "bundled_photos", "coco_dir", "coco_photos", "crops",
    "cyclegan_dir", "cyclegan_photos", "download_coco", "download_cyclegan", "folder_photos", "manifest_path", "matplotlib_photos", "sha256_file",
    "skimage_photos", "sklearn_photos", "training_pool", "write_manifest",
]  # fmt: skip

#: Photos kept out of training unless asked for (``nst_tf.fast.HELD_OUT``: notebook 05, benchmarks).
HELD_OUT = ("coffee", "rocket")
#: Bundled content photos in the bundled training set (with every image in ``data/src/train/``).
TRAIN_BUNDLED = ("astronaut", "chelsea")

#: scikit-image's colour photographs shipped inside its wheel (``skimage/data/``, no download):
#: name -> (file, licence, credit), quoted from the docstrings of ``skimage/data/_fetchers.py``
#: (0.26.0). Left out on purpose: ``hubble_deep_field`` (the bundled *style* image),
#: ``motorcycle_left/right`` (Middlebury stereo benchmark: no licence stated), the synthetic
#: ``color``/``logo``/``chessboard_RGB`` and the grey photos (``camera``, ``coins``...).
SKIMAGE_PHOTOS: dict[str, tuple[str, str, str]] = {
    "astronaut": ("astronaut.png", "public domain", "NASA (Eileen Collins), via NASA Great Images"),
    "chelsea": ("chelsea.png", "CC0", "Stefan van der Walt"),
    "coffee": ("coffee.png", "CC0", "Rachel Michetti, courtesy of Pikolo Espresso Bar"),
    "rocket": ("rocket.jpg", "public domain", "SpaceX (DSCOVR launch, 2015)"),
    "retina": ("retina.jpg", "CC0 1.0", "Mikael Häggström, via Wikimedia Commons"),
    "immunohistochemistry": (
        "ihc.png",
        "no known copyright restrictions",
        "Center for Microscopy And Molecular Imaging (CMMI)",
    ),
}
#: matplotlib's sample photo (``matplotlib/mpl-data/sample_data``): name -> (file, licence, credit).
MATPLOTLIB_PHOTOS: dict[str, tuple[str, str, str]] = {
    "grace_hopper": (
        "grace_hopper.jpg",
        "public domain (US Navy official photograph, a work of the US federal government)",
        "US Navy portrait of Commodore Grace M. Hopper (Naval History and Heritage Command "
        "NH 96919-KN); public domain per matplotlib PR #1599, which added it to sample_data",
    ),
}
#: scikit-learn's two sample photos (``sklearn/datasets/images``, its README.txt): CC BY 2.0.
SKLEARN_PHOTOS: dict[str, tuple[str, str, str]] = {
    "china": (
        "china.jpg",
        "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)",
        "danielbuechele on Flickr (https://www.flickr.com/photos/danielbuechele/6061409035/)",
    ),
    "flower": (
        "flower.jpg",
        "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)",
        "vultilion on Flickr (https://www.flickr.com/photos/vultilion/6056698931/)",
    ),
}

#: Base address of the COCO archives; ``NST_COCO_URL`` or ``base_url=`` replace it (a mirror,
#: or a local server in the tests). The default is https; an ``http://`` base is accepted only
#: when set by the user, since every archive is checked against its pinned size and SHA-256.
COCO_URL = "https://images.cocodataset.org/zips"
#: The COCO 2017 image archives, with the sizes and SHA-256 sums that tensorflow-datasets records
#: for its ``coco`` builder (``tensorflow_datasets/url_checksums/coco.txt``).
COCO_ARCHIVES: dict[str, dict] = {
    "val2017": {
        "file": "val2017.zip",
        "bytes": 815_585_330,
        "sha256": "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05",
        "images": 5_000,
    },
    "train2017": {
        "file": "train2017.zip",
        "bytes": 19_336_861_798,
        "sha256": "69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929",
        "images": 118_287,
    },
}
COCO_LICENCE = (
    "COCO: Flickr photos under their own Creative Commons licences (the 'license' field of the "
    "COCO annotations); COCO terms of use https://cocodataset.org/#termsofuse"
)
#: Base address of the CycleGAN authors' archives (Zhu et al. 2017), as tensorflow-datasets records
#: it for its ``cycle_gan`` builder; ``NST_CYCLEGAN_URL`` or ``base_url=`` replace it (the authors'
#: own script now names ``http://efrosgans.eecs.berkeley.edu/cyclegan/datasets``: an http mirror you
#: set is accepted, since every archive is checked against its pinned size and SHA-256).
CYCLEGAN_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets"
#: The painter-and-photo archives of CycleGAN, with the sizes and SHA-256 sums that
#: tensorflow-datasets records (``tensorflow_datasets/url_checksums/cycle_gan.txt``) and the image
#: counts of its catalogue. ``A`` is the painter's work, ``B`` landscape photos.
CYCLEGAN_ARCHIVES: dict[str, dict] = {
    "monet2photo": {
        "file": "monet2photo.zip", "bytes": 305_231_073,
        "sha256": "88f91b00fc228f97c9411fbf1880ec1d119c98f1722e4cfcfaa2fb35fac05b04",
        "images": {"trainA": 1_072, "trainB": 6_287, "testA": 121, "testB": 751},
    },
    "vangogh2photo": {
        "file": "vangogh2photo.zip", "bytes": 306_590_349,
        "sha256": "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff",
        "images": {"trainA": 400, "trainB": 6_287, "testA": 400, "testB": 751},
    },
    "ukiyoe2photo": {
        "file": "ukiyoe2photo.zip", "bytes": 292_946_532,
        "sha256": "02a2a2fb5ecf425ca1bf86aca7304377da64a2a1d3b86df54eb65e4068bf3b08",
        "images": {"trainA": 562, "trainB": 6_287, "testA": 263, "testB": 751},
    },
    "cezanne2photo": {
        "file": "cezanne2photo.zip", "bytes": 279_885_071,
        "sha256": "3a6c10ca21f9485862f1cbd707744b9dc258954a04631271d23a3605eeb63cff",
        "images": {"trainA": 525, "trainB": 6_287, "testA": 58, "testB": 751},
    },
}  # fmt: skip
CYCLEGAN_LICENCE = (
    "CycleGAN datasets (Zhu et al. 2017), as their authors distribute them: paintings from WikiArt, "
    "landscape photos from Flickr; each work's own terms apply (not recorded per file)"
)
#: The source names :func:`training_pool` understands (anything else must be a folder).
SOURCES = ("offline", "skimage", "matplotlib", "sklearn", "bundled", "coco", "coco-train")
_OFFLINE = ("skimage", "matplotlib", "sklearn")
_COCO_SOURCES = {"coco": "val2017", "coco-val": "val2017", "coco-train": "train2017"}
#: Decoded photos kept in memory by a stream (a folder of thousands is read as it goes).
_DECODED_CACHE = 64
#: Seconds between two tries of an interrupted download (tests set it to 0).
_RETRY_PAUSE = 1.0
_MARKER = ".nst_manifest.json"
_MANIFEST_FORMAT = 1


# ----------------------------------------------------------------------------- photos
@dataclass(frozen=True)
class Photo:
    """One photo of a pool: where it is, where it came from and under which licence.

    ``file`` is the portable name written in manifests (``skimage/data/astronaut.png``,
    ``val2017/000000000139.jpg``, or the path of a file in a user's folder).
    """

    path: Path
    source: str
    licence: str
    file: str
    credit: str = ""
    width: int | None = None
    height: int | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    def short_side(self) -> int | None:
        return None if self.width is None or self.height is None else min(self.width, self.height)


def sha256_file(path, n: int | None = None) -> str:
    """SHA-256 of a file, hex; the first ``n`` characters when given (``files.sha256_file``)."""
    return files.sha256_file(path, n, what="photo", fix="pass an image file")


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _with_size(photo: Photo) -> Photo:
    info = image_info(photo.path)
    return Photo(**{**photo.__dict__, "width": info["width"], "height": info["height"]})


def skimage_photos(include_held_out: bool = False, notes: list | None = None) -> list[Photo]:
    """scikit-image's colour photos (:data:`SKIMAGE_PHOTOS`) from its installed wheel.

    Without scikit-image, the bundled copies in ``data/src`` (same photos, long side 512 px)
    stand in where one exists; what is left out is said in ``notes``.
    """
    root = _package_dir("skimage")
    folder = root / "data" if root is not None else None
    found, missing = [], []
    for name, (filename, licence, credit) in SKIMAGE_PHOTOS.items():
        if name in HELD_OUT and not include_held_out:
            continue
        path = folder / filename if folder is not None else None
        if path is not None and path.is_file():
            found.append(Photo(path, "scikit-image", licence, f"skimage/data/{filename}", credit))
            continue
        copy = _bundled_copy(name)
        if copy is not None:
            rel = copy.relative_to(nst_data.BUNDLED_DIR).as_posix()
            found.append(Photo(copy, "scikit-image (bundled copy)", licence, f"data/src/{rel}", credit))
        else:
            missing.append(name)
    if root is None and notes is not None:
        notes.append(
            "scikit-image is not installed: its photos come from the bundled copies in data/src"
            + (f" ({', '.join(missing)} left out)" if missing else "")
        )
    elif missing and notes is not None:
        notes.append(f"scikit-image photos not found in its wheel: {', '.join(missing)}")
    return [_with_size(p) for p in found]


def _bundled_copy(name: str) -> Path | None:
    for kind in ("content", "train"):
        for ext in (".jpg", ".png"):
            path = nst_data.BUNDLED_DIR / kind / f"{name}{ext}"
            if path.is_file():
                return path
    return None


def matplotlib_photos(notes: list | None = None) -> list[Photo]:
    """matplotlib's sample photo (:data:`MATPLOTLIB_PHOTOS`), from its ``mpl-data/sample_data``."""
    root = _package_dir("matplotlib")
    found = []
    for _name, (filename, licence, credit) in MATPLOTLIB_PHOTOS.items():
        path = root / "mpl-data" / "sample_data" / filename if root is not None else None
        if path is not None and path.is_file():
            found.append(
                Photo(path, "matplotlib", licence, f"matplotlib/mpl-data/sample_data/{filename}", credit)
            )
        elif notes is not None:
            notes.append(f"matplotlib's sample photo {filename} is not installed: left out")
    return [_with_size(p) for p in found]


def sklearn_photos(notes: list | None = None) -> list[Photo]:
    """scikit-learn's two sample photos (CC BY 2.0), when scikit-learn is installed; else none."""
    root = _package_dir("sklearn")
    if root is None:
        if notes is not None:
            notes.append("scikit-learn is not installed: its two sample photos (china, flower) are left out")
        return []
    found = []
    for _name, (filename, licence, credit) in SKLEARN_PHOTOS.items():
        path = root / "datasets" / "images" / filename
        if path.is_file():
            found.append(Photo(path, "scikit-learn", licence, f"sklearn/datasets/images/{filename}", credit))
        elif notes is not None:
            notes.append(f"scikit-learn's sample photo {filename} is missing: left out")
    return [_with_size(p) for p in found]


def bundled_photos(include_held_out: bool = False) -> list[Photo]:
    """The bundled training set: ``TRAIN_BUNDLED`` from ``data/src/content`` plus ``data/src/train/``
    (public domain / CC0 photos from scikit-image, see ``data/src/CREDITS.md``)."""
    names = TRAIN_BUNDLED + (HELD_OUT if include_held_out else ())
    paths = [Path(nst_data.resolve_image(name, "content", allow_download=False)) for name in names]
    paths += nst_data.images_below(nst_data.BUNDLED_DIR / "train")
    licences = {name: entry[1] for name, entry in SKIMAGE_PHOTOS.items()}
    licences.update(camera="CC0", coins="no known copyright restrictions")
    photos = []
    for path in paths:
        try:
            rel = "data/src/" + path.relative_to(nst_data.BUNDLED_DIR).as_posix()
        except ValueError:
            rel = str(path)
        licence = licences.get(path.stem, "see data/src/CREDITS.md")
        photos.append(Photo(path, "bundled", licence, rel, "see data/src/CREDITS.md"))
    return photos


def folder_photos(folder, *, licence: str = "the user's own (not recorded)") -> list[Photo]:
    """Every readable image below ``folder`` (:func:`nst_tf.data.images_below`: by extension,
    sorted, hidden files and folders left out, folder links not followed, so no loop).

    Each file is opened and decoded (small, JPEG draft mode) now: a text file named ``.jpg``, a
    corrupt or truncated image, a dangling symlink, a symlink loop, a FIFO is skipped with one
    warning naming it. Raises ConfigError when ``folder`` is not a folder or holds no image files.
    """
    path = files.user_path(folder)
    if not path.is_dir():
        raise ConfigError(f"data folder '{files.printable(path)}' is not a folder: pass a folder of photos")
    candidates = nst_data.images_below(path)
    if not candidates:
        raise ConfigError(
            f"no images (.jpg, .png, ...) in '{files.printable(path)}': pass a folder of photos"
        )
    found = []
    for file in candidates:
        try:
            info = image_info(file)
            load_image(file, long_side=320)  # decodes the whole file (draft mode): truncation shows here
        except (ImageError, ConfigError, OSError) as err:
            warnings.warn(
                f"skipped training photo {files.printable(file)}: {files.printable(err)}", stacklevel=2
            )
            continue
        found.append(Photo(file, "folder", licence, str(file), "", info["width"], info["height"]))
    return found


# ----------------------------------------------------------------------------- the pool
@dataclass
class Pool:
    """The photos of a training pool, the crop side they were chosen for, and what was left out."""

    photos: list[Photo]
    crop_size: int
    notes: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [p.path for p in self.photos]

    def __len__(self) -> int:
        return len(self.photos)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for photo in self.photos:
            out[photo.source] = out.get(photo.source, 0) + 1
        return out

    def describe(self) -> str:
        """One line: how many photos from which source, and what was left out."""
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        line = f"training pool: {len(self)} photos ({parts}), crops of {self.crop_size} px"
        return line + (f"; {'; '.join(self.notes)}" if self.notes else "")

    def manifest(self) -> list[dict]:
        """``[{file, source, licence, sha256}]``, one per photo, in pool order."""
        return [
            {
                "file": p.file,
                "source": p.source,
                "licence": p.licence,
                "sha256": p.sha256 or sha256_file(p.path),
            }
            for p in self.photos
        ]

    def dataset(self, batch_size: int, seed: int = 0, start: int = 0, scales=(1.0, 2.0)):
        """The endless ``tf.data`` stream of crops from this pool (:func:`crops`)."""
        return crops(self.paths(), self.crop_size, batch_size, seed, start, scales)


def training_pool(
    sources=("offline",),
    *,
    crop_size: int = 256,
    include_held_out: bool = False,
    coco_url: str | None = None,
    progress: bool | None = None,
) -> Pool:
    """Build the training pool from ``sources`` (names of :data:`SOURCES` or folders), in order.

    Photos whose short side is below ``crop_size`` are left out with one warning (they would be
    enlarged more than 2x); a picture met twice (the same file, or the same picture re-saved at the
    same size) counts once. COCO sources download
    on first use (:func:`download_coco`; one-line DownloadError when offline).

    Raises:
        ConfigError: an unknown source, a folder that is not one, an empty pool, or a pool
            whose photos are all smaller than ``crop_size``.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not isinstance(crop_size, int) or isinstance(crop_size, bool) or crop_size < 1:
        raise ConfigError(f"crop_size must be a positive number of pixels, got {crop_size!r}")
    notes: list[str] = []
    photos: list[Photo] = []
    for source in sources:
        photos += _source_photos(source, include_held_out, notes, coco_url, progress)
    if not photos:
        why = f" ({'; '.join(notes)})" if notes else ""
        raise ConfigError(
            f"the training pool is empty{why} — pass a folder of photos (--data DIR), "
            "or install scikit-image (pip install scikit-image)"
        )
    photos = _unique(photos)
    usable = [p for p in photos if (p.short_side() or crop_size) >= crop_size]
    small = [p for p in photos if p not in usable]
    if not usable:
        largest = max(small, key=lambda p: p.short_side() or 0)
        raise ConfigError(
            f"every photo of the training pool is smaller than the {crop_size} px crop (the largest short "
            f"side is {largest.short_side()} px, {files.printable(largest.file)}) — lower --size to "
            f"{largest.short_side()} or less, or add larger photos"
        )
    if small:
        shown = ", ".join(files.printable(p.file) for p in small[:3]) + (" ..." if len(small) > 3 else "")
        warnings.warn(
            f"left {len(small)} training photo(s) out, smaller than the {crop_size} px crop: {shown}",
            stacklevel=2,
        )
        notes.append(f"{len(small)} photo(s) smaller than the crop left out")
    return Pool(usable, crop_size, notes)


def _source_photos(source, include_held_out, notes, coco_url, progress) -> list[Photo]:
    name = source.strip().lower() if isinstance(source, str) else None
    if name == "offline":
        out = []
        for sub in _OFFLINE:
            out += _source_photos(sub, include_held_out, notes, coco_url, progress)
        return out
    if name == "skimage":
        return skimage_photos(include_held_out, notes)
    if name == "matplotlib":
        return matplotlib_photos(notes)
    if name == "sklearn":
        return sklearn_photos(notes)
    if name == "bundled":
        return [_with_size(p) for p in bundled_photos(include_held_out)]
    if name in _COCO_SOURCES:
        return coco_photos(_COCO_SOURCES[name], base_url=coco_url, progress=progress)
    path = files.user_path(source)
    if isinstance(source, os.PathLike) or path.is_dir() or os.sep in str(source) or "/" in str(source):
        return folder_photos(path)
    raise ConfigError(
        f"unknown data source {files.printable(source)!r}: choose {', '.join(SOURCES)}, or name a folder of photos"
    )


#: Two photos of the same shape whose 32 x 32 grey thumbnails differ by less than this many grey
#: levels on average are one picture saved twice (the bundled JPEG copies of scikit-image's photos
#: differ from them by under 1; two different photos of this project's pool by 60 or more).
SAME_PICTURE_GREY = 2.0


def _thumbnail(path: Path):
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("L", (128, 128))  # JPEG: decode at a fraction of the size
            return np.asarray(im.convert("L").resize((32, 32), Image.BILINEAR), np.float32)
    except (OSError, ValueError):  # unreadable: PhotoStream skips it later with its own warning
        return None


def _unique(photos: list[Photo]) -> list[Photo]:
    """The first photo of each picture: the same file named twice, a photo copied into a folder
    (same bytes), or the same picture saved again in another format or size (same aspect ratio,
    thumbnails within :data:`SAME_PICTURE_GREY`: the bundled JPEG copies of scikit-image's
    astronaut, chelsea and retina). Only photos whose aspect ratio another photo shares are decoded."""
    import numpy as np

    seen, out = set(), []
    for photo in photos:
        key = photo.sha256 or sha256_file(photo.path)
        if key not in seen:
            seen.add(key)
            out.append(Photo(**{**photo.__dict__, "sha256": key}))
    shapes: dict = {}  # aspect ratio -> photos
    for photo in out:
        if photo.width is not None:
            shapes.setdefault(round(photo.width / max(photo.height, 1), 2), []).append(photo)
    copies = set()
    for group in shapes.values():
        kept = []  # (photo, thumbnail) of the first of each picture of this shape
        for photo in group if len(group) > 1 else ():
            thumb = _thumbnail(photo.path)
            if thumb is not None and any(np.abs(thumb - t).mean() < SAME_PICTURE_GREY for _, t in kept):
                copies.add(photo.sha256)
            elif thumb is not None:
                kept.append((photo, thumb))
    return [p for p in out if p.sha256 not in copies]


# ----------------------------------------------------------------------------- manifests
def manifest_path(model_path) -> Path:
    """Where the data manifest of a model goes: ``M.keras`` -> ``M.data.json``."""
    path = files.user_path(model_path)
    return path.with_name(f"{path.stem}.data.json")


def write_manifest(path, pool_or_photos, **extra) -> Path:
    """Write the manifest of a pool (or list of :class:`Photo`) as JSON to ``path``; return it.

    ``path`` may be the model (``M.keras``: the manifest goes to ``M.data.json``) or a ``.json``
    file. The file holds ``{"format", "count", "sources", "photos": [{file, source, licence,
    sha256}], ...extra}``, written atomically.
    """
    path = files.user_path(path)
    if path.suffix != ".json":
        path = manifest_path(path)
    pool = pool_or_photos if isinstance(pool_or_photos, Pool) else Pool(list(pool_or_photos), 0)
    entries = pool.manifest()
    doc = {
        "format": _MANIFEST_FORMAT,
        "count": len(entries),
        "sources": pool.counts(),
        **({"crop_size": pool.crop_size} if pool.crop_size else {}),
        **({"notes": pool.notes} if pool.notes else {}),
        **extra,
        "photos": entries,
    }
    return files.write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- crops
class PhotoStream:
    """Scaled photos for crop ``i`` of the stream: a fixed function of (seed, i), so a resumed
    run sees the same photos a run that never stopped would have seen.

    ``item(i)`` picks a photo, scales it so its short side is ``scales[0]``-``scales[1]`` times
    ``size`` (never below ``size``), and returns it with a stateless seed for the crop and flip.
    A photo that cannot be read is skipped with a printed warning (once); if none can, ConfigError.
    """

    def __init__(self, paths, size: int, seed: int, scales=(1.0, 2.0)):
        self.paths, self.size, self.seed = [Path(p) for p in paths], int(size), int(seed)
        lo, hi = (float(s) for s in scales)
        if not 0 < lo <= hi:
            raise ConfigError(f"scales must be (low, high) with 0 < low <= high, got {scales!r}")
        if not self.paths:
            raise ConfigError("no training photos: pass a folder of photos")
        self.scales = (lo, hi)
        self.cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.bad: dict[Path, str] = {}

    def decoded(self, path: Path) -> np.ndarray | None:
        if path in self.cache:
            self.cache.move_to_end(path)
            return self.cache[path]
        if path in self.bad:
            return None
        try:
            img = load_image(path)
        except (ImageError, OSError) as err:
            self.bad[path] = str(err)
            print(f"warning: skipped training photo {files.printable(path)}: {files.printable(err)}")
            if len(self.bad) == len(set(self.paths)):
                raise ConfigError("none of the training photos could be read: see the warnings") from None
            return None
        self.cache[path] = img
        while len(self.cache) > _DECODED_CACHE:
            self.cache.popitem(last=False)
        return img

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, i])
        while True:
            img = self.decoded(self.paths[int(rng.integers(len(self.paths)))])
            if img is not None:
                break
        short = self.size * rng.uniform(*self.scales)
        h, w = img.shape[:2]
        hw = (max(self.size, round(h * short / min(h, w))), max(self.size, round(w * short / min(h, w))))
        return resize_image(img, size=hw), rng.integers(0, 2**31 - 1, 2, dtype=np.int64)

    def stream(self, start: int = 0):
        i = start
        while True:
            yield self.item(i)
            i += 1


def crops(paths, size: int, batch_size: int, seed: int = 0, start: int = 0, scales=(1.0, 2.0)):
    """Endless ``tf.data`` stream of (batch_size, size, size, 3) float32 RGB crops in [0, 255].

    Each crop: a photo chosen at random, scaled so its short side is ``scales[0]``-``scales[1]``
    times ``size``, a random ``size`` x ``size`` crop and a random left-right flip, all seeded by
    (``seed``, crop index) with stateless ops. ``start`` skips that many crops (resuming).
    """
    import tensorflow as tf

    photos = PhotoStream(paths, size, seed, scales)
    ds = tf.data.Dataset.from_generator(
        lambda: photos.stream(start),
        output_signature=(tf.TensorSpec((None, None, 3), tf.float32), tf.TensorSpec((2,), tf.int64)),
    )

    def augment(img, s):
        crop = tf.image.stateless_random_crop(img, (size, size, 3), seed=s)
        return tf.image.stateless_random_flip_left_right(crop, seed=s[::-1])

    return ds.map(augment).batch(batch_size, drop_remainder=True).prefetch(2)


# ----------------------------------------------------------------------------- COCO
def coco_dir(split: str = "val2017") -> Path:
    """Where the images of a COCO split live once downloaded: ``cache_dir()/datasets/coco/<split>``."""
    _check_split(split)
    return files.cache_dir() / "datasets" / "coco" / split


def _check_split(split: str) -> dict:
    if split not in COCO_ARCHIVES:
        raise ConfigError(f"unknown COCO split {split!r}: choose {' or '.join(COCO_ARCHIVES)}")
    return COCO_ARCHIVES[split]


def coco_photos(split: str = "val2017", **kw) -> list[Photo]:
    """The photos of a COCO split, downloaded first if needed (:func:`download_coco`)."""
    folder = download_coco(split, **kw)
    marker = json.loads((folder / _MARKER).read_text("utf-8"))
    return [
        Photo(folder / Path(e["file"]).name, f"coco/{split}", COCO_LICENCE, e["file"], "", e["width"], e["height"], e["sha256"])
        for e in marker["images"]
    ]  # fmt: skip


def _base(base_url: str | None, env: str, default: str, kind: str) -> tuple[str, bool]:
    """(base URL, whether http is allowed): the default is https only; a base the user set may be http."""
    chosen = base_url or os.environ.get(env, "").strip() or None
    base = (chosen or default).rstrip("/")
    scheme = urllib.parse.urlparse(base).scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and chosen is None):
        raise DownloadError(
            f"refusing to download {kind} from '{files.printable(base)}': only https:// (or an http:// "
            f"mirror you set in {env}) is allowed — set {env} to an https address"
        )
    return base, chosen is not None


def download_coco(
    split: str = "val2017",
    *,
    base_url: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    deadline: float | None = None,
    progress: bool | None = None,
    keep_archive: bool = False,
) -> Path:
    """Download and unpack a COCO 2017 image archive once; return the folder of its images.

    The archive (:data:`COCO_ARCHIVES`: its size and SHA-256 are pinned) comes from ``base_url``, ``NST_COCO_URL`` or
    :data:`COCO_URL` into ``cache_dir()/datasets/coco/<split>.zip.part``. An interrupted download
    resumes where it stopped (HTTP Range), within this call up to ``retries`` times, and on the
    next call otherwise. Only when its size and SHA-256 match is it unpacked (image files only,
    flattened, no path outside the folder) into a temporary folder that is renamed to
    :func:`coco_dir` with a marker listing every image (file, sha256, width, height); the
    archive is then deleted unless ``keep_archive``. An archive you downloaded yourself and put
    at ``cache_dir()/datasets/coco/<split>.zip`` is used as is (checked first). Progress bars
    (tqdm) unless ``progress=False`` or ``NST_PROGRESS=0``. ``timeout``: seconds per connect and
    read (a stalled server); ``deadline``: seconds one connection may last (default a week; an
    interrupted try resumes).

    Raises:
        DownloadError: one line — offline (``NST_OFFLINE=1``), no network, a server error, a
            checksum or size mismatch (the bad file is deleted, never kept as complete).
    """
    entry = _check_split(split)
    base = _base(base_url, "NST_COCO_URL", COCO_URL, "COCO")
    return _download_archive(
        _COCO, split, entry, coco_dir(split), base, retries=retries, timeout=timeout, deadline=deadline,
        progress=progress, keep_archive=keep_archive,
    )  # fmt: skip


class _Kind:
    """What differs between the archives this module downloads: names in messages, the mirror's
    environment variable, and whether the archive's folders are kept (CycleGAN's trainA, testB...)."""

    def __init__(self, name: str, env: str, keep_dirs: bool, fallback: str):
        self.name, self.env, self.keep_dirs, self.fallback = name, env, keep_dirs, fallback


_COCO = _Kind("COCO", "NST_COCO_URL", False, "or pass --data with a folder of photos")
_CYCLEGAN = _Kind("CycleGAN", "NST_CYCLEGAN_URL", True, "or use a folder of paintings instead")


def _download_archive(kind: _Kind, name, entry, folder: Path, base, *, retries, timeout, deadline,
                      progress, keep_archive) -> Path:  # fmt: skip
    """Download (resuming), check and unpack one pinned archive once; see :func:`download_coco`."""
    size, digest = entry["bytes"], entry["sha256"]
    if (folder / _MARKER).is_file():
        return folder
    archive = folder.with_name(entry["file"])
    base, allow_http = base
    url = f"{base}/{entry['file']}"
    fix = (
        f"unset NST_OFFLINE and connect, set {kind.env} to a mirror, or download {url} yourself to "
        f"'{files.printable(archive)}' ({kind.fallback})"
    )
    if archive.is_file():
        _verify(archive, size, digest, url, progress, delete=False, kind=kind)
    else:
        if files.offline():
            raise DownloadError(
                f"cannot download {kind.name} {name} ({size / 1e6:,.0f} MB): NST_OFFLINE=1 turns downloads off — {fix}"
            )
        seconds = float(deadline) if deadline is not None else None
        try:
            _download_resumable(url, archive, size, timeout, seconds, retries, progress, allow_http)
        except DownloadError as exc:
            raise DownloadError(f"{nst_data._strip_fix(str(exc))} — {fix}") from None
        _verify(
            archive.with_name(archive.name + ".part"), size, digest, url, progress, delete=True, kind=kind
        )
        os.replace(archive.with_name(archive.name + ".part"), archive)
    _extract(archive, folder, name, digest, kind)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return folder


# ----------------------------------------------------------------------------- CycleGAN
def cyclegan_dir(name: str = "monet2photo") -> Path:
    """Where a CycleGAN archive's images live once downloaded: ``cache_dir()/datasets/cyclegan/<name>``
    (with its folders ``trainA``, ``trainB``, ``testA``, ``testB``)."""
    _check_cyclegan(name)
    return files.cache_dir() / "datasets" / "cyclegan" / name


def _check_cyclegan(name: str) -> dict:
    if name not in CYCLEGAN_ARCHIVES:
        raise ConfigError(f"unknown CycleGAN dataset {name!r}: choose {', '.join(CYCLEGAN_ARCHIVES)}")
    return CYCLEGAN_ARCHIVES[name]


def download_cyclegan(
    name: str = "monet2photo",
    *,
    base_url: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    deadline: float | None = None,
    progress: bool | None = None,
    keep_archive: bool = False,
) -> Path:
    """Download and unpack one of the CycleGAN authors' painter-and-photo archives once
    (:data:`CYCLEGAN_ARCHIVES`, size and SHA-256 pinned) from ``base_url``, ``NST_CYCLEGAN_URL`` or
    :data:`CYCLEGAN_URL`; return its folder (:func:`cyclegan_dir`). Everything else as
    :func:`download_coco`: resumable, checked before it is unpacked, one-line errors, offline
    with ``NST_OFFLINE=1`` (an archive you put at ``cyclegan_dir(name).with_suffix('.zip')`` is used)."""
    entry = _check_cyclegan(name)
    base = _base(base_url, "NST_CYCLEGAN_URL", CYCLEGAN_URL, "CycleGAN")
    return _download_archive(
        _CYCLEGAN, name, entry, cyclegan_dir(name), base, retries=retries, timeout=timeout,
        deadline=deadline, progress=progress, keep_archive=keep_archive,
    )  # fmt: skip


def cyclegan_photos(name: str = "monet2photo", part: str = "trainA", **kw) -> list[Photo]:
    """The images of one folder of a CycleGAN archive (``trainA``: the painter's training set,
    ``trainB``: photos; ``testA``, ``testB``), downloaded first if needed (:func:`download_cyclegan`)."""
    entry = _check_cyclegan(name)
    if part not in entry["images"]:
        raise ConfigError(f"unknown part {part!r} of {name}: choose {', '.join(entry['images'])}")
    folder = download_cyclegan(name, **kw)
    marker = json.loads((folder / _MARKER).read_text("utf-8"))
    return [
        Photo(folder / Path(e["file"]).relative_to(name), f"cyclegan/{name}/{part}", CYCLEGAN_LICENCE, e["file"], "", e["width"], e["height"], e["sha256"])
        for e in marker["images"] if Path(e["file"]).parts[1] == part
    ]  # fmt: skip


def _progress_bar(total, initial, desc, enabled):
    return files.progress_bar(
        total, desc=desc, initial=initial, enabled=enabled, unit="B", unit_scale=True, unit_divisor=1024
    )


def _size_of(path: Path) -> int:
    try:
        return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    except OSError:
        return 0


def _download_resumable(url, dest: Path, size, timeout, deadline, retries, progress, allow_http) -> None:
    """Fetch ``url`` into ``dest.part`` until it holds ``size`` bytes, resuming with HTTP Range."""
    part = dest.with_name(dest.name + ".part")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"cannot create the cache folder '{files.printable(part.parent)}': {files.os_reason(err)}"
        ) from None
    if part.is_symlink():  # never write through a link planted at our name
        part.unlink()
    have = _size_of(part)
    if have > size:
        part.unlink()
        have = 0
    bar = _progress_bar(size, have, dest.name, progress)
    tries = 0
    try:
        while have < size:
            before = have
            try:
                have = _fetch_range(url, part, have, size, timeout, deadline, bar, allow_http)
            except _Interrupted as exc:
                have = exc.have
                tries += 1
                if have <= before or tries > retries:  # no progress, or out of tries: stop, keep the part
                    raise DownloadError(
                        f"download of '{url}' was interrupted at {have:,} of {size:,} bytes ({exc.reason}); "
                        "run it again to resume"
                    ) from None
                time.sleep(_RETRY_PAUSE * tries)
    finally:
        bar.close()


class _Interrupted(Exception):
    def __init__(self, have: int, reason: str):
        super().__init__(reason)
        self.have, self.reason = have, reason


def _open(request, timeout: float, watch, allow_http: bool):
    """:func:`nst_tf.data._urlopen` for https; for an http mirror the user set, the same watch."""
    if urllib.parse.urlparse(request.full_url).scheme.lower() == "https":
        return nst_data._urlopen(request, timeout, watch)
    if not allow_http:
        raise DownloadError(f"refusing to fetch non-https '{request.full_url}'")

    class Connection(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            watch.watch(self.sock)

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    return urllib.request.build_opener(Http()).open(request, timeout=timeout)


def _fetch_range(url, part: Path, have: int, size: int, timeout, deadline, bar, allow_http) -> int:
    """Append bytes ``have``.. of ``url`` to ``part`` (from 0 if the server ignores Range); return its size.

    Raises _Interrupted when the connection broke after it opened (worth another try), and
    DownloadError for what another try would not mend (HTTP errors, a wrong size)."""
    headers = {"User-Agent": nst_data.USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    watch = nst_data._Deadline(deadline if deadline is not None else 7 * 24 * 3600.0)
    watch.timer.start()
    fd = None
    try:
        try:
            resp = _open(request, timeout, watch, allow_http)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # our part is not a prefix the server knows: start again
                part.unlink(missing_ok=True)
                raise _Interrupted(0, "the server refused to resume") from None
            raise nst_data._fetch_error(url, exc, timeout) from None
        with resp:
            status = int(getattr(resp, "status", 200) or 200)
            if have and status == 206:
                start = _range_start(resp)
                if start != have:
                    raise DownloadError(
                        f"cannot resume '{url}': the server sent bytes from {start}, not {have}"
                    )
            elif status == 200:
                have = 0  # the server sends the whole file
                bar.reset(total=size)
            else:
                raise DownloadError(f"cannot download '{url}': HTTP status {status}")
            length = nst_data._content_length(resp)
            if length is not None and have + length != size:
                part.unlink(missing_ok=True)  # not the archive we resume: start afresh next time
                raise DownloadError(
                    f"download of '{url}' has {have + length:,} bytes, expected {size:,} "
                    "— the archive changed upstream, or the mirror serves another file"
                )
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            os.ftruncate(fd, have)
            os.lseek(fd, have, os.SEEK_SET)
            while True:
                try:
                    chunk = resp.read(1 << 20)
                except Exception as exc:  # reset, IncompleteRead, timeout, the deadline's shutdown
                    raise _Interrupted(have, _reason(exc, watch)) from None
                if watch.expired:
                    raise _Interrupted(have, "the deadline passed")
                if not chunk:
                    break
                if have + len(chunk) > size:
                    raise DownloadError(f"download of '{url}' is larger than the expected {size:,} bytes")
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    raise DownloadError(
                        f"cannot save download of '{url}': {files.os_reason(exc)} — {files.os_fix(exc)}"
                    ) from None
                have += len(chunk)
                bar.update(len(chunk))
            if have < size:
                raise _Interrupted(have, "the connection closed early")
            return have
    except (NSTError, _Interrupted):
        raise
    except Exception as exc:  # opening failed: DNS, refused, TLS, timeout
        raise nst_data._fetch_error(url, exc, timeout) from exc
    finally:
        watch.timer.cancel()
        if fd is not None:
            os.close(fd)


def _reason(exc: Exception, watch) -> str:
    if watch.expired:
        return "the deadline passed"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed early"
    return f"{type(exc).__name__}: {files.printable(exc)}"[:120]


def _range_start(resp) -> int | None:
    value = resp.headers.get("Content-Range", "") if getattr(resp, "headers", None) is not None else ""
    try:  # "bytes 100-199/200"
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _verify(
    path: Path, size: int, digest: str, url: str, progress, *, delete: bool, kind: _Kind = _COCO
) -> None:
    """Check the size and SHA-256 of a downloaded archive; a bad one is deleted (or named) and refused."""
    actual_size = _size_of(path)
    problem = None
    if actual_size != size:
        problem = f"has {actual_size:,} bytes, expected {size:,}"
    else:
        hasher = hashlib.sha256()
        bar = _progress_bar(size, 0, f"checking {path.name}", progress)
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    hasher.update(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if hasher.hexdigest() != digest.lower():
            problem = f"has SHA-256 {hasher.hexdigest()[:12]}..., expected {digest[:12]}..."
    if problem is None:
        return
    if delete:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"download of '{url}' {problem} — it was deleted; retry (the file changed upstream or was "
            f"corrupted on the way), or check {kind.env}"
        )
    raise DownloadError(
        f"the {kind.name} archive '{files.printable(path)}' {problem} — delete it and run again to download it"
    )


def _extract(archive: Path, folder: Path, split: str, digest: str, kind: _Kind = _COCO) -> None:
    """Unpack the image files of ``archive`` into ``folder`` (all or nothing), with a marker: flat
    (COCO), or (``kind.keep_dirs``, CycleGAN) in the folders below the archive's top folder."""
    tmp = folder.with_name(f".{folder.name}.{secrets.token_hex(6)}.tmp")
    tmp.mkdir(parents=True)
    try:
        entries, seen = [], set()
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = info.filename
                parts = PurePosixPath(name).parts
                base = parts[-1] if parts else ""
                if (
                    info.is_dir()
                    or not base
                    or base.startswith(".")
                    or name.startswith("/")
                    or ".." in parts
                    or "\\" in name
                    or Path(base).suffix.lower() not in nst_data.IMAGE_EXTENSIONS
                    or any(p.startswith(".") for p in parts)
                    or (kind.keep_dirs and len(parts) < 3)  # <top>/<part>/<image> only
                ):
                    continue
                rel = PurePosixPath(*parts[1:]) if kind.keep_dirs else PurePosixPath(base)
                if rel in seen:
                    continue
                seen.add(rel)
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                hasher = hashlib.sha256()
                with zf.open(info) as src, open(target, "xb") as dst:
                    for block in iter(lambda src=src: src.read(1 << 20), b""):
                        hasher.update(block)
                        dst.write(block)
                try:
                    with Image.open(target) as pil:
                        width, height = pil.size
                except Exception:  # not an image after all: leave it out
                    target.unlink()
                    continue
                entries.append(
                    {
                        "file": f"{split}/{rel}",
                        "sha256": hasher.hexdigest(),
                        "width": width,
                        "height": height,
                    }
                )
        if not entries:
            raise DownloadError(
                f"the {kind.name} archive '{files.printable(archive)}' holds no images — delete it and retry"
            )
        marker = {"split": split, "archive": archive.name, "archive_sha256": digest, "images": entries}
        (tmp / _MARKER).write_text(json.dumps(marker, indent=0) + "\n", "utf-8")
        if folder.exists():  # an unfinished folder of an earlier run (no marker)
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except zipfile.BadZipFile as exc:
        raise DownloadError(
            f"cannot unpack '{files.printable(archive)}': {files.printable(exc)} — delete it and run again"
        ) from None
    except OSError as err:
        raise DownloadError(
            f"cannot unpack '{files.printable(archive)}' into '{files.printable(folder)}': "
            f"{files.os_reason(err)} — {files.os_fix(err)}"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
