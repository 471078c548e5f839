"""nst_tf: neural style transfer (Gatys et al.) in TensorFlow/Keras, for teaching.

Modules, in the order the notebooks meet them: ``images`` (I/O, VGG pre/
deprocessing), ``models`` (VGG19 feature extractor), ``losses`` (Gram, content,
style, total variation), ``optimize`` (the GradientTape / L-BFGS loop),
``transfer`` (high-level API), ``plotting``, ``animation``, ``color``,
``metrics``, ``cli``. Import them explicitly: ``from nst_tf import losses``.
"""

__version__ = "0.1.0"

import os as _os

# Quiet TensorFlow's C++ start-up chatter (CUDA probing on CPU machines); users can override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nst_tf.config import Config  # noqa: E402
from nst_tf.transfer import reconstruct_content, synthesize_texture, transfer_style  # noqa: E402

__all__ = ["Config", "reconstruct_content", "synthesize_texture", "transfer_style", "__version__"]
