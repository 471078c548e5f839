"""Image input/output and the VGG pre/deprocessing (introduced in notebook 01).

Units and conventions used throughout nst_tf:

* An *image* is a float32 NumPy array of shape ``(H, W, 3)``, RGB, values in
  ``[0, 255]``. :func:`load_image` returns this; :func:`save_image` accepts it.
* A *preprocessed* tensor is what VGG19 expects: float32, shape ``(N, H, W, 3)``,
  channels in BGR order, with the ImageNet mean pixel :data:`VGG_MEAN_BGR`
  subtracted (Keras calls this the "caffe" mode). :func:`preprocess` and
  :func:`deprocess` convert between the two (exactly, for 8-bit pixel values).

Every bad input raises :class:`~nst_tf.errors.ImageError` with a one-line
message that names the file and the fix; no PIL or OS error escapes.
"""

from __future__ import annotations

import math
import os
import secrets
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from nst_tf.errors import ConfigError, ImageError

#: ImageNet mean pixel in BGR order, subtracted by the Caffe-trained VGG
#: weights that Keras ships (same numbers as ``keras.applications.vgg19``).
VGG_MEAN_BGR = (103.939, 116.779, 123.68)

#: Smallest side, in pixels, that an image may have after resizing. VGG19
#: halves the resolution in each of its 4 pooling layers before ``block5``, so
#: a side shorter than 2**4 = 16 px leaves ``block5_conv*`` with an empty
#: (zero-pixel) feature map and the losses become undefined.
MIN_SIDE = 16

#: Largest accepted ratio of long side to short side. Beyond this the short
#: side vanishes in the deep layers long before the long side fits in memory;
#: such images are almost always a mistake (a banner, a strip, a wrong crop).
MAX_ASPECT = 20.0

