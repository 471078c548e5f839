"""Numbers for comparing results (notebooks 03-04).

* ``ssim`` and ``psnr`` of the generated image against the content image
  (``tf.image``; higher = closer to the photo's structure / pixels).
* ``style_distance``: the Gram-based style loss of the generated image against
  the style image, summed over the style layers, each layer divided by the
  mean square of the style's Gram matrix exactly as in the optimised loss
  (``nst_tf.optimize.make_objective``), so every layer has equal say (lower =
  closer to the style's statistics; about 1 per layer for an unrelated image).
Images are uint8 or float RGB in [0, 255], HxWx3.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nst_tf.config import DEFAULT_STYLE_LAYERS
from nst_tf.images import preprocess, resize_image
from nst_tf.losses import gram_matrix, mean_square, style_layer_loss
from nst_tf.models import build_extractor


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


def style_distance(image, style, layers=None, *, weights=None) -> float:
    """Sum over ``layers`` of the relative mean squared Gram difference between ``image`` and ``style``.

    The style image is resized to the generated image's long side first, as in a run.
    """
    layers = dict(layers or DEFAULT_STYLE_LAYERS)
    ext = build_extractor(list(layers), weights=weights)
    image = np.asarray(image, np.float32)
    style = resize_image(np.asarray(style, np.float32), long_side=max(image.shape[:2]))
    gen, sty = ext(preprocess(image)), ext(preprocess(style))
    total = 0.0
    for k, w in layers.items():
        target = gram_matrix(sty[k])
        total += w * float(style_layer_loss(gen[k], target)[0] / mean_square(target)[0])
    return total


def report(image, content=None, style=None, **kw) -> dict:
    """All metrics that apply, as a dict (what the notebooks tabulate)."""
    out = {}
    if content is not None:
        out["ssim"] = ssim(image, content)
        out["psnr_db"] = psnr(image, content)
    if style is not None:
        out["style_distance"] = style_distance(image, style, **kw)
    return out
