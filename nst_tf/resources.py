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
        if side < 16:
            advice = "free some memory (close other programs) or set NST_MEMORY_LIMIT_GB"
        else:
            advice = (
                fix or "use --size {side} or less (size={side} in Python); memory grows with the pixel count"
            )
            advice = advice.format(side=side)
        raise ConfigError(
            f"a {w}x{h} px run needs about {need / 2**30:.1f} GiB but only {budget / 2**30:.1f} GiB "
            f"is available: {advice}"
        )
    return need


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
    h, w = hw
    long = max(h, w)

    def fits(side):
        return estimate_bytes(scaled_size((h, w), side), layers, batch) <= budget

    lo, hi = 0, max(long, 1)
    while fits(hi):  # the image itself may be smaller than what fits
        lo, hi = hi, hi * 2
        if hi > 2**20:
            return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
