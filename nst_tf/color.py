"""Colour preservation (notebook 04), after Gatys, Bethge, Hertzmann and
Shechtman, "Preserving Color in Neural Artistic Style Transfer" (2016).

Two ways to keep the photo's colours while taking the painting's brushwork:

* **colour histogram matching** (``Config(preserve_color="histogram")``):
  ``match_color`` recolours the *style* image before the transfer so that
  its per-channel RGB mean and 3x3 covariance equal the content image's. A
  linear map ``x -> A (x - mu_style) + mu_content`` does this for any ``A``
  with ``A cov_style A^T = cov_content``. ``method="sym"`` (the default, the
  "Image Analogies" choice of Gatys et al.) uses symmetric matrix square
  roots, ``A = cov_c^(1/2) cov_s^(-1/2)``; ``method="cholesky"`` uses
  Cholesky factors, ``A = L_c L_s^-1``, which also matches the statistics
  but rotates the colours more.
* **luminance-only transfer** (``Config(preserve_color="luminance")``): run
  the transfer on grey images that carry only the luminance Y (of YIQ) of
  the content and of the style (``to_luminance``; the style's Y is shifted
  and scaled to the content's mean and standard deviation), then put the
  content's chroma (I, Q) back onto the result (``combine_luminance``).

All images are float RGB in [0, 255], shape (H, W, 3); results are float32
and clipped to [0, 255].
"""

from __future__ import annotations

import numpy as np

#: RGB -> YIQ (NTSC 1953). Y is luminance in [0, 255]; I (orange-blue) and Q
#: (purple-green) are chroma, zero for every grey pixel.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)
MATCH_METHODS = ("sym", "cholesky")


def rgb_to_yiq(img: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (..., 3) YIQ, float64 (Y in [0, 255] for RGB in [0, 255])."""
    return np.asarray(img, np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(img: np.ndarray) -> np.ndarray:
    """Inverse of ``rgb_to_yiq`` (no clipping)."""
    return np.asarray(img, np.float64) @ YIQ_TO_RGB.T


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric square root (or inverse square root) of a symmetric positive-definite matrix."""
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 1e-12) ** (-0.5 if inverse else 0.5)
    return (vectors * values) @ vectors.T


def color_transform(
    source: np.ndarray, target: np.ndarray, *, method: str = "sym", eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, mu_source, mu_target)`` such that ``A @ (x - mu_source) + mu_target`` recolours ``source``.

    ``eps`` (in squared pixel units) is added to both covariances' diagonals so
    that a flat or grey image (singular covariance) still gives a finite map.
    """
    if method not in MATCH_METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {MATCH_METHODS}")
    src = np.asarray(source, np.float64).reshape(-1, 3)
    tgt = np.asarray(target, np.float64).reshape(-1, 3)
    cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(tgt, rowvar=False) + eps * np.eye(3)
    if method == "sym":
        transform = _sqrtm(cov_t) @ _sqrtm(cov_s, inverse=True)
    else:
        transform = np.linalg.cholesky(cov_t) @ np.linalg.inv(np.linalg.cholesky(cov_s))
    return transform, src.mean(0), tgt.mean(0)


def match_color(
    source: np.ndarray, target: np.ndarray, *, method: str = "sym", eps: float = 1e-5
) -> np.ndarray:
    """Recolour ``source`` so its RGB mean and covariance equal ``target``'s (then clip to 0-255).

    Used on the style image with the content image as ``target``. The match
    is exact unless clipping bites (pixels pushed outside 0-255).
    """
    transform, mu_s, mu_t = color_transform(source, target, method=method, eps=eps)
    src = np.asarray(source, np.float64).reshape(-1, 3)
    out = (src - mu_s) @ transform.T + mu_t
    return np.clip(out, 0, 255).reshape(np.shape(source)).astype(np.float32)


def luminance(img: np.ndarray) -> np.ndarray:
    """Y channel (H, W), float64, in [0, 255]."""
    return rgb_to_yiq(img)[..., 0]


def to_luminance(img: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB image (three equal channels) of ``img``'s luminance.

    With ``reference``, the luminance is first shifted and scaled to the
    reference's luminance mean and standard deviation (Gatys et al.'s
    luminance matching of the style to the content).
    """
    y = luminance(img)
    if reference is not None:
        y_ref = luminance(reference)
        y = (y - y.mean()) / (y.std() + 1e-6) * y_ref.std() + y_ref.mean()
    return np.repeat(np.clip(y, 0, 255)[..., None], 3, axis=-1).astype(np.float32)


def combine_luminance(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance Y of ``generated`` with the chroma (I, Q) of ``content`` (same H, W).

    Exact in YIQ unless the combination falls outside the RGB cube and is clipped.
    """
    generated, content = np.asarray(generated), np.asarray(content)
    if generated.shape[:2] != content.shape[:2]:
        raise ValueError(
            f"combine_luminance needs images of the same size, got {generated.shape[:2]} "
            f"and {content.shape[:2]}: resize the content first (nst_tf.images.resize_image)"
        )
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = luminance(generated)
    return np.clip(yiq_to_rgb(yiq), 0, 255).astype(np.float32)