#: File extensions :func:`save_image` can write, mapped to PIL format names.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_image(
    src,
    long_side: int | None = None,
    *,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Load an image as float32 RGB, shape (H, W, 3), values in [0, 255].

    Args:
        src: a file path (str or Path), a ``PIL.Image.Image``, or an array of
            shape (H, W), (H, W, 1|2|3|4) (or with a leading batch axis of 1).
            Array values: uint8 as is; uint16 divided by 257 (0..65535 ->
            0..255); bool as 0/255; other integers must lie in [0, 255];
            floats are read as [0, 1] when their maximum is <= 1, otherwise as
            [0, 255] (values outside these ranges are an error).
        long_side: if given, resize so that ``max(H, W) == long_side`` pixels,
            keeping the aspect ratio (the short side is rounded, at least 1).
        size: if given, resize to exactly ``(height, width)`` pixels.

    Files: the EXIF orientation is applied, animated images give their first
    frame, every PIL mode (grayscale, palette, CMYK, 16-bit, 32-bit int or
    float) becomes 8-bit-range RGB. Transparent pixels (RGBA, LA, palette with
    transparency, or a 2/4-channel array) are composited on a WHITE
    background, so a fully transparent pixel becomes (255, 255, 255).

    Raises:
        ImageError: missing file, a directory, an empty, corrupt, truncated or
            unsupported file, or a result smaller than :data:`MIN_SIDE` px on
            a side or more elongated than :data:`MAX_ASPECT`:1.
        ConfigError: both ``long_side`` and ``size``, or a non-positive one.
    """
    _check_resize_args(long_side, size)
    if isinstance(src, Image.Image):
        label = f"'{getattr(src, 'filename', '') or 'PIL image'}'"
        img = _decode_pil(src, label)
    elif isinstance(src, (str, os.PathLike)):
        name = os.fspath(src)
        label = f"'{name}'"
        wanted = long_side if size is None else max(size)
        img = _read_file(Path(name).expanduser(), label, draft=wanted)
    else:
        try:
            arr = np.asarray(src)
        except Exception as exc:  # objects NumPy cannot convert
            raise ImageError(
                f"cannot read image from a {type(src).__name__}: not a path, PIL image or array "
                "— pass a file path or an (H, W, 3) array"
            ) from exc
        label = f"(array of shape {arr.shape})"
        img = _array_to_rgb_float(arr, label)

    h, w = img.shape[:2]
    if long_side is None and size is None:
        _check_geometry(h, w, label, "")
        return img
    if long_side is not None:
        _check_aspect(h, w, label, "")  # refuse strips before spending time resizing them
    target = _target_size(h, w, long_side, size)
    _check_geometry(*target, label, f" after resizing to {target[0]}x{target[1]} px (HxW)")
    return resize_image(img, size=target)


def _read_file(path: Path, label: str, draft: int | None = None) -> np.ndarray:
    """Open, decode and convert an image file; every failure is an ImageError.

    ``draft``: the largest side wanted after resizing. A large JPEG is then
    decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) while staying at
    least twice ``draft`` px on both sides; a 25-megapixel photo loads at
    long_side=512 about 20x faster, within ~0.6 grey levels (mean) of a full
    decode. The Lanczos resize that follows sets the exact size.
    """
    prefix = f"cannot read image {label}"
    try:
        if not path.exists():
            raise ImageError(f"{prefix}: no such file (working directory: {os.getcwd()}) — check the path")
        if path.is_dir():
            raise ImageError(f"{prefix}: it is a directory — pass an image file inside it")
        if path.stat().st_size == 0:
            raise ImageError(f"{prefix}: the file is empty (0 bytes) — download or export it again")
    except ImageError:
        raise
    except OSError as exc:  # permission denied, name too long, broken link...
        raise ImageError(f"{prefix}: {_os_reason(exc)} — check the path and its permissions") from exc

    try:
        pil = Image.open(path)
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{prefix}: not a recognised image format — save it as PNG or JPEG") from exc
    except Exception as exc:
        raise _decode_error(exc, prefix) from exc
    with pil:
        if draft is not None and pil.format == "JPEG":
            try:
                pil.draft(None, (2 * draft, 2 * draft))
            except Exception as exc:
                raise _decode_error(exc, prefix) from exc
        return _decode_pil(pil, label)


def _decode_pil(pil: Image.Image, label: str) -> np.ndarray:
    """Decode a PIL image (first frame) to float32 RGB, mapping failures to ImageError."""
    try:
        pil.load()  # decode now, so truncated or corrupt files fail here
        return _pil_to_rgb_float(pil, label)
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise _decode_error(exc, f"cannot read image {label}") from exc


def _decode_error(exc: Exception, prefix: str) -> ImageError:
    """The one-line ImageError for an exception raised while decoding."""
    if isinstance(exc, Image.DecompressionBombError):
        return ImageError(
            f"{prefix}: too many pixels to decode safely — downscale it below "
            f"{Image.MAX_IMAGE_PIXELS or 0:,} pixels first"
        )
    if isinstance(exc, MemoryError):
        return ImageError(f"{prefix}: not enough memory to decode it — downscale it first")
    if isinstance(exc, PermissionError):
        return ImageError(f"{prefix}: permission denied — check the file's permissions")
    return ImageError(
        f"{prefix}: file is truncated or corrupt ({_short_reason(exc)}) — re-save it as PNG or JPEG"
    )


def _pil_to_rgb_float(pil: Image.Image, label: str) -> np.ndarray:
    """Apply EXIF orientation and convert any PIL mode to float32 RGB in [0, 255]."""
    if getattr(pil, "n_frames", 1) > 1:
        try:
            pil.seek(0)  # first frame of an animation or multi-page file
        except EOFError:
            pass
    try:
        oriented = ImageOps.exif_transpose(pil)
        if oriented is not None:
            pil = oriented
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not make the pixels unusable
        warnings.warn(
            f"ignoring unreadable EXIF orientation in {label} ({_short_reason(exc)})",
            stacklevel=3,
        )

    mode = pil.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(pil)
        return _gray_to_rgb(_scale_high_depth(arr, mode, label))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in pil.info
    ):
        rgba = np.asarray(pil.convert("RGBA"), dtype=np.float32)
        return _composite_on_white(rgba[..., :3], rgba[..., 3] / 255.0)
    if mode != "RGB":
        pil = pil.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV
    return np.asarray(pil, dtype=np.float32).copy()


def _scale_high_depth(arr: np.ndarray, mode: str, label: str) -> np.ndarray:
    """Map 16-bit, 32-bit integer or float grayscale pixels to float32 [0, 255]."""
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ImageError(f"cannot read image {label}: it contains NaN or infinite pixels — re-export it")
    if mode.startswith("I;16"):
        return (arr / 257.0).astype(np.float32)  # 65535 -> 255 exactly
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = arr * 255.0  # float image in [0, 1]
    elif lo >= 0.0 and hi <= 255.0:
        scaled = arr  # already 8-bit range
    elif lo >= 0.0 and hi <= 65535.0:
        scaled = arr / 257.0  # 16-bit data stored as 32-bit
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo))  # unknown range: stretch
    return scaled.astype(np.float32)


def _array_to_rgb_float(arr: np.ndarray, label: str) -> np.ndarray:
    """Validate an array and convert it to float32 RGB in [0, 255]."""
    prefix = f"cannot use image {label}"
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(
            f"{prefix}: expected shape (H, W), (H, W, 1|2|3|4) or (1, H, W, C) — "
            "reshape it, e.g. img[..., :3] or img.transpose(1, 2, 0)"
        )
    if arr.size == 0:
        raise ImageError(f"{prefix}: it has no pixels — pass a non-empty image")

    kind = arr.dtype.kind
    if kind == "b":
        vals = arr.astype(np.float32) * 255.0
    elif arr.dtype == np.uint16:
        vals = arr.astype(np.float32) / 257.0
    elif kind in "ui":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(
                f"{prefix}: integer values span [{lo}, {hi}], outside [0, 255] — "
                "rescale it or cast to uint8/uint16"
            )
        vals = arr.astype(np.float32)
    elif kind == "f":
        vals = arr.astype(np.float32)
        if not np.all(np.isfinite(vals)):
            raise ImageError(f"{prefix}: it contains NaN or infinite values — fix them first")
        lo, hi = float(vals.min()), float(vals.max())
        if lo < 0.0 or hi > 255.0:
            raise ImageError(
                f"{prefix}: float values span [{lo:.4g}, {hi:.4g}], outside [0, 1] and [0, 255] — "
                "clip them, or deprocess a VGG-preprocessed tensor with deprocess()"
            )
        if hi <= 1.0:
            vals = vals * 255.0
    else:
        raise ImageError(f"{prefix}: unsupported dtype {arr.dtype} — use uint8, uint16, bool or float")

    channels = vals.shape[-1]
    if channels in (2, 4):
        return _composite_on_white(vals[..., :-1], vals[..., -1] / 255.0)
    return _gray_to_rgb(vals) if channels == 1 else np.ascontiguousarray(vals)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W, 3) float32."""
    if gray.ndim == 3:
        gray = gray[..., 0]
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)


