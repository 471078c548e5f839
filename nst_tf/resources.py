"""Memory estimates, so that a huge request is refused before it starts.

The estimate counts the float32 activations that one forward and backward
pass through VGG19 keeps alive (conv output, ReLU output and their gradients,
plus TensorFlow's scratch space), summed over the layers the run uses. It was
checked against measured peak memory in ``benchmarks/`` (see its results).
"""

from __future__ import annotations

import os

from nst_tf.errors import ConfigError
from nst_tf.models import CHANNELS, CONV_LAYERS, STRIDE, deepest

#: Live float32 copies per activation during forward + backward (measured, see benchmarks/).
COPIES_PER_ACTIVATION = 4.0
#: Fixed cost: TensorFlow runtime, VGG19 weights, Python (bytes).
BASE_BYTES = 1.5e9


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


def check_memory(hw, layers, batch: int = 1) -> float:
    """Raise ConfigError if the run would not fit in memory; return the estimate (bytes).

    Set ``NST_MEMORY_LIMIT_GB`` to use a different budget than what is available.
    """
    need = estimate_bytes(hw, layers, batch)
    limit = os.environ.get("NST_MEMORY_LIMIT_GB")
    # this process has already paid BASE_BYTES (TensorFlow, weights): only the rest must still fit
    budget = float(limit) * 2**30 if limit else 0.9 * available_bytes() + BASE_BYTES
    if need > budget:
        h, w = hw
        raise ConfigError(
            f"a {w}x{h} px run needs about {need / 2**30:.1f} GiB but only {budget / 2**30:.1f} GiB "
            "is available: lower --size (memory grows with the pixel count)"
        )
    return need
