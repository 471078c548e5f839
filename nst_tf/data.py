"""Named example images: bundled files, extra folders, and on-demand downloads.

A *name* such as ``"chelsea"`` or ``"starry_night"`` is looked up in order:

1. the bundled images in ``data/src/content`` and ``data/src/style``
   (public domain / CC0, see ``data/src/CREDITS.md``);
2. the folders listed in the environment variable ``NST_EXTRA_IMAGES``
   (separated by ``os.pathsep``; each folder and its ``content/`` and
   ``style/`` subfolders are searched);
3. the download cache, ``$NST_CACHE_DIR/images`` (default
   ``~/.cache/nst_tf/images``);
4. a download from Wikimedia Commons, for the paintings in :data:`PAINTINGS`,
   unless ``NST_OFFLINE=1``.

Nothing touches the network at import time. Environment variables are read
when a function is called, not when the module is imported.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from nst_tf.errors import ConfigError, DownloadError, ImageError, NSTError
from nst_tf.images import load_image

#: The repository root (the folder that holds ``nst_tf/`` and ``data/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bundled_dir() -> Path:
    """``data/src`` of the repository this package sits in; for an installed copy (whose
    site-packages has no ``data/``), ``$NST_BUNDLED_DIR`` or the ``data/src`` of the working
    folder or one of its parents (e.g. a notebook run from inside a clone)."""
    here = PROJECT_ROOT / "data" / "src"
    if here.is_dir():
        return here
    if os.environ.get("NST_BUNDLED_DIR"):
        return Path(os.environ["NST_BUNDLED_DIR"]).expanduser()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "data" / "src" / "CREDITS.md").is_file():
            return folder / "data" / "src"
    return here


#: Bundled example images: ``content/`` and ``style/`` subfolders.
BUNDLED_DIR = _bundled_dir()
#: Default folder for results, used when ``NST_OUTPUT_DIR`` is not set. The
#: module attribute ``OUTPUT_DIR`` (see ``__getattr__`` at the end) and
#: :func:`output_dir` both honour ``NST_OUTPUT_DIR`` at the time they are read.
DEFAULT_OUTPUT_DIR = PROJECT_ROOT / "data" / "output"

#: The two kinds of image a name can refer to.
KINDS = ("content", "style")
#: File extensions recognised as images when listing folders.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
#: Identifies nst_tf to servers; Wikimedia refuses requests without a descriptive User-Agent.
USER_AGENT = "nst_tf/0.1 (neural style transfer teaching package; Python urllib)"
#: Width (px) requested from Wikimedia's thumbnail service when falling back to it.
THUMB_WIDTH = 1280

_COMMONS = "https://upload.wikimedia.org/wikipedia/commons"

#: Famous images that are downloaded on first use (not bundled). Paintings are
#: public domain by age (their painters died before 1955); ``tubingen`` is a
#: photograph under CC BY 3.0, so credit its author when you publish results.
#: ``url`` is a stable upload.wikimedia.org address (a 1280 px or 960 px
#: thumbnail where the original is very large); ``commons_file`` is the file's
#: name on Commons, used to build a fallback URL through Special:FilePath if
#: ``url`` fails. ``sha256`` is None: Commons files can be re-uploaded, so the
#: download is checked by decoding it instead.
PAINTINGS: dict[str, dict] = {
    "starry_night": {
        "title": "The Starry Night",
        "artist": "Vincent van Gogh",
        "year": 1889,
        "kind": "style",
        "licence": "public domain",
        "commons_file": "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
        "url": f"{_COMMONS}/thumb/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
        "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
        "sha256": None,
    },
    "night_cafe": {
        "title": "The Night Café",
        "artist": "Vincent van Gogh",
        "year": 1888,
        "kind": "style",
        "licence": "public domain",
        "commons_file": "Vincent_Willem_van_Gogh_076.jpg",
        "url": f"{_COMMONS}/thumb/5/5e/Vincent_Willem_van_Gogh_076.jpg/"
        "1280px-Vincent_Willem_van_Gogh_076.jpg",
        "sha256": None,
    },
    "great_wave": {
        "title": "The Great Wave off Kanagawa",
        "artist": "Katsushika Hokusai",
        "year": 1831,
        "kind": "style",
        "licence": "public domain",
        "commons_file": "The_Great_Wave_off_Kanagawa.jpg",
        "url": f"{_COMMONS}/0/0a/The_Great_Wave_off_Kanagawa.jpg",
        "sha256": None,
    },
    "kandinsky_composition_vii": {
        "title": "Composition VII",
        "artist": "Wassily Kandinsky",
        "year": 1913,
        "kind": "style",
        "licence": "public domain",
        "commons_file": "Vassily_Kandinsky,_1913_-_Composition_7.jpg",
        "url": f"{_COMMONS}/b/b4/Vassily_Kandinsky%2C_1913_-_Composition_7.jpg",
        "sha256": None,
    },
    "woman_with_hat": {
        "title": "Woman with a Hat",
        "artist": "Henri Matisse",
        "year": 1905,
        "kind": "style",
        "licence": "public domain (US: published 1905; EU: Matisse died 1954)",
        "commons_file": "Matisse-Woman-with-a-Hat.jpg",
        "url": f"{_COMMONS}/thumb/f/fb/Matisse-Woman-with-a-Hat.jpg/960px-Matisse-Woman-with-a-Hat.jpg",
        "sha256": None,
    },
    "picabia_edtaonisl": {
        "title": "Edtaonisl (Ecclesiastic)",
        "artist": "Francis Picabia",
        "year": 1913,
        "kind": "style",
        "licence": "public domain (US: published 1913; EU: Picabia died 1953)",
        "commons_file": "Francis_Picabia,_1913,_Edtaonisl_(Ecclesiastic),_oil_on_canvas,"
        "_300.4_x_300.7_cm,_Art_Institute_of_Chicago.jpg",
        "url": f"{_COMMONS}/thumb/d/de/Francis_Picabia%2C_1913%2C_Edtaonisl_%28Ecclesiastic%29"
        "%2C_oil_on_canvas%2C_300.4_x_300.7_cm%2C_Art_Institute_of_Chicago.jpg/"
        "1280px-Francis_Picabia%2C_1913%2C_Edtaonisl_%28Ecclesiastic%29%2C_oil_on_canvas"
        "%2C_300.4_x_300.7_cm%2C_Art_Institute_of_Chicago.jpg",
        "sha256": None,
    },
    "water_lilies": {
        "title": "Water Lilies",
        "artist": "Claude Monet",
        "year": 1906,
        "kind": "style",
        "licence": "public domain",
        "commons_file": "Claude_Monet_-_Water_Lilies_-_1906,_Ryerson.jpg",
        "url": f"{_COMMONS}/thumb/a/aa/Claude_Monet_-_Water_Lilies_-_1906%2C_Ryerson.jpg/"
        "1280px-Claude_Monet_-_Water_Lilies_-_1906%2C_Ryerson.jpg",
        "sha256": None,
    },
    "tubingen": {
        "title": "Neckarfront, Tübingen",
        "artist": "Andreas Praefcke (photograph)",
        "year": 2003,
        "kind": "content",
        "licence": "CC BY 3.0 (credit: Andreas Praefcke, Wikimedia Commons)",
        "commons_file": "Tuebingen_Neckarfront.jpg",
        "url": f"{_COMMONS}/0/00/Tuebingen_Neckarfront.jpg",
        "sha256": None,
    },
}


# --------------------------------------------------------------------------
# Folders and settings (read from the environment at call time)
# --------------------------------------------------------------------------


def output_dir() -> Path:
    """Folder for results: ``$NST_OUTPUT_DIR`` if set, else ``data/output``."""
    return Path(os.environ.get("NST_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR).expanduser()


def cache_dir() -> Path:
    """Download cache root: ``$NST_CACHE_DIR`` if set, else ``~/.cache/nst_tf``."""
    return Path(os.environ.get("NST_CACHE_DIR") or Path.home() / ".cache" / "nst_tf").expanduser()


def image_cache_dir() -> Path:
    """Where downloaded images are kept: ``cache_dir() / "images"``."""
    return cache_dir() / "images"


def offline() -> bool:
    """True when ``NST_OFFLINE`` is set to 1/true/yes: never download."""
    return os.environ.get("NST_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def extra_dirs() -> list[Path]:
    """The folders named in ``NST_EXTRA_IMAGES`` (``os.pathsep``-separated), in order."""
    raw = os.environ.get("NST_EXTRA_IMAGES", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


# --------------------------------------------------------------------------
# Listing and resolving names
# --------------------------------------------------------------------------


def list_images(kind: str | None = None) -> dict[str, Path]:
    """Map image names to files: bundled first, then ``NST_EXTRA_IMAGES`` folders.

    ``kind`` is ``"content"``, ``"style"`` or None (both). A name is a file
    name without its extension; when two files share a name the first found
    wins (bundled before extra folders, earlier folders before later ones).
    Files directly inside an extra folder count as both kinds. Cached
    downloads are not listed (see :data:`PAINTINGS`).
    """
    _check_kind(kind)
    found: dict[str, Path] = {}
    for folder in _search_dirs(kind):
        for name, path in _images_in(folder).items():
            found.setdefault(name, path)
    return found


def resolve_image(name_or_path, kind: str | None = None, *, allow_download: bool | None = None) -> Path:
    """Turn a file path or an image name into the path of an image file.

    An existing file is returned as is. A str containing a path separator, or
    any ``Path``, is treated as a path and must exist. Otherwise it is a name
    (an extension such as ``.jpg`` is ignored): looked up in the bundled
    images, then ``NST_EXTRA_IMAGES``, then the download cache, then
    downloaded from :data:`PAINTINGS` if ``allow_download`` (default: True
    unless ``NST_OFFLINE=1``). ``kind`` ("content"/"style") is searched
    first; the other kind is tried next, so any image can play either role.

    Raises:
        ImageError: one line naming what was tried and how to fix it.
    """
    _check_kind(kind)
    if allow_download is None:
        allow_download = not offline()
    if isinstance(name_or_path, os.PathLike) or (
        isinstance(name_or_path, str) and ("/" in name_or_path or os.sep in name_or_path)
    ):
        path = Path(os.fspath(name_or_path)).expanduser()
        if path.is_file():
            return path
        what = "it is a directory" if path.is_dir() else "no such file"
        raise ImageError(
            f"cannot read image '{os.fspath(name_or_path)}': {what} "
            f"(working directory: {os.getcwd()}) — check the path"
        )
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ImageError(
            f"no image named {name_or_path!r}: pass a file path or an image name such as 'chelsea'"
        )
    if os.path.isfile(name_or_path):
        return Path(name_or_path)

    name = _strip_image_suffix(name_or_path.strip())
    kinds = [kind] + [k for k in KINDS if k != kind] if kind else [None]
    for k in kinds:
        hit = _lookup(list_images(k), name)
        if hit is not None:
            return hit

    cached = _lookup(_images_in(image_cache_dir()), name)
    if cached is not None:
        return cached

    key = _lookup_key(PAINTINGS, name)
    if key is None:
        reason = "and not a downloadable painting"
    elif not allow_download:
        reason = "and downloads are off (NST_OFFLINE=1 or allow_download=False)"
    else:
        try:
            return download_painting(key)
        except DownloadError as exc:
            reason = f"and download failed ({_strip_fix(str(exc))})"
    raise ImageError(_not_found_message(name, reason))


def download_painting(name: str) -> Path:
    """Download the :data:`PAINTINGS` entry ``name`` into the cache; return its path.

    Tries the entry's ``url`` first, then Wikimedia's Special:FilePath
    redirect built from ``commons_file``. Raises :class:`DownloadError`.
    """
    if name not in PAINTINGS:
        raise ConfigError(f"unknown painting {name!r}: choose one of {', '.join(PAINTINGS)}")
    entry = PAINTINGS[name]
    suffix = Path(urllib.parse.urlparse(entry["url"]).path).suffix.lower() or ".jpg"
    dest = image_cache_dir() / f"{name}{suffix}"
    urls = [entry["url"]]
    if entry.get("commons_file"):
        quoted = urllib.parse.quote(entry["commons_file"])
        urls.append(f"https://commons.wikimedia.org/wiki/Special:FilePath/{quoted}?width={THUMB_WIDTH}")
    errors = []
    for url in urls:
        try:
            return download(url, dest, sha256=entry.get("sha256"))
        except DownloadError as exc:
            errors.append(_strip_fix(str(exc)))
    raise DownloadError(
        f"cannot download '{name}': {'; then '.join(errors)} — check your connection, "
        "or put the image in a folder named by NST_EXTRA_IMAGES"
    )


def load(name_or_path, long_side: int | None = None, kind: str | None = None):
    """Resolve a name or path (see :func:`resolve_image`) and load it with
    :func:`nst_tf.images.load_image`: float32 (H, W, 3) RGB in [0, 255]."""
    return load_image(resolve_image(name_or_path, kind), long_side)


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------


def download(
    url: str,
    dest,
    *,
    max_bytes: int = 50_000_000,
    timeout: float = 20,
    sha256: str | None = None,
) -> Path:
    """Download an image over HTTPS to ``dest`` (a file path); return ``dest``.

    Safe by construction: only ``https://`` URLs (also after redirects); a
    ``timeout`` in seconds on connecting and on each read; at most
    ``max_bytes`` bytes; the SHA-256 checked when ``sha256`` is given; the
    bytes must decode as an image (:func:`~nst_tf.images.load_image`). The
    data go to a temporary file beside ``dest`` that is renamed over it only
    when every check passed, so a failure never leaves a partial file.

    Raises:
        DownloadError: one line saying what failed and what to do.
    """
    dest = Path(dest).expanduser()
    scheme = urllib.parse.urlparse(str(url)).scheme.lower()
    if scheme != "https":
        raise DownloadError(
            f"refusing to download '{url}': only https:// URLs are allowed — use the https address"
        )
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        digest = _fetch(url, tmp, max_bytes=max_bytes, timeout=timeout)
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(
                f"download of '{url}' has SHA-256 {digest[:12]}..., expected {sha256[:12]}... "
                "— the file changed upstream or was corrupted; retry or update the checksum"
            )
        try:
            load_image(tmp)
        except ImageError as exc:
            raise DownloadError(
                f"download of '{url}' is not a usable image ({_strip_fix(str(exc)).split(': ', 1)[-1]})"
                " — the server may have sent an error page; open the URL in a browser"
            ) from exc
        os.replace(tmp, dest)
        tmp = None
        return dest
    except NSTError:
        raise
    except OSError as exc:
        raise DownloadError(
            f"cannot save download of '{url}' to '{dest}': {exc.strerror or exc} — check the folder is writable"
        ) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fetch(url: str, tmp: Path, *, max_bytes: int, timeout: float) -> str:
    """Stream ``url`` into ``tmp`` (max ``max_bytes``); return the hex SHA-256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    hasher = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            final = resp.geturl() if hasattr(resp, "geturl") else url
            if urllib.parse.urlparse(str(final)).scheme.lower() != "https":
                raise DownloadError(f"refusing download of '{url}': it redirected to non-https '{final}'")
            status = getattr(resp, "status", 200) or 200
            if not 200 <= int(status) < 300:
                raise DownloadError(f"cannot download '{url}': HTTP status {status}")
            length = _content_length(resp)
            if length is not None and length > max_bytes:
                raise DownloadError(
                    f"refusing download of '{url}': {length:,} bytes exceeds the {max_bytes:,}-byte limit "
                    "— use a smaller (thumbnail) URL or raise max_bytes"
                )
            total = 0
            with open(tmp, "xb") as fh:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > max_bytes:
                        raise DownloadError(
                            f"refusing download of '{url}': more than the {max_bytes:,}-byte limit "
                            "— use a smaller (thumbnail) URL or raise max_bytes"
                        )
                    hasher.update(chunk)
                    fh.write(chunk)
            if total == 0:
                raise DownloadError(f"cannot download '{url}': the server sent no data")
    except NSTError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download '{url}': HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot download '{url}': {exc.reason}") from exc
    except TimeoutError as exc:
        raise DownloadError(f"cannot download '{url}': timed out after {timeout} s") from exc
    except Exception as exc:  # http.client errors, resets, SSL, a broken response object
        raise DownloadError(f"cannot download '{url}': {type(exc).__name__}: {exc}") from exc
    return hasher.hexdigest()