def _composite_on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend colour (H, W, 1|3) over white with alpha (H, W) in [0, 1]."""
    if color.shape[-1] == 1:
        color = np.repeat(color, 3, axis=-1)
    a = np.clip(alpha, 0.0, 1.0)[..., None].astype(np.float32)
    out = color.astype(np.float32) * a + np.float32(255.0) * (np.float32(1.0) - a)
    return np.clip(out, 0.0, 255.0).astype(np.float32)


# --------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------


def resize_image(
    img: np.ndarray, long_side: int | None = None, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Resize an (H, W, 3) image in [0, 255] to float32, antialiased.

    Give either ``long_side`` (pixels of the longer side, aspect kept, short
    side rounded) or ``size=(height, width)``. Uses PIL's Lanczos filter on
    each channel in 32-bit float, which antialiases when shrinking and keeps
    sub-integer precision; Lanczos overshoots at edges, so the result is
    clipped back to [0, 255].
    """
    _check_resize_args(long_side, size)
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageError(f"cannot resize an array of shape {arr.shape}: expected (H, W, 3)")
    if long_side is None and size is None:
        return arr.astype(np.float32, copy=True)
    h, w = _target_size(arr.shape[0], arr.shape[1], long_side, size)
    arr = arr.astype(np.float32)
    if (h, w) == arr.shape[:2]:
        return arr.copy()
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(arr[..., c]), mode="F").resize(
                (w, h), Image.Resampling.LANCZOS
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0).astype(np.float32)


