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
import http.client
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

from nst_tf import files
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
#: The networks that ship trained, one per style (made by ``python -m benchmarks.shipped train``):
#: ``data/models/<style>.keras`` with its sidecar ``.json`` and data manifest ``.data.json``.
SHIPPED_DIR = BUNDLED_DIR.parent / "models"


def shipped_models() -> dict[str, Path]:
    """``{style: model path}`` of the networks that ship trained, in name order (no TensorFlow)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.keras"))} if SHIPPED_DIR.is_dir() else {}


#: Default folder for results, used when ``NST_OUTPUT_DIR`` is not set. The
#: module attribute ``OUTPUT_DIR`` (see ``__getattr__`` at the end) and
#: :func:`output_dir` both honour ``NST_OUTPUT_DIR`` at the time they are read.
DEFAULT_OUTPUT_DIR = files.DEFAULT_OUTPUT_DIR

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
    """Folder for results: ``$NST_OUTPUT_DIR`` if set, else ``data/output`` (:func:`nst_tf.files.output_dir`)."""
    return files.output_dir()


def cache_dir() -> Path:
    """Download cache root: ``$NST_CACHE_DIR`` if set, else ``~/.cache/nst_tf`` (:func:`nst_tf.files.cache_dir`)."""
    return files.cache_dir()


def image_cache_dir() -> Path:
    """Where downloaded images are kept: ``cache_dir() / "images"``."""
    return cache_dir() / "images"


def offline() -> bool:
    """True when ``NST_OFFLINE`` asks for no network (:func:`nst_tf.files.offline`, the one parser)."""
    return files.offline()


def extra_dirs() -> list[Path]:
    """The folders named in ``NST_EXTRA_IMAGES`` (``os.pathsep``-separated), in order.

    A folder that is missing, not a folder or unreadable is skipped with one warning per
    process (decision, issue #13.9: a typo in the variable should not pass unnoticed).
    """
    raw = os.environ.get("NST_EXTRA_IMAGES", "")
    folders = [files.user_path(p) for p in raw.split(os.pathsep) if p.strip()]
    for folder in folders:
        try:
            with os.scandir(folder):
                pass
        except OSError as err:
            key = (str(folder), err.errno)
            if key not in _WARNED:
                _WARNED.add(key)
                warnings.warn(
                    f"NST_EXTRA_IMAGES: skipping '{files.printable(folder)}': {files.os_reason(err)}",
                    stacklevel=3,
                )
    return folders


_WARNED: set[tuple[str, int | None]] = set()


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
        path = files.user_path(name_or_path)
        if path.is_file():
            return path
        if path.is_dir():
            raise ImageError(
                f"cannot read image '{files.printable(os.fspath(name_or_path))}': it is a directory "
                f"(working directory: {files.printable(os.getcwd())}) — pass an image file"
            )
        # a FIFO, device, broken link or unreadable path: say which (never "no such file" for a FIFO)
        files.check_input(path, what="image", error=ImageError, fix="pass an image file")
        return path
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
    deadline: float | None = None,
    check=None,
) -> Path:
    """Download an image over HTTPS to ``dest`` (a file path); return ``dest``.

    Safe by construction: only ``https://`` URLs, on every redirect hop too (a
    chain through ``http://`` is refused at that hop); a ``timeout`` in seconds
    on connecting and on each read, and an overall ``deadline`` (default
    ``NST_DOWNLOAD_DEADLINE`` or 120 s) after which the connection is cut, so a
    server trickling one byte a second cannot hold it; at most ``max_bytes``
    bytes; the SHA-256 checked when ``sha256`` is given; the bytes must decode
    as an image (:func:`~nst_tf.images.load_image`), or pass ``check(url, path)``
    when given. The data go to a temporary file beside ``dest``
    (:func:`nst_tf.files.atomic_write`) that is renamed over it only when every
    check passed, so a failure never leaves a partial file.

    Raises:
        DownloadError: one line saying what failed and what to do.
    """
    dest = files.user_path(dest)
    scheme = urllib.parse.urlparse(str(url)).scheme.lower()
    if scheme != "https":
        raise DownloadError(
            f"refusing to download '{url}': only https:// URLs are allowed — use the https address"
        )
    seconds = download_deadline() if deadline is None else float(deadline)

    def write(fh):
        digest = _fetch(url, fh, max_bytes=max_bytes, timeout=timeout, deadline=seconds)
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(
                f"download of '{url}' has SHA-256 {digest[:12]}..., expected {sha256[:12]}... "
                "— the file changed upstream or was corrupted; retry or update the checksum"
            )
        fh.flush()
        (check or _check_image)(url, Path(fh.name))

    return files.atomic_write(
        dest,
        write,
        error=DownloadError,
        fix="check that the cache folder (NST_CACHE_DIR) is writable and has space",
    )


def _check_image(url: str, path: Path) -> None:
    try:
        load_image(path)
    except ImageError as exc:
        raise DownloadError(
            f"download of '{url}' is not a usable image ({_strip_fix(str(exc)).split(': ', 1)[-1]})"
            " — the server may have sent an error page; open the URL in a browser"
        ) from exc


def download_deadline() -> float:
    """Seconds a whole download may take: ``NST_DOWNLOAD_DEADLINE`` or 120."""
    raw = os.environ.get("NST_DOWNLOAD_DEADLINE", "").strip()
    try:
        value = float(raw) if raw else 120.0
        if not value > 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"NST_DOWNLOAD_DEADLINE={files.printable(raw)!r} is not a positive number of seconds: e.g. 120"
        ) from None
    return value


class _Deadline:
    """Cuts every connection of one download when its time is up (a blocked read then returns)."""

    def __init__(self, seconds: float):
        self.seconds, self.expired = seconds, False
        self.sockets: list = []
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def watch(self, sock) -> None:
        self.sockets.append(sock)
        if self.expired:
            self.expire()

    def expire(self) -> None:
        self.expired = True
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _urlopen(request, timeout: float, deadline: _Deadline):
    """Open ``request``: https only on every hop, connections watched by ``deadline``.

    Tests replace this function (and ``urllib.request.urlopen``) with fakes.
    """

    class Connection(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(Connection, req, context=self._context)

    class NoHttp(urllib.request.HTTPHandler):
        def http_open(self, req):
            raise DownloadError(f"refusing to fetch non-https '{req.full_url}'")

    class HttpsRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            target = urllib.parse.urljoin(req.full_url, newurl)
            if urllib.parse.urlparse(target).scheme.lower() != "https":
                raise DownloadError(
                    f"refusing download of '{request.full_url}': it redirected to non-https '{target}'"
                )
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(Https(), NoHttp(), HttpsRedirects())
    return opener.open(request, timeout=timeout)


def _fetch(url: str, fh, *, max_bytes: int, timeout: float, deadline: float) -> str:
    """Stream ``url`` into the open file ``fh`` (max ``max_bytes``, within ``deadline`` s); return the SHA-256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    hasher = hashlib.sha256()
    watch = _Deadline(deadline)
    watch.timer.start()
    try:
        with _urlopen(request, timeout, watch) as resp:
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
            while True:
                chunk = resp.read(1 << 16)
                if watch.expired:
                    raise TimeoutError
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise DownloadError(
                        f"refusing download of '{url}': more than the {max_bytes:,}-byte limit "
                        "— use a smaller (thumbnail) URL or raise max_bytes"
                    )
                hasher.update(chunk)
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise DownloadError(
                        f"cannot save download of '{url}': {files.os_reason(exc)} — {files.os_fix(exc)}"
                    ) from None
            if total == 0:
                raise DownloadError(f"cannot download '{url}': the server sent no data")
    except NSTError:
        raise
    except Exception as exc:  # http.client errors, resets, SSL, a broken response object
        if watch.expired:  # the deadline cut the connection, whatever error that caused
            raise DownloadError(
                f"cannot download '{url}': it took longer than the {deadline:g} s deadline "
                "— check your connection, or raise NST_DOWNLOAD_DEADLINE"
            ) from exc
        raise _fetch_error(url, exc, timeout) from exc
    finally:
        watch.timer.cancel()
    return hasher.hexdigest()


def _fetch_error(url: str, exc: Exception, timeout: float) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        return DownloadError(f"cannot download '{url}': HTTP {exc.code} {files.printable(exc.reason)}")
    if isinstance(exc, urllib.error.URLError):
        return DownloadError(f"cannot download '{url}': {files.printable(exc.reason)}")
    if isinstance(exc, TimeoutError):
        return DownloadError(f"cannot download '{url}': timed out after {timeout} s")
    return DownloadError(f"cannot download '{url}': {type(exc).__name__}: {files.printable(exc)}")


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


def images_below(folder, exclude=None) -> list[Path]:
    """Image files in ``folder`` and its subfolders, sorted, hidden files and folders left out.

    What the folder modes of ``stylize`` and ``transfer --content FOLDER`` process: a file counts
    by its extension (:data:`IMAGE_EXTENSIONS`); whether it really is an image is found out when
    it is read, and a bad one is reported and skipped there. ``exclude``: a folder left out with
    everything below it (the run's output folder inside its input folder: a rerun must not
    stylise the last run's results).
    """
    skip = os.path.realpath(exclude) if exclude is not None else None
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != skip
        )
        for name in sorted(names):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                found.append(Path(root) / name)
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
