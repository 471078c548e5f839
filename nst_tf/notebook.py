"""Setup shared by the notebooks: quick/quality mode, seed, versions, figure style.

Each notebook's Setup section calls ``setup()`` once. ``NST_QUICK=1`` (set by
the test suite) switches every notebook to tiny images and few steps: it proves
the notebook runs, while the default quality mode makes the beautiful figures.
"""

from __future__ import annotations

import os
import platform
import sys


def quick_mode() -> bool:
    """True when the environment asks for the quick mode (``NST_QUICK=1``)."""
    return os.environ.get("NST_QUICK", "0") not in ("0", "", "false", "False")


def pick(quality, quick):
    """``quality`` normally, ``quick`` under ``NST_QUICK=1``: for the parameters cell."""
    return quick if quick_mode() else quality


def setup(seed: int = 0, *, verbose: bool = True) -> bool:
    """Seed everything, apply the figure style, print versions; return quick mode on/off."""
    import keras
    import numpy as np
    import tensorflow as tf

    import nst_tf
    from nst_tf.plotting import use_style

    keras.utils.set_random_seed(seed)
    use_style()
    quick = quick_mode()
    if verbose:
        print(
            f"nst_tf {nst_tf.__version__} | TensorFlow {tf.__version__} | Keras {keras.__version__} | "
            f"NumPy {np.__version__} | Python {sys.version.split()[0]} | {platform.machine()}"
        )
        print("mode:", "QUICK (tiny images, few steps: proves the notebook runs)" if quick else "quality")
    return quick


def in_colab() -> bool:
    return "google.colab" in sys.modules
