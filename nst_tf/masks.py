"""Spatial control: mask images, and how a mask follows the image down VGG19 (notebook 04).

Gatys et al. (2017, *Controlling Perceptual Factors in Neural Style Transfer*) steer each style to a
region with a **mask** (white = the region) and a **guided Gram matrix**: the Gram matrix of the
features weighted by the mask at that layer (``nst_tf.losses.guided_gram_matrix``). That needs the
mask at every layer's resolution, and this module makes it.

**Why not simply resize the mask to each layer's size (nearest neighbour)?** A unit of
``block5_conv1`` sees a window of 156x156 pixels of the image (``nst_tf.vgg19.receptive_field``)
but sits on a grid 16 times coarser. Nearest-neighbour resizing labels it by the one mask pixel at
its centre, so a unit half over the sky and half over the face counts fully as "sky": the sky's
Gram matrix then carries face statistics, thin regions vanish or alias, and a boundary moves by up to
8 pixels at that layer. The mask has to go through the network's *geometry* instead:

* each 2x2 pooling -> a 2x2 average of the mask (the fraction of the four inputs in the region);
* each 3x3 convolution -> a 3x3 mean filter of the mask (the fraction of its inputs in the region),
  edges replicated, as the convolution's zero padding is not part of the picture.

So a unit's mask value is the (weighted) fraction of its receptive field inside the region: 1 deep
inside, 0 far outside, in between where the receptive field straddles the boundary. We chose the
mean filter over the paper's other option (keep only units whose 3x3 neighbourhood lies fully
inside, an erosion) because it is linear: complementary masks stay complementary at every layer, so
every unit's statistics are split between the regions and none is lost, and a small region does not
erode to nothing at the deep, coarse layers (at 64 px, ``block5_conv1`` is a 4x4 grid).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from nst_tf.errors import ConfigError, ImageError
from nst_tf.files import printable
from nst_tf.vgg19 import CONV_LAYERS

#: Below this mean value a mask selects nothing (an error); above ``FULL`` it selects everything (a
#: warning: the same as no mask).
EMPTY = 1e-3
FULL = 0.999
#: A mask that covers more than this fraction while other masks are given looks inverted (a warning).
MOSTLY = 0.95
#: Inside ``--content-mask`` the content loss counts this many times more (and there is no style loss).
CONTENT_MASK_GAIN = 10.0
#: The aspect ratio a mask may differ from the content image's before its stretching is reported.
ASPECT_TOLERANCE = 0.02


def load_mask(src, what: str = "mask") -> np.ndarray:
    """A mask image (file path, array, ...) -> float32 (H, W) in [0, 1]: white = 1 = the region.

    Colour images are averaged over R, G, B; transparent pixels count as white (as in
    ``nst_tf.images.load_image``). ``what`` names the mask in messages (e.g. "style mask 2").
    Raises ImageError (one line) for anything that is not an image.
    """
    from nst_tf.images import load_image

    try:
        rgb = load_image(src)
    except ImageError as err:
        raise ImageError(f"{what}: {err}; a mask is a black-and-white image, white = the region") from None
    return (rgb.mean(axis=-1) / 255.0).astype(np.float32)


def check_masks(style_masks, content_mask=None, names=None) -> None:
    """Refuse masks that select nothing and warn about ones that look like a mistake.

    ``style_masks``: (H, W) arrays in [0, 1] (any sizes), ``names``: how to call them in messages.
    An all-black mask raises ConfigError; an all-white style mask, a mask covering almost everything
    while other masks are given, or two masks that select the same region warn (RuntimeWarning).
    """
    style_masks = list(style_masks)
    names = list(names) if names is not None else [f"style mask {i + 1}" for i in range(len(style_masks))]
    for mask, name in zip(style_masks, names):
        area = float(mask.mean())
        if area < EMPTY:
            raise ConfigError(
                f"{name} is all black (it selects no region): paint the region for this style white, "
                "or leave its --style-mask out"
            )
        if area > FULL:
            warnings.warn(
                f"{name} is all white: the same as no mask for this style", RuntimeWarning, stacklevel=3
            )
        elif len(style_masks) > 1 and area > MOSTLY:
            warnings.warn(
                f"{name} covers {area:.0%} of the image, over the other styles' regions too: white marks "
                "the region; invert it if its black part was meant",
                RuntimeWarning,
                stacklevel=3,
            )
    for i in range(len(style_masks)):
        for j in range(i + 1, len(style_masks)):
            a, b = style_masks[i], _same_size(style_masks[j], style_masks[i].shape)
            overlap = float(np.minimum(a, b).sum() / max(min(a.sum(), b.sum()), 1e-6))
            if overlap > MOSTLY and min(a.mean(), b.mean()) <= FULL:
                warnings.warn(
                    f"{names[i]} and {names[j]} select nearly the same region ({overlap:.0%} overlap): "
                    "their styles are blended there; invert one if they were meant to be complementary",
                    RuntimeWarning,
                    stacklevel=3,
                )
    if content_mask is None:
        return
    area = float(content_mask.mean())
    if area < EMPTY:
        raise ConfigError(
            "the content mask is all black (it keeps no region): paint the region to keep white, "
            "or leave --content-mask out"
        )
    if area > FULL:
        raise ConfigError(
            "the content mask is all white: the whole photo would be kept and no style applied — "
            "paint only the region to keep white"
        )
    for mask, name in zip(style_masks, names):
        left = mask * (1 - _same_size(content_mask, mask.shape))
        if float(left.mean()) < EMPTY:
            raise ConfigError(
                f"{name} lies entirely inside the content mask, which keeps the photo there: "
                "nothing is left to style — shrink the content mask or move the style mask"
            )


def fit_mask(mask: np.ndarray, hw, name: str = "mask", *, warn: bool = False) -> np.ndarray:
    """``mask`` resized to ``hw`` (height, width) with an area-averaging filter, values kept in [0, 1].

    A mask of another size is expected (draw it at any resolution); ``warn=True`` also warns when
    its aspect ratio differs from ``hw``'s, because then it is stretched to fit.
    """
    h, w = mask.shape
    if warn and abs((w / h) / (hw[1] / hw[0]) - 1) > ASPECT_TOLERANCE:
        warnings.warn(
            f"{name} is {w}x{h} px (WxH), not the content image's aspect ratio ({hw[1]}x{hw[0]}): "
            "stretched to fit — draw masks on a copy of the content image",
            RuntimeWarning,
            stacklevel=3,
        )
    return _same_size(mask, hw)


def _same_size(mask: np.ndarray, hw) -> np.ndarray:
    if tuple(mask.shape) == tuple(hw):
        return np.asarray(mask, np.float32)
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(mask, np.float32), mode="F")
    resized = np.asarray(img.resize((int(hw[1]), int(hw[0])), Image.Resampling.BOX))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def layer_masks(mask: np.ndarray, layers) -> dict[str, np.ndarray]:
    """The mask at each VGG19 layer in ``layers``: {layer: (h, w) float32}, shaped like its features.

    ``mask`` is (H, W) at the generated image's size. It is propagated through the network's
    geometry (see the module docstring): a 3x3 mean filter per convolution, a 2x2 average per
    pooling (which, like Keras's pooling, drops an odd last row or column).
    """
    wanted = set(layers)
    out, m, block = {}, np.asarray(mask, np.float64), 1
    for name in CONV_LAYERS:
        if not wanted - set(out):
            break
        if int(name[5]) != block:  # a 2x2 pooling sits in front of this block
            block = int(name[5])
            h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
            m = m[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        m = _mean3x3(m)
        if name in wanted:
            out[name] = m.astype(np.float32)
    return {k: out[k] for k in layers}


def _mean3x3(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, mode="edge")
    h, w = m.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def nearest_layer_masks(mask: np.ndarray, shapes: dict) -> dict[str, np.ndarray]:
    """The naive alternative, for comparison only (notebook 04): nearest-neighbour resizing to each
    layer's ``shapes[layer] = (h, w)``."""
    out = {}
    for k, (h, w) in shapes.items():
        rows = np.minimum((np.arange(h) + 0.5) * mask.shape[0] / h, mask.shape[0] - 1).astype(int)
        cols = np.minimum((np.arange(w) + 0.5) * mask.shape[1] / w, mask.shape[1] - 1).astype(int)
        out[k] = np.asarray(mask, np.float32)[np.ix_(rows, cols)]
    return out


def describe(src) -> str:
    """How messages name a mask given as a path or an array."""
    if isinstance(src, (str, os.PathLike)):
        return f"'{printable(os.fspath(src))}'"
    return f"array of shape {tuple(np.shape(src))}"


def content_weights(mask: np.ndarray, layers) -> dict[str, np.ndarray]:
    """``--content-mask``: {layer: 1 + (CONTENT_MASK_GAIN - 1) * mask}, the content loss's weight per
    position (1 outside the region to keep, ``CONTENT_MASK_GAIN`` inside)."""
    return {k: 1 + (CONTENT_MASK_GAIN - 1) * m for k, m in layer_masks(mask, layers).items()}
