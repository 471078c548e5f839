"""Files and folders: the ``NST_*`` folders and switches, safe reads and atomic writes.

One place for each cross-cutting job, so that every module agrees:

* :func:`offline` is the one parser of ``NST_OFFLINE``; :func:`cache_dir` and
  :func:`output_dir` are the one place for the cache and output folders;
  :func:`user_path` expands ``~`` the same way for every path option.
* :func:`open_input` opens a file for reading without ever blocking: a FIFO,
  a device (``/dev/zero``), a folder or a kernel file (``/proc``) is refused
  with one line saying what it is, before a byte is read.
* :class:`FolderReport` is the one account of a command over many files
  (``stylize``, ``transfer --content FOLDER``): what was written, what failed
  and why, and the summary line printed at the end.
* :func:`write_files` (and :func:`atomic_write` for one file) is the one
  writer of every file nst_tf produces. Each file is written to a temporary
  sibling with an unpredictable name, created exclusively
  (``O_CREAT | O_EXCL | O_NOFOLLOW``: a symlink planted at that name is never
  followed), flushed to disk, and renamed over the target only when every
  file of the batch was written; on any failure the temporary files are
  removed and nothing is published. Without ``overwrite`` the rename is a
  hard link that fails if the target appeared meanwhile. OS errors become one
  line (:class:`~nst_tf.errors.OutputError`) naming the file and the fix.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import secrets
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nst_tf.errors import ConfigError, NSTError, OutputError

#: The repository root (the folder that holds ``nst_tf/`` and ``data/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Results go here unless ``NST_OUTPUT_DIR`` says otherwise.
DEFAULT_OUTPUT_DIR = PROJECT_ROOT / "data" / "output"

_FALSE = ("", "0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


# ----------------------------------------------------------------------------- environment
def offline() -> bool:
    """``NST_OFFLINE``: true for 1/true/yes/on (any non-zero number), false for unset/0/false/no/off.

    Any other value is a ConfigError, so that a typo never silently turns the network on.
    Offline means no network at all: no image download, no ``pip download``, no Keras download.
    """
    raw = os.environ.get("NST_OFFLINE", "")
    value = raw.strip().lower()
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    try:
        return float(value) != 0
    except ValueError:
        raise ConfigError(
            f"NST_OFFLINE={printable(raw)!r} is not understood: set it to 1 (no network) or 0, or unset it"
        ) from None


def user_path(path) -> Path:
    """``path`` as a Path with ``~`` expanded: every path option and variable goes through here."""
    return Path(os.path.expanduser(os.fspath(path)))


def env_path(name: str) -> Path | None:
    """The path in environment variable ``name`` (``~`` expanded), or None when unset or empty."""
    value = os.environ.get(name, "").strip()
    return user_path(value) if value else None


def cache_dir() -> Path:
    """``$NST_CACHE_DIR`` or ``~/.cache/nst_tf``: downloaded images (``images/``) and weights.

    Not created here: writers create it when they first write into it.
    """
    return env_path("NST_CACHE_DIR") or Path.home() / ".cache" / "nst_tf"


def output_dir() -> Path:
    """``$NST_OUTPUT_DIR`` or ``data/output`` of the repository: results of runs and figures."""
    return env_path("NST_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR


# ----------------------------------------------------------------------------- messages
def printable(text) -> str:
    """``text`` with control characters escaped (newlines, terminal escapes, undecodable bytes).

    Names come from users and file systems; printed raw, a newline would split a one-line error
    and an escape sequence could rewrite the terminal. Decision (issue #13.9): they are shown
    escaped, as Python writes them in a string literal (``\\n``, ``\\x1b``).
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode() for c in text
    )


_REASONS = {
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a directory",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EEXIST: "it already exists",
    errno.EFBIG: "the file is too large for the file system",
}


def os_reason(err: OSError) -> str:
    """A short lower-case reason for an OS error, e.g. 'no space left on the device'."""
    if err.errno in _REASONS:
        return _REASONS[err.errno]
    text = (err.strerror or str(err) or type(err).__name__).strip().splitlines()[0]
    return printable(text[:1].lower() + text[1:])


