"""Memory estimates, so that a huge request is refused before it starts.

The estimate counts the float32 activations that one forward and backward
pass through VGG19 keeps alive (conv output, ReLU output and their gradients,
plus TensorFlow's scratch space), summed over the layers the run uses. It was
checked against measured peak memory in ``benchmarks/`` (see its results).
"""

from __future__ import annotations

import os

from nst_tf.errors import ConfigError
from nst_tf.images import scaled_size
from nst_tf.vgg19 import CHANNELS, CONV_LAYERS, STRIDE, deepest

#: Live float32 copies per activation during forward + backward. Measured (benchmarks/, session 3):
#: 2.9 copies + 0.85 GB at 512 and 1024 px; 3.5 and 1.0 GB keep a ~15 % margin.
COPIES_PER_ACTIVATION = 3.5
#: Fixed cost: TensorFlow runtime, VGG19 weights, Python (bytes).
BASE_BYTES = 1.0e9


def estimate_bytes(hw, layers, batch: int = 1) -> float:
    """Peak memory (bytes) of one optimisation step on a ``batch`` of ``hw`` = (h, w) images."""
    h, w = hw
    depth = CONV_LAYERS.index(deepest(layers)) + 1
    activations = sum(
        (h / STRIDE[name]) * (w / STRIDE[name]) * CHANNELS[name] for name in CONV_LAYERS[:depth]
    )
    return BASE_BYTES + batch * activations * 4 * COPIES_PER_ACTIVATION


