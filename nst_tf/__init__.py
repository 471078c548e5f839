"""nst_tf: neural style transfer (Gatys et al.) in TensorFlow/Keras, for teaching.

Modules, in the order the notebooks meet them: ``images`` (I/O, VGG pre/
deprocessing), ``models`` (VGG19 feature extractor), ``losses`` (Gram, content,
style, total variation), ``optimize`` (the GradientTape / L-BFGS loop),
``transfer`` (high-level API), ``plotting``, ``animation``, ``color``,
``metrics``, ``cli``. Import them explicitly: ``from nst_tf import losses``.
"""

import os as _os

from nst_tf._version import __version__

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up lines (CUDA probing, oneDNN notes) hidden.

    They are written straight to file descriptor 2 and no environment variable
    silences them in TF 2.21, so stderr is pointed at /dev/null for the import
    and the device probe only. Python errors still propagate. Set
    NST_VERBOSE_TF=1 to see them.
    """
    if _os.environ.get("NST_VERBOSE_TF") == "1":
        import tensorflow  # noqa: F401

        return
    import sys

    try:
        sys.stderr.flush()
        saved = _os.dup(2)
    except (OSError, ValueError):  # no real stderr (some notebook frontends)
        import tensorflow  # noqa: F401

        return
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


_import_tensorflow_quietly()
if _os.environ.get("NST_VERBOSE_TF") != "1":
    # every stage and every run compiles its own step function on purpose; TF's "retracing"
    # warnings about that would only alarm students
    import tensorflow as _tf

    _tf.get_logger().setLevel("ERROR")

from nst_tf.config import Config  # noqa: E402
from nst_tf.transfer import reconstruct_content, synthesize_texture, transfer_style  # noqa: E402

__all__ = ["Config", "reconstruct_content", "synthesize_texture", "transfer_style", "__version__"]