def os_fix(err: OSError) -> str:
    """What to do about an OS error while writing."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free some space or choose a folder on another disk"
    if err.errno == errno.EEXIST:
        return "pass --overwrite (overwrite=True) or choose another name"
    if err.errno in (errno.EISDIR, errno.ENOTDIR):
        return "choose a file name whose folders are folders"
    return "choose a writable folder"


def file_kind(mode: int) -> str:
    """What a non-regular file is, from its ``st_mode``: 'a folder', 'a FIFO (named pipe)'..."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def _kernel_file(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == top or real.startswith(top + os.sep) for top in ("/proc", "/sys"))


# ----------------------------------------------------------------------------- reading
def open_input(
    path, *, what: str = "file", error: type[NSTError] = NSTError, fix: str = "pass a regular file"
):
    """Open ``path`` for binary reading, refusing anything that is not a regular file.

    Never blocks: the type is checked with ``stat`` before opening, and the file is opened
    non-blocking and checked again (``fstat``) before the first read. Raises ``error`` with one
    line such as "cannot read image '/dev/zero': it is a character device, not an image — ...".
    """
    name = os.fspath(path)
    prefix = f"cannot read {what} '{printable(name)}'"
    try:
        st = os.stat(name)
        _check_regular(st.st_mode, name, prefix, what, error, fix)
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        where = f" (working directory: {printable(os.getcwd())})" if err.errno == errno.ENOENT else ""
        raise error(f"{prefix}: {os_reason(err)}{where} — check the path and its permissions") from None
    try:
        _check_regular(os.fstat(fd).st_mode, name, prefix, what, error, fix)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(mode, name, prefix, what, error, fix):
    if not stat.S_ISREG(mode):
        raise error(f"{prefix}: it is {file_kind(mode)}, not {_article(what)} — {fix}")
    if _kernel_file(name):
        raise error(f"{prefix}: it is a kernel file (/proc or /sys), not {_article(what)} — {fix}")


def sha256_file(path, n: int | None = None, **kw) -> str:
    """SHA-256 of a regular file, hex (the first ``n`` characters when given), read in 1 MiB blocks
    through :func:`open_input` (``kw``: its ``what``, ``error``, ``fix``), so it never blocks."""
    digest = hashlib.sha256()
    with open_input(path, **kw) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:n] if n else digest.hexdigest()


def check_input(path, **kw) -> Path:
    """Raise like :func:`open_input` unless ``path`` is a readable regular file; return it as a Path."""
    open_input(path, **kw).close()
    return Path(os.fspath(path))