def _content_length(resp) -> int | None:
    headers = getattr(resp, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _check_kind(kind) -> None:
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be 'content', 'style' or None, got {kind!r}")


def _search_dirs(kind: str | None) -> list[Path]:
    """Folders to search for ``kind``, in priority order."""
    kinds = KINDS if kind is None else (kind,)
    dirs = [BUNDLED_DIR / k for k in kinds]
    for extra in extra_dirs():
        dirs += [extra / k for k in kinds] + [extra]
    return dirs


def _images_in(folder: Path) -> dict[str, Path]:
    """Image files directly inside ``folder`` by stem, sorted; {} if it is not a folder."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return {}
    found: dict[str, Path] = {}
    for path in entries:
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file():
            found.setdefault(path.stem, path)
    return found


def _strip_image_suffix(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def _lookup_key(mapping: dict, name: str):
    """Exact key, else a case-insensitive match, else None."""
    if name in mapping:
        return name
    lowered = {k.lower(): k for k in mapping}
    return lowered.get(name.lower())


def _lookup(mapping: dict[str, Path], name: str) -> Path | None:
    key = _lookup_key(mapping, name)
    return mapping[key] if key is not None else None


def _strip_fix(message: str) -> str:
    """Drop the ' — fix' tail of a one-line error, to nest it in another message."""
    return message.split(" — ", 1)[0]


def _not_found_message(name: str, reason: str) -> str:
    known = sorted(set(list_images()) | set(PAINTINGS))
    close = [c for c in difflib.get_close_matches(name, known, n=2) if c != name]
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    bundled = ", ".join(sorted(list_images()))
    paintings = ", ".join(PAINTINGS)
    return (
        f"no image named '{name}'{hint}: not bundled, not in NST_EXTRA_IMAGES, {reason} "
        "— pass a file path, or set NST_EXTRA_IMAGES=/folder/with/images; "
        f"known names: {bundled}; downloadable: {paintings}"
    )


def __getattr__(name: str):
    """``data.OUTPUT_DIR`` / ``from nst_tf.data import OUTPUT_DIR``: :func:`output_dir` now.

    Computed on access (PEP 562) rather than frozen at import, so setting
    ``NST_OUTPUT_DIR`` after ``nst_tf.data`` was imported still takes effect.
    """
    if name == "OUTPUT_DIR":
        return output_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
