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

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFile, ImageOps

from nst_tf.errors import ConfigError, ImageError
from nst_tf.files import atomic_write, json_bytes, open_input, printable, user_path, write_files

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

#: Largest number of pixels decoded from one source, checked from the file's header before
#: decoding (issue #13.8): 40 Mpx is ~0.5 GB as float32 RGB, ~1.5 GB at peak while converting.
#: A larger JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) to fit, with one
#: warning line; a larger image of another format is refused. ``NST_MAX_PIXELS`` changes it.
MAX_PIXELS = 40_000_000

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
        src: a file path (str or Path, ``~`` expanded), the encoded bytes of an
            image file, a binary file object, a ``PIL.Image.Image``, or an array
            of shape (H, W), (H, W, 1|2|3|4) (or with a leading batch axis of 1).
            Array values: uint8 as is; uint16 divided by 257 (0..65535 ->
            0..255); bool as 0/255; other integers must lie in [0, 255];
            floats: see :func:`_float_to_255` ([0, 1] by dtype, unless
            clearly [0, 255]).
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
    wanted = long_side if size is None else max(size)
    if isinstance(src, Image.Image):
        label = f"'{printable(getattr(src, 'filename', '') or 'PIL image')}'"
        img = _decode_pil(src, label)
    elif isinstance(src, (str, os.PathLike)):
        name = os.fspath(src)
        label = f"'{printable(name)}'"
        img = _read_file(user_path(name), label, draft=wanted)
    elif isinstance(src, (bytes, bytearray, memoryview)) or hasattr(src, "read"):
        # decision (issue #13.10): encoded bytes and binary file objects are accepted
        name = getattr(src, "name", None)
        label = f"'{printable(name)}'" if isinstance(name, str) else f"({type(src).__name__})"
        stream = io.BytesIO(bytes(src)) if not hasattr(src, "read") else src
        mode = getattr(src, "mode", "b")
        if hasattr(src, "read") and (
            isinstance(src, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode)
        ):
            raise ImageError(f"cannot read image {label}: it is opened in text mode — open it with 'rb'")
        img = _decode_stream(stream, label, wanted)
    else:
        try:
            arr = np.asarray(src)
        except Exception as exc:  # objects NumPy cannot convert
            raise ImageError(f"cannot read image from a {type(src).__name__}: {_ACCEPTED}") from exc
        if arr.dtype == object or arr.dtype.kind in "SUV":
            raise ImageError(f"cannot read image from a {type(src).__name__}: {_ACCEPTED}")
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


_ACCEPTED = (
    "not an image — pass a file path, the bytes of an image file, a binary file object, "
    "a PIL image or an (H, W, 3) array"
)


def _read_file(path: Path, label: str, draft: int | None = None) -> np.ndarray:
    """Open, decode and convert an image file; every failure is an ImageError.

    ``draft``: the largest side wanted after resizing. A large JPEG is then
    decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) while staying at
    least twice ``draft`` px on both sides; a 25-megapixel photo loads at
    long_side=512 about 20x faster, within ~0.6 grey levels (mean) of a full
    decode. The Lanczos resize that follows sets the exact size.
    """
    prefix = f"cannot read image {label}"
    # a device, FIFO, folder or /proc file is refused before anything is read (never blocks)
    with open_input(path, what="image", error=ImageError, fix="pass an image file") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise ImageError(f"{prefix}: the file is empty (0 bytes) — download or export it again")
        return _decode_stream(fh, label, draft)


def _decode_stream(fh, label: str, draft: int | None) -> np.ndarray:
    """Decode an open binary stream; the pixel count is checked from the header first."""
    prefix = f"cannot read image {label}"
    try:
        with warnings.catch_warnings():  # replaced by the MAX_PIXELS check below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(fh)
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{prefix}: not a recognised image format — save it as PNG or JPEG") from exc
    except Exception as exc:
        raise _decode_error(exc, prefix) from exc
    with pil:
        try:
            _limit_pixels(pil, label, draft)
        except (ImageError, ConfigError):
            raise
        except Exception as exc:
            raise _decode_error(exc, prefix) from exc
        return _decode_pil(pil, label)