def _article(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


# ----------------------------------------------------------------------------- writing
#: How many fresh names a writer tries when its temporary name is taken (planted or colliding).
_TEMP_TRIES = 8


def _create_temp(final: Path, error: type[NSTError] = OutputError) -> tuple[Path, int]:
    """Create a new empty hidden sibling of ``final`` exclusively; never follows a symlink."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    last = None
    for _ in range(_TEMP_TRIES):
        # the suffix is kept last, for writers that pick the format from the name (ffmpeg)
        tmp = final.with_name(f".{final.stem}.{secrets.token_hex(8)}.tmp{final.suffix}")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError as err:  # taken: someone else's file or a planted symlink; never touch it
            last = err
    raise error(
        f"cannot write '{printable(final)}': {_TEMP_TRIES} fresh temporary names in its folder were all "
        "taken — check who else writes there"
    ) from last


def _open_temp(tmp: Path, fd: int):
    raw = io.FileIO(fd, "r+")
    raw.name = str(tmp)  # for writers that need the file's name (ffmpeg) or its extension
    return io.BufferedRandom(raw)


def _publish(tmp: Path, final: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, final)  # replaces a symlink at ``final`` itself, never what it points to
        return
    try:
        os.link(tmp, final, follow_symlinks=False)  # fails if ``final`` appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "File exists", str(final)) from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def write_files(
    writers: dict, *, overwrite: bool = True, fix: str | None = None, error: type[NSTError] = OutputError
) -> list[Path]:
    """Write several files all-or-nothing; return their paths.

    ``writers`` maps each target path to a function that writes the file's bytes into the
    binary file object it gets (whose ``name`` is the temporary path, for libraries that
    write by name). Every file is written and synced first; only then are they renamed into
    place, so a full disk or an error leaves the targets as they were and no temporary file
    behind. Parent folders are created. ``overwrite=False`` refuses to replace an existing
    target (also one that appears while writing). Raises ``error`` (one line; ``fix``
    replaces the advice) for any OS error.
    """
    staged: list[tuple[Path, Path]] = []
    current = None
    try:
        for path, write in writers.items():
            final = current = user_path(path)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp, fd = _create_temp(final, error)
            staged.append((tmp, final))
            with _open_temp(tmp, fd) as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            if not stat.S_ISREG(os.lstat(tmp).st_mode):  # swapped while a library wrote by name
                raise error(f"cannot write '{printable(final)}': its temporary file was replaced")
        if not overwrite:
            for _, final in staged:
                if os.path.lexists(final):
                    raise FileExistsError(errno.EEXIST, "File exists", str(final))
        for tmp, final in staged:
            current = final
            _publish(tmp, final, overwrite)
    except NSTError:
        raise
    except OSError as err:
        target = printable(err.filename if err.errno == errno.EEXIST and err.filename else current)
        raise error(f"cannot write '{target}': {os_reason(err)} — {fix or os_fix(err)}") from None
    finally:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return [final for _, final in staged]


def atomic_write(path, write: Callable, **kw) -> Path:
    """Write one file atomically through ``write(fh)``; keywords and errors as :func:`write_files`."""
    return write_files({path: write}, **kw)[0]


def write_text(path, text: str, **kw) -> Path:
    """Write UTF-8 text atomically (see :func:`write_files`)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), **kw)


#: Bytes the temporary name of :func:`_create_temp` adds to a file's name (".", ".<16 hex>.tmp").
_TEMP_EXTRA = 22


def check_names(paths, *, fix: str = "choose a shorter --output") -> None:
    """Fail now, not after a long run, if a file of ``paths`` (or a folder on its way) has a name too
    long for the file system it goes to, counting the temporary name every file is written under
    first (the run's work would be lost at the end, and a rescue copy under the same name too)."""
    for path in paths:
        path = user_path(path).absolute()
        existing = path.parent
        while not os.path.isdir(existing) and existing != existing.parent:
            existing = existing.parent
        try:
            name_max = os.pathconf(existing, "PC_NAME_MAX")
        except (OSError, ValueError):
            name_max = 255
        for part, extra in [
            *((p, 0) for p in path.relative_to(existing).parts[:-1]),
            (path.name, _TEMP_EXTRA),
        ]:
            size = len(os.fsencode(part))
            if size + extra > name_max:
                raise ConfigError(
                    f"the name '{printable(part[:40])}...' is {size} bytes, longer than the file system "
                    f"allows ({name_max - extra} in '{printable(existing)}') — {fix}"
                )


def check_writable(folder, *, need_bytes: int = 0, fix: str = "choose a writable folder") -> None:
    """Fail now, not after a long run, if files of ``need_bytes`` could not be written into ``folder``.

    Creates nothing that stays: the nearest existing folder on the way is probed with an
    exclusive temporary file, removed at once, and its free space compared with ``need_bytes``.
    """
    folder = user_path(folder).absolute()
    shown = printable(folder)
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        st = os.stat(existing)
    except OSError as err:
        raise OutputError(f"cannot write results to '{shown}': {os_reason(err)} — {fix}") from None
    if not stat.S_ISDIR(st.st_mode):
        what = "" if existing == folder else f" ('{printable(existing)}' is in the way)"
        raise OutputError(
            f"cannot write results to '{shown}': it is {file_kind(st.st_mode)}, not a folder{what} — {fix}"
        )
    try:
        tmp, fd = _create_temp(existing / "probe")
        os.close(fd)
        os.unlink(tmp)
        vfs = os.statvfs(existing)
    except NSTError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write results to '{shown}': {os_reason(err)} — {fix}") from None
    free = vfs.f_bavail * vfs.f_frsize
    if need_bytes and free < need_bytes:
        raise OutputError(
            f"cannot write results to '{shown}': {free / 2**20:.1f} MiB free, the results need up to "
            f"{need_bytes / 2**20:.1f} MiB — free some space or {fix}"
        )