def _check_resize_args(long_side, size) -> None:
    if long_side is not None and size is not None:
        raise ConfigError("give either long_side or size, not both")
    if long_side is not None and (
        isinstance(long_side, bool) or not isinstance(long_side, (int, np.integer)) or long_side < 1
    ):
        raise ConfigError(f"long_side must be a positive integer number of pixels, got {long_side!r}")
    if size is not None:
        ok = (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in size)
        )
        if not ok:
            raise ConfigError(f"size must be (height, width) in positive pixels, got {size!r}")


def _target_size(h: int, w: int, long_side, size) -> tuple[int, int]:
    """Output (height, width) for a resize request."""
    if size is not None:
        return int(size[0]), int(size[1])
    scale = long_side / max(h, w)
    # round half up (not Python's round-half-even), at least one pixel
    nh = max(1, math.floor(h * scale + 0.5))
    nw = max(1, math.floor(w * scale + 0.5))
    if h >= w:
        nh = int(long_side)
    else:
        nw = int(long_side)
    return nh, nw


def _check_geometry(h: int, w: int, label: str, how: str) -> None:
    """Reject images with an extreme aspect ratio or too small for VGG19."""
    _check_aspect(h, w, label, how)
    if min(h, w) < MIN_SIDE:
        raise ImageError(
            f"cannot use image {label}: {h}x{w} px (HxW){how} is smaller than {MIN_SIDE} px "
            "on a side, too small for VGG19's 4 poolings — use a larger image or long_side"
        )


def _check_aspect(h: int, w: int, label: str, how: str) -> None:
    ratio = max(h, w) / max(1, min(h, w))
    if ratio > MAX_ASPECT:
        raise ImageError(
            f"cannot use image {label}: aspect ratio {ratio:.0f}:1 ({h}x{w} px, HxW){how} "
            f"exceeds {MAX_ASPECT:.0f}:1 — crop it to a less elongated region"
        )


# --------------------------------------------------------------------------
# VGG pre/deprocessing
# --------------------------------------------------------------------------


def preprocess(img) -> tf.Tensor:
    """RGB image(s) in [0, 255] -> VGG19 input: float32 (N, H, W, 3), BGR, mean removed.

    Accepts (H, W, 3) or (N, H, W, 3), NumPy or tf. Identical to
    ``keras.applications.vgg19.preprocess_input`` ("caffe" mode): flip RGB to
    BGR, then subtract :data:`VGG_MEAN_BGR` per channel. No scaling to [0, 1].
    """
    x = tf.convert_to_tensor(img)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    if x.shape.rank == 3:
        x = x[tf.newaxis]
    if x.shape.rank is not None and (x.shape.rank != 4 or x.shape[-1] not in (3, None)):
        raise ImageError(
            f"cannot preprocess an image of shape {tuple(x.shape)}: expected (H, W, 3) or (N, H, W, 3) RGB"
        )
    return tf.reverse(x, axis=[-1]) - tf.constant(VGG_MEAN_BGR, dtype=tf.float32)


def deprocess(x, *, clip: bool = True) -> np.ndarray:
    """VGG19 input (N, H, W, 3) BGR, mean removed -> float32 RGB in [0, 255].

    The inverse of :func:`preprocess`: add the mean back, flip BGR to RGB. A
    batch of one is squeezed to (H, W, 3); larger batches stay (N, H, W, 3).
    The addition is done in float64, so ``deprocess(preprocess(img))`` gives
    back integer-valued pixels (any uint8 image) bit for bit; other values come
    back within float32 rounding of the preprocessed tensor (< 2e-5). ``clip=True`` clips
    to [0, 255], as needed for display; ``clip=False`` keeps out-of-range
    values (useful to measure how far an optimised image strays).
    """
    arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ImageError(
            f"cannot deprocess an array of shape {arr.shape}: expected (N, H, W, 3) or (H, W, 3) BGR"
        )
    mean = np.asarray(VGG_MEAN_BGR, dtype=np.float32).astype(np.float64)
    rgb = (arr.astype(np.float64) + mean)[..., ::-1]
    if clip:
        rgb = np.clip(rgb, 0.0, 255.0)
    if rgb.ndim == 4 and rgb.shape[0] == 1:
        rgb = rgb[0]
    return np.ascontiguousarray(rgb, dtype=np.float32)