def available_bytes() -> float:
    """Memory the OS says is available now (MemAvailable), or 8 GiB if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def check_memory(hw, layers, batch: int = 1, *, fix: str | None = None) -> float:
    """Raise ConfigError if the run would not fit in memory; return the estimate (bytes).

    The message names the largest long side (pixels) that fits, so the user
    can rerun at once; ``fix`` replaces its advice ("{side}" is filled in).
    Set ``NST_MEMORY_LIMIT_GB`` to use a different budget than what is available.
    """
    need = estimate_bytes(hw, layers, batch)
    budget = memory_budget()
    if need > budget:
        h, w = hw
        side = largest_side(hw, layers, budget, batch)
        raise ConfigError(f"a {w}x{h} px run needs {_refusal(need, budget, side, fix)}")
    return need


#: The advice when a size is refused: the largest long side that fits ("{side}").
SIZE_FIX = "use --size {side} or less (size={side} in Python); memory grows with the pixel count"


def _refusal(need: float, budget: float, side: int, fix: str | None) -> str:
    """The end of a refusal line: "about X GiB but only Y GiB is available: <advice>", the advice
    naming ``side`` (the largest long side that fits) through ``fix`` (default :data:`SIZE_FIX`)."""
    if side < 16:
        advice = "free some memory (close other programs) or set NST_MEMORY_LIMIT_GB"
    else:
        advice = (fix or SIZE_FIX).format(side=side)
    return f"about {need / 2**30:.1f} GiB but only {budget / 2**30:.1f} GiB is available: {advice}"


def memory_budget() -> float:
    """Bytes a run may use: ``NST_MEMORY_LIMIT_GB`` if set, else 90% of what is available now."""
    limit = os.environ.get("NST_MEMORY_LIMIT_GB")
    if limit:
        try:
            return float(limit) * 2**30
        except ValueError:
            raise ConfigError(
                f"NST_MEMORY_LIMIT_GB={limit!r} is not a number: set it to e.g. 8 or unset it"
            ) from None
    return 0.9 * available_bytes()


def largest_side(hw, layers, budget: float, batch: int = 1) -> int:
    """Largest long side (pixels) of an image shaped like ``hw`` whose run fits in ``budget`` bytes."""
    # the search starts at the image's own long side: it may be smaller than what fits
    return _largest(lambda side: estimate_bytes(scaled_size(hw, side), layers, batch) <= budget, max(hw))


def _largest(fits, start: int, cap: int = 2**20) -> int:
    """Largest n >= 0 with ``fits(n)`` (``fits`` monotone: true up to some n, false beyond), searched
    by doubling from ``start`` then bisecting; ``cap`` bounds the doubling."""
    lo, hi = 0, max(int(start), 1)
    while fits(hi):
        lo, hi = hi, hi * 2
        if hi > cap:
            return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


# ----------------------------------------------------------------------------- the fast path
# ``nst_tf.fast``: Johnson et al.'s transformer (``build_transformer(width, res_blocks)``) stylising
# one image per forward pass, or trained with VGG19's perceptual loss. Measured on CPU (peak RSS
# above the warmed-up process, benchmarks-style, session of issue #25):
#   stylise 1024 px: width 4: 27, width 16: 70, width 32: 102 float32 values per pixel;
#   train 256 px crops, batch 4 (the transformer alone): width 4: 247, width 16: 845 values per pixel.
#: Stylising: float32 values per pixel alive at the peak of one forward pass, fixed + per channel of
#: the first layer (the full-resolution layers dominate: activations are freed as the pass goes on).
STYLIZE_VALUES_FIXED = 24
STYLIZE_VALUES_PER_WIDTH = 4
#: Training: values per pixel of the transformer's activations that are not tied to its width
#: (input, noise, RGB head, loss terms); its other activations are counted layer by layer.
TRAIN_VALUES_FIXED = 30


def transformer_values(hw, width: int, res_blocks: int) -> float:
    """float32 values of every activation of one pass of ``build_transformer(width, res_blocks)`` on
    one (h, w) image: encoder at 1, 1/2 and 1/4 resolution (conv, norm, ReLU), residual blocks
    (6 tensors of 4 x width channels each at 1/4), decoder (resize and conv back to full)."""
    h, w = hw
    per_pixel = width * (3 + 6 / 4 + 12 / 16 + (4 + 6) / 4 + (2 + 3)) + res_blocks * width * 24 / 16
    return h * w * (TRAIN_VALUES_FIXED + per_pixel)


def estimate_transformer_bytes(
    hw, width: int, res_blocks: int = 5, batch: int = 1, *, training: bool = False, layers=None
) -> float:
    """Peak memory (bytes) of the fast path on a ``batch`` of ``hw`` = (h, w) images.

    Stylising (``training=False``): one forward pass of the transformer. Training: forward and
    backward through the transformer (every activation kept, ``COPIES_PER_ACTIVATION`` copies), plus
    VGG19 up to the deepest of ``layers`` on 2 x ``batch`` images (the photos and the outputs, one
    batch: :func:`estimate_bytes`)."""
    h, w = hw
    if not training:
        return BASE_BYTES + batch * h * w * 4 * (STYLIZE_VALUES_FIXED + STYLIZE_VALUES_PER_WIDTH * width)
    if not layers:
        raise ConfigError("estimate_transformer_bytes(training=True) needs the VGG19 layers of the loss")
    net = batch * transformer_values(hw, width, res_blocks) * 4 * COPIES_PER_ACTIVATION
    return net + estimate_bytes(hw, layers, 2 * batch)


def largest_stylize_batch(hw, width: int, budget: float | None = None) -> int:
    """How many ``hw`` images one forward pass of a width-``width`` transformer may take (0: not one)."""
    budget = memory_budget() if budget is None else budget
    return _largest(lambda n: estimate_transformer_bytes(hw, width, batch=n) <= budget, 1, cap=1 << 16)


def check_stylize_memory(hw, width: int, batch: int = 1, *, fix: str | None = None) -> float:
    """Raise ConfigError if stylising a ``batch`` of ``hw`` images with a width-``width`` transformer
    would not fit in memory (``memory_budget``); return the estimate (bytes). The message names the
    largest long side that fits; ``fix`` replaces its advice ("{side}" is filled in)."""
    need = estimate_transformer_bytes(hw, width, batch=batch)
    budget = memory_budget()
    if need <= budget:
        return need
    h, w = hw
    side = _largest(
        lambda s: estimate_transformer_bytes(scaled_size(hw, s), width, batch=batch) <= budget, max(h, w)
    )
    what = f"a {w}x{h} px image" if batch == 1 else f"a batch of {batch} {w}x{h} px images"
    raise ConfigError(f"stylising {what} needs {_refusal(need, budget, side, fix)}")


def check_train_memory(size: int, batch: int, width: int, res_blocks: int, layers) -> float:
    """Raise ConfigError if a training step on ``batch`` crops of ``size`` x ``size`` px would not fit in
    memory; return the estimate (bytes). The message names the largest ``--batch-size`` that fits at
    this size, or, if not even one crop does, the largest ``--size``."""
    layers = list(layers)

    def need(s, b):
        return estimate_transformer_bytes((s, s), width, res_blocks, b, training=True, layers=layers)

    budget = memory_budget()
    total = need(size, batch)
    if total <= budget:
        return total
    most = _largest(lambda b: need(size, b) <= budget, batch, cap=1 << 16)
    side = _largest(lambda s: need(s, 1) <= budget, size)
    if most >= 1:
        advice = f"use --batch-size {most} or less (batch_size={most} in Python)"
    elif side >= 32:
        advice = f"use --size {side} or less with --batch-size 1 (size={side}, batch_size=1 in Python)"
    else:
        advice = "free some memory (close other programs) or set NST_MEMORY_LIMIT_GB"
    raise ConfigError(
        f"training on {batch} crop(s) of {size}x{size} px per step (width {width}, {res_blocks} residual "
        f"blocks) needs about {total / 2**30:.1f} GiB but only {budget / 2**30:.1f} GiB is available: {advice}"
    )