# ----------------------------------------------------------------------------- many files
#: How many failed inputs a summary line names (the rest are counted).
SUMMARY_NAMES = 5


@dataclass
class FolderReport:
    """What a command over many inputs did: outputs written, inputs that failed (path -> one-line reason).

    ``total`` counts every input, also those not started when a run was stopped; ``where`` is the
    folder the outputs went to. ``summary()`` is the line printed at the end.
    """

    written: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    seconds: float = 0.0
    verb: str = "stylised"
    total: int | None = None
    where: Path | None = None

    def summary(self) -> str:
        done = len(self.written) + len(self.failed)
        n = max(self.total or 0, done)
        rate = len(self.written) / max(self.seconds, 1e-9)
        line = f"{self.verb} {len(self.written)} of {n} images in {self.seconds:.1f} s ({rate:.2f} images/s)"
        if self.where is not None:
            line += f" into {printable(self.where)}"
        if self.failed:  # the first few by name: 10,000 bad files still give one readable line
            names = [printable(Path(p).name) for p in list(self.failed)[:SUMMARY_NAMES]]
            more = len(self.failed) - len(names)
            line += (
                f"; {len(self.failed)} failed: " + ", ".join(names) + (f" and {more:,} more" if more else "")
            )
        if n > done:
            line += f"; {n - done} not started"
        return line


# ----------------------------------------------------------------------------- output names
def unique_names(names, taken: set | None = None) -> list[Path]:
    """The output name of each input of one run, no two alike: the rule of every command that
    writes one output per input (``stylize`` with several inputs or folders, ``transfer --content``
    with several images).

    Each name (a relative path such as ``photos/a.png``) is kept unless an earlier one has the same
    folder and stem, compared case-insensitively and without the suffix (each output has a
    ``.json`` sidecar beside it, and on some file systems ``A.png`` is ``a.png``); then ``-2``,
    ``-3``... is added to its stem: ``a.png``, ``a.jpg``, ``a-2.png`` -> ``a.png``, ``a-2.jpg``,
    ``a-2-2.png``. ``taken`` (the keys of names already given, updated in place) carries the rule
    across calls.
    """
    taken = set() if taken is None else taken
    out = []
    for name in names:
        name = Path(name)
        candidate, i = name, 1
        while (candidate.parent / candidate.stem).as_posix().lower() in taken:
            i += 1
            candidate = name.with_name(f"{name.stem}-{i}{name.suffix}")
        taken.add((candidate.parent / candidate.stem).as_posix().lower())
        out.append(candidate)
    return out


def progress_bar(total=None, *, desc: str, initial: int = 0, enabled: bool | None = None, **kw):
    """The one progress bar (tqdm) of every long job: shown unless ``enabled`` is False, or it is None
    and ``NST_PROGRESS=0``; it clears itself when done. ``kw`` goes to tqdm (``unit="B"``...)."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = os.environ.get("NST_PROGRESS", "1") != "0"
    return tqdm(
        total=total, initial=initial, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True, **kw
    )


#: The signals that end a run as Ctrl-C does (a batch scheduler's SIGTERM, a closed terminal's SIGHUP).
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def set_signal_handlers(handler, names=("SIGINT", *STOP_SIGNALS)) -> dict:
    """Set ``handler`` for the signals ``names`` (those this platform has); return the previous
    handlers for :func:`restore_signal_handlers`. Outside the main thread nothing changes."""
    previous = {}
    for name in names:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals stay as they are
            pass
    return previous


def restore_signal_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _json_default(obj):
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalars
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def json_bytes(data) -> bytes:
    """``data`` as indented UTF-8 JSON (numpy scalars and paths written as numbers and strings):
    every sidecar's encoding."""
    return json.dumps(data, indent=2, default=_json_default).encode("utf-8")
