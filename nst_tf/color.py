"""Colour preservation (notebook 04), after Gatys et al., "Preserving Color in
Neural Artistic Style Transfer" (2016).

* ``match_color``: recolour the *style* image so its per-channel mean and
  covariance match the content image's (the "histogram matching" variant,
  linear version: Cholesky whitening/colouring). Transfer then adds brushwork
  but keeps the photo's palette.
* luminance-only transfer: run the transfer on the luminance (Y of YIQ) of
  both images, then put the content's colour (I, Q) back: ``to_luminance`` and
  ``combine_luminance``.
All images are float RGB in [0, 255], shape (H, W, 3).
"""

from __future__ import annotations

import numpy as np

# RGB -> YIQ (NTSC) and back.
_RGB2YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64
)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def rgb_to_yiq(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, np.float64) @ _RGB2YIQ.T


def yiq_to_rgb(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, np.float64) @ _YIQ2RGB.T


def match_color(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Recolour ``source`` so its RGB mean and covariance equal ``target``'s."""
    src = np.asarray(source, np.float64).reshape(-1, 3)
    tgt = np.asarray(target, np.float64).reshape(-1, 3)
    mu_s, mu_t = src.mean(0), tgt.mean(0)
    cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(tgt, rowvar=False) + eps * np.eye(3)
    transform = np.linalg.cholesky(cov_t) @ np.linalg.inv(np.linalg.cholesky(cov_s))
    out = (src - mu_s) @ transform.T + mu_t
    return np.clip(out, 0, 255).reshape(np.shape(source)).astype(np.float32)


def to_luminance(img: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB image of ``img``'s luminance; if ``reference`` is given, its mean/std are matched."""
    y = rgb_to_yiq(img)[..., 0]
    if reference is not None:
        y_ref = rgb_to_yiq(reference)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-6) * y_ref.std() + y_ref.mean()
    return np.repeat(np.clip(y, 0, 255)[..., None], 3, axis=-1).astype(np.float32)


def combine_luminance(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance of ``generated`` with the colour (I, Q) of ``content`` (same size)."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(generated)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0, 255).astype(np.float32)
