"""The few helpers notebook readers know by name, re-exported from nst_tf.

``from utils import deprocess_image, save_animation`` works from the
repository root and from ``notebooks/`` (through ``notebooks/utils.py``, which
loads this file; ``tests/test_utils.py`` checks both).
"""

from nst_tf.animation import save_animation
from nst_tf.images import deprocess_image, load_image, preprocess, save_image

__all__ = ["deprocess_image", "load_image", "preprocess", "save_animation", "save_image"]