def max_pixels() -> int:
    """The per-source pixel limit: ``NST_MAX_PIXELS`` if set, else :data:`MAX_PIXELS`."""
    raw = os.environ.get("NST_MAX_PIXELS", "").strip()
    if not raw:
        return MAX_PIXELS
    try:
        value = int(float(raw))
        if value < 1:
            raise ValueError
    except (ValueError, OverflowError):
        raise ConfigError(
            f"NST_MAX_PIXELS={printable(raw)!r} is not a positive number: e.g. 40000000"
        ) from None
    return value


def _limit_pixels(pil: Image.Image, label: str, draft: int | None) -> None:
    """Refuse (or, for a JPEG, decode smaller) a source above the pixel limit, before decoding."""
    limit = max_pixels()
    w, h = pil.size
    if pil.format == "JPEG":
        want = (2 * draft, 2 * draft) if draft is not None else (w, h)  # see _read_file's draft note
        k = 1
        while k < 8 and (math.ceil(w / k) * math.ceil(h / k) > limit):
            k *= 2
        if k > 1:  # ask for floor(w / k): libjpeg then scales by k and rounds up to ceil(w / k)
            want = (min(want[0], w // k), min(want[1], h // k))
        if want != (w, h):
            pil.draft(None, want)
            if pil.size != (w, h) and k > 1:
                warnings.warn(
                    f"image {label} has {w * h / 1e6:.3g} Mpx, above the {limit / 1e6:.3g} Mpx limit: "
                    f"decoded at {pil.size[0]}x{pil.size[1]} px (JPEG draft mode)",
                    stacklevel=5,
                )
        w, h = pil.size
    if w * h > limit:
        raise ImageError(
            f"cannot read image {label}: {w}x{h} px is {w * h / 1e6:.3g} Mpx, above the "
            f"{limit / 1e6:.3g} Mpx limit per image — downscale it first (or raise NST_MAX_PIXELS)"
        )


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
            f"{max_pixels() / 1e6:.3g} Mpx first"
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
        vals = _float_to_255(arr.astype(np.float32), prefix)
    else:
        raise ImageError(f"{prefix}: unsupported dtype {arr.dtype} — use uint8, uint16, bool or float")

    channels = vals.shape[-1]
    if channels in (2, 4):
        return _composite_on_white(vals[..., :-1], vals[..., -1] / 255.0)
    return _gray_to_rgb(vals) if channels == 1 else np.ascontiguousarray(vals)


#: Overshoot tolerated (and clipped) around a float range: resampling rings a little past it.
_FLOAT_SLACK = 0.05


def _float_to_255(vals: np.ndarray, prefix: str) -> np.ndarray:
    """Float pixels -> [0, 255]. Decision (issue #13.10): by dtype, a float image is in [0, 1].

    Up to 5 % overshoot ([-0.05, 1.05], e.g. one value at 1.0001 after a resize) is clipped,
    not read as a nearly black [0, 255] image. Only a maximum of 2 or more is clearly [0, 255]
    (overshoot of one grey level clipped). Anything in between, or outside both, is ambiguous
    and an ImageError says how to fix it.
    """
    if not np.all(np.isfinite(vals)):
        raise ImageError(f"{prefix}: it contains NaN or infinite values — fix them first")
    lo, hi = float(vals.min()), float(vals.max())
    if -_FLOAT_SLACK <= lo and hi <= 1.0 + _FLOAT_SLACK:
        return np.clip(vals, 0.0, 1.0) * np.float32(255.0)
    if 2.0 <= hi <= 256.0 and lo >= -1.0:
        return np.clip(vals, 0.0, 255.0)
    raise ImageError(
        f"{prefix}: float values span [{lo:.4g}, {hi:.4g}], outside [0, 1] and [0, 255] or "
        "between the two — clip them to [0, 1] (or scale to [0, 255]), or deprocess a "
        "VGG-preprocessed tensor with deprocess()"
    )


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
    return scaled_size((h, w), long_side)


def scaled_size(shape, long_side: int) -> tuple[int, int]:
    """(height, width) of an image of ``shape`` (H, W, ...) scaled so its long side is ``long_side``.

    The one rule every "scale to a long side" in nst_tf uses (loading, resizing, each
    coarse-to-fine stage, style images, memory estimates): the long side exactly, the short
    side rounded half up (not Python's round-half-even: 1024x513 at 512 gives 512x257), at
    least one pixel.
    """
    h, w = int(shape[0]), int(shape[1])
    scale = long_side / max(h, w)
    nh = int(long_side) if h >= w else max(1, math.floor(h * scale + 0.5))
    nw = int(long_side) if w > h else max(1, math.floor(w * scale + 0.5))
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


def save_with_sidecar(img, path, meta: dict, *, overwrite: bool = False, extra: dict | None = None) -> Path:
    """Write the image ``path`` (PNG/JPEG) and its JSON sidecar ``path.json``, all or nothing
    (:func:`nst_tf.files.write_files`): every output image of the project goes through here.
    ``extra``: more ``{path: writer}`` in the same transaction (an animation), written before the
    sidecar, so a writer may still add to ``meta``."""
    path = user_path(path)
    writers = {path: image_writer(img, path), **(extra or {})}
    writers[path.with_suffix(".json")] = lambda fh: fh.write(json_bytes(meta))
    write_files(writers, overwrite=overwrite)
    return path


def save_image(img, path, *, quality: int = 95, overwrite: bool = True) -> Path:
    """Write an image to ``path`` as PNG or JPEG (chosen by the extension).

    ``img`` is (H, W, 3) or (1, H, W, 3) or (H, W) — uint8, or float in
    [0, 255] (rounded and clipped). For a preprocessed VGG tensor call
    :func:`deprocess_image` first. JPEGs use ``quality`` (1-95) and no chroma
    subsampling. Parent folders are created. The write is atomic: a temporary
    file in the same folder is renamed over ``path``, so readers never see a
    half-written image and an interrupted save leaves no partial file
    (:func:`nst_tf.files.atomic_write`; ``overwrite=False`` refuses to replace
    an existing file). Returns the path written.
    """
    path = user_path(path)
    return atomic_write(path, image_writer(img, path, quality=quality), overwrite=overwrite, error=ImageError)


def image_writer(img, path, *, quality: int = 95):
    """Check ``img`` and the extension of ``path`` now; return a writer for
    :func:`nst_tf.files.write_files` that encodes the image (PNG or JPEG) into the file it gets."""
    path = user_path(path)
    ext = path.suffix.lower()
    if ext not in SAVE_FORMATS:
        raise ImageError(
            f"cannot save image '{printable(path)}': unsupported extension '{path.suffix}' — use .png or .jpg"
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
        # an optimised JPEG is written in one piece into a buffer of at least ImageFile.MAXBLOCK
        # bytes (64 KiB); a small detailed picture at 4:4:4 can need more ("Suspension not allowed
        # here", then "broken data stream"): make room for the largest it can be
        ImageFile.MAXBLOCK = max(ImageFile.MAXBLOCK, 3 * pil.width * pil.height + 4096)

    return lambda fh: pil.save(fh, format=fmt, **options)


def image_info(path) -> dict:
    """Describe an image file without decoding its pixels.

    Returns ``{"path", "format", "mode", "width", "height", "frames", "bytes"}``
    (width and height in pixels, before any EXIF rotation).
    """
    name = os.fspath(path)
    p = user_path(name)
    fh = open_input(p, what="image", error=ImageError, fix="pass an image file")
    try:
        with fh, Image.open(fh) as pil:
            return {
                "path": str(p),
                "format": pil.format,
                "mode": pil.mode,
                "width": pil.width,
                "height": pil.height,
                "frames": getattr(pil, "n_frames", 1),
                "bytes": p.stat().st_size,
            }
    except Exception as exc:
        raise ImageError(
            f"cannot read image '{printable(name)}': not a readable image ({_short_reason(exc)}) — "
            "save it as PNG or JPEG"
        ) from exc


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _short_reason(exc: BaseException) -> str:
    """First line of an exception message, trimmed, for one-line errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return printable(text if len(text) <= 120 else text[:117] + "...")