def deprocess_image(x) -> np.ndarray:
    """VGG19 input -> uint8 RGB (H, W, 3), rounded and clipped, ready to show or save.

    ``deprocess_image(preprocess(u8)) == u8`` exactly for any uint8 image.
    """
    return to_uint8(deprocess(x, clip=False))


def to_uint8(img) -> np.ndarray:
    """Float image in [0, 255] (or uint8) -> uint8, rounded to nearest and clipped.

    NaNs are an :class:`ImageError` (they have no meaningful pixel value).
    """
    arr = np.asarray(img.numpy() if hasattr(img, "numpy") else img)
    if arr.dtype == np.uint8:
        return arr.copy()
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ImageError("cannot convert image to uint8: it contains NaN values — check the loss")
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Saving and inspecting
# --------------------------------------------------------------------------


def save_image(img, path, *, quality: int = 95) -> Path:
    """Write an image to ``path`` as PNG or JPEG (chosen by the extension).

    ``img`` is (H, W, 3) or (1, H, W, 3) or (H, W) — uint8, or float in
    [0, 255] (rounded and clipped). For a preprocessed VGG tensor call
    :func:`deprocess_image` first. JPEGs use ``quality`` (1-95) and no chroma
    subsampling. Parent folders are created. The write is atomic: a temporary
    file in the same folder is renamed over ``path``, so readers never see a
    half-written image and an interrupted save leaves no partial file.
    Returns the path written.
    """
    path = Path(path).expanduser()
    ext = path.suffix.lower()
    if ext not in SAVE_FORMATS:
        raise ImageError(
            f"cannot save image '{path}': unsupported extension '{path.suffix}' — use .png or .jpg"
        )
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"JPEG quality must be in 1..100, got {quality!r}")
    arr = np.asarray(img.numpy() if hasattr(img, "numpy") else img)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)) or arr.size == 0:
        raise ImageError(f"cannot save image '{path}': array of shape {arr.shape} is not (H, W, 3) or (H, W)")
    if arr.dtype.kind == "f" and arr.size and float(np.nanmin(arr)) < -1.0:
        raise ImageError(
            f"cannot save image '{path}': values go below 0 (min {float(np.nanmin(arr)):.1f}), "
            "it looks like a preprocessed VGG tensor — pass deprocess_image(x)"
        )
    pil = Image.fromarray(to_uint8(arr))
    fmt = SAVE_FORMATS[ext]
    options = {"optimize": True}
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0)

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_sibling(path)
        with open(tmp, "xb") as fh:  # "x": never clobbers; honours the umask
            pil.save(fh, format=fmt, **options)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ImageError(
            f"cannot save image '{path}': {_os_reason(exc)} — check the folder exists and is writable"
        ) from exc
    finally:
        if tmp is not None:
            _remove_quietly(tmp)
    return path


def image_info(path) -> dict:
    """Describe an image file without decoding its pixels.

    Returns ``{"path", "format", "mode", "width", "height", "frames", "bytes"}``
    (width and height in pixels, before any EXIF rotation).
    """
    name = os.fspath(path)
    p = Path(name).expanduser()
    try:
        with Image.open(p) as pil:
            return {
                "path": str(p),
                "format": pil.format,
                "mode": pil.mode,
                "width": pil.width,
                "height": pil.height,
                "frames": getattr(pil, "n_frames", 1),
                "bytes": p.stat().st_size,
            }
    except FileNotFoundError as exc:
        raise ImageError(f"cannot read image '{name}': no such file — check the path") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"cannot read image '{name}': it is a directory — pass an image file") from exc
    except Exception as exc:
        raise ImageError(
            f"cannot read image '{name}': not a readable image ({_short_reason(exc)}) — "
            "save it as PNG or JPEG"
        ) from exc


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _temp_sibling(path: Path) -> Path:
    """A fresh hidden temporary file name next to ``path`` (same filesystem)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _short_reason(exc: BaseException) -> str:
    """First line of an exception message, trimmed, for one-line errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if getattr(exc, "strerror", None) else _short_reason(exc)
