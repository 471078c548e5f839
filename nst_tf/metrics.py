"""Numbers for comparing results (notebooks 03-04).

* ``ssim`` and ``psnr`` of the generated image against the content image
  (``tf.image``; higher = closer to the photo's structure / pixels).
* ``style_distance``: the Gram-based style loss of the generated image against
  the style image, summed over the style layers, each layer divided by the
  mean square of the style's Gram matrix exactly as in the optimised loss
  (``nst_tf.optimize.make_objective``), so every layer has equal say (lower =
  closer to the style's statistics; for an unrelated photo or painting 0.2-2.3 per layer and 3-8
  in all at 512 px, measured against The Starry Night and hubble_deep_field).
* ``edge_correlation`` of the generated image against the content image: do the photo's
  outlines (skyline, roofs, faces) stay where they were? Pearson correlation of the two images'
  edge-strength maps (1 = the same edges, about 0 = unrelated; issue #16).
Images are uint8 or float RGB in [0, 255], HxWx3.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nst_tf.config import DEFAULT_STYLE_LAYERS
from nst_tf.images import preprocess, resize_image
from nst_tf.losses import gram_matrix
from nst_tf.models import build_extractor
from nst_tf.optimize import make_objective


def _pair(a, b):
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.shape != b.shape:
        b = resize_image(b, size=a.shape[:2])
    return tf.constant(a[None]), tf.constant(b[None])


def ssim(image, reference) -> float:
    """Structural similarity in [-1, 1] (1 = identical), on 0-255 RGB."""
    a, b = _pair(image, reference)
    return float(tf.image.ssim(a, b, max_val=255.0)[0])


def psnr(image, reference) -> float:
    """Peak signal-to-noise ratio in dB (higher = closer; inf if identical)."""
    a, b = _pair(image, reference)
    return float(tf.image.psnr(a, b, max_val=255.0)[0])


#: Gaussian blur before the Sobel filter, in pixels per 256 px of the image's long side (2 px at 512 px).
EDGE_BLUR_PER_256 = 1.0


def _grey(image) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) of an HxWx3 or HxW image, float64."""
    image = np.asarray(image, np.float64)
    return image @ np.array([0.299, 0.587, 0.114]) if image.ndim == 3 else image


def edge_map(image, sigma: float | None = None) -> np.ndarray:
    """Sobel gradient magnitude of the grey image after a Gaussian blur of ``sigma`` pixels
    (None: :data:`EDGE_BLUR_PER_256` per 256 px of the long side; 0: no blur). Borders reflect."""
    from scipy import ndimage

    grey = _grey(image)
    if sigma is None:
        sigma = EDGE_BLUR_PER_256 * max(grey.shape) / 256
    if sigma > 0:
        grey = ndimage.gaussian_filter(grey, sigma, mode="reflect")
    return np.hypot(ndimage.sobel(grey, 0, mode="reflect"), ndimage.sobel(grey, 1, mode="reflect"))


def edge_correlation(image, reference, *, sigma: float | None = None) -> float:
    """Pearson correlation of the edge-strength maps of ``image`` and ``reference`` (-1 to 1).

    Did the result keep the photo's structure where the photo has it? 1 = the same edges in the same
    places, about 0 = edges that have nothing to do with the reference's (noise, another picture).
    ``reference`` is resized to ``image``'s height x width first. Both are turned grey (luma), blurred
    with a Gaussian of ``sigma`` pixels and filtered with Sobel; the maps' Pearson correlation is
    returned.

    Decision (issue #16): the blur. A stylised result is covered in brush strokes, whose small edges
    are everywhere and correlate with nothing in the photo; unblurred, they would dominate the map
    and rate every strongly stylised image near 0 whether or not its outlines survived. The default
    ``sigma`` is 1 px per 256 px of the long side (2 px at 512 px, 0.375 at 96 px): it damps the
    stroke texture and keeps outlines a few pixels wide, and being proportional to the size it
    measures the same thing at every size. ``sigma=0`` gives the raw Sobel maps.

    Scaling either image's brightness scales its edge map, so the correlation does not change
    (unless pixels clip). A constant image has no edges: its correlation is 0.
    """
    image = np.asarray(image, np.float32)
    reference = np.asarray(reference, np.float32)
    if reference.shape[:2] != image.shape[:2]:
        if reference.ndim == 2:
            reference = np.repeat(reference[..., None], 3, axis=-1)
        reference = resize_image(reference, size=image.shape[:2])
    a, b = edge_map(image, sigma).ravel(), edge_map(reference, sigma).ravel()  # same size, same blur
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b / denom) if denom > 0 else 0.0


def style_distance(image, style, layers=None, *, weights=None) -> float:
    """Sum over ``layers`` of the relative mean squared Gram difference between ``image`` and ``style``.

    The style image is resized to the generated image's long side first, as in a run.
    """
    layers = dict(layers or DEFAULT_STYLE_LAYERS)
    ext = build_extractor(list(layers), weights=weights)
    image = np.asarray(image, np.float32)
    style = resize_image(np.asarray(style, np.float32), long_side=max(image.shape[:2]))
    sty = ext(preprocess(style))
    objective = make_objective(  # the style term of the optimised loss, with style weight 1
        ext, style_targets={k: gram_matrix(sty[k]) for k in layers}, style_layers=layers, style_weight=1.0
    )
    return float(objective(preprocess(image))[1]["style"][0])


def report(image, content=None, style=None, **kw) -> dict:
    """All metrics that apply, as a dict (what the notebooks tabulate)."""
    out = {}
    if content is not None:
        out["ssim"] = ssim(image, content)
        out["psnr_db"] = psnr(image, content)
        out["edge_correlation"] = edge_correlation(image, content)
    if style is not None:
        out["style_distance"] = style_distance(image, style, **kw)
    return out
