"""nst_tf: neural style transfer (Gatys et al.) in TensorFlow/Keras, for teaching.

Modules, in the order the notebooks meet them: ``images`` (I/O, VGG pre/
deprocessing), ``models`` (VGG19 feature extractor; its layer table is
``vgg19``), ``losses`` (Gram, content, style, total variation), ``optimize``
(the GradientTape / L-BFGS loop; the L-BFGS-B driver is ``lbfgsb``),
``transfer`` (high-level API), ``plotting``, ``animation``, ``color``,
``masks`` (spatial control), ``metrics``, then ``networks`` / ``training`` / ``fast`` and
``datasets`` (05), ``arbitrary`` (06), ``gan`` (07), and ``cli``. Import them explicitly:
``from nst_tf import losses``.

Importing ``nst_tf`` is cheap: it does not import TensorFlow. It arranges that
TensorFlow, whenever something imports it later in this process, is imported
with its C++ start-up messages hidden; ``Config`` and the ``transfer_style``
family load on first use. So ``python -m nst_tf --help`` answers at once, and
the notebooks' ``import nst_tf`` first still keeps their output clean.
"""

import importlib.abc as _abc
import importlib.util as _util
import os as _os
import sys as _sys

from nst_tf._version import __version__

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["Config", "reconstruct_content", "synthesize_texture", "transfer_style", "__version__"]
_TRANSFER_NAMES = ("reconstruct_content", "synthesize_texture", "transfer_style")


def __getattr__(name):
    """The public names, imported on first use (PEP 562): they need TensorFlow, ``--help`` does not."""
    if name == "Config":
        from nst_tf.config import Config

        return Config
    if name in _TRANSFER_NAMES:
        from nst_tf import transfer

        return getattr(transfer, name)
    raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _StderrHidden:
    """File descriptor 2 pointed at /dev/null while active (a no-op where there is no real stderr)."""

    def __enter__(self):
        try:
            _sys.stderr.flush()
            self.saved = _os.dup(2)
        except (OSError, ValueError):  # no real stderr (some notebook frontends)
            self.saved = None
            return self
        self.devnull = _os.open(_os.devnull, _os.O_WRONLY)
        _os.dup2(self.devnull, 2)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            _os.dup2(self.saved, 2)
            _os.close(self.saved)
            _os.close(self.devnull)
        return False


class _QuietTensorFlowLoader(_abc.Loader):
    """TensorFlow's own loader, run with its C++ start-up lines (CUDA probing, oneDNN notes) hidden.

    They are written straight to file descriptor 2 and no environment variable
    silences them in TF 2.21, so stderr is pointed at /dev/null for the import
    and the device probe only. Python errors still propagate. Set
    NST_VERBOSE_TF=1 to see them.
    """

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its own loader
        with _StderrHidden():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the device probe prints too
        _quiet_logger(module)


class _QuietTensorFlowFinder(_abc.MetaPathFinder):
    """Finds nothing itself: hands the first ``import tensorflow`` to ``_QuietTensorFlowLoader``."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _sys.meta_path.remove(self)  # once is enough, and the lookup below must not come back here
        spec = _util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietTensorFlowLoader(spec.loader)
        return spec


def _quiet_logger(tf):
    # every stage and every run compiles its own step function on purpose; TF's "retracing"
    # warnings about that would only alarm students
    tf.get_logger().setLevel("ERROR")


if _os.environ.get("NST_VERBOSE_TF") != "1":
    if "tensorflow" in _sys.modules:
        _quiet_logger(_sys.modules["tensorflow"])
    elif not any(isinstance(f, _QuietTensorFlowFinder) for f in _sys.meta_path):
        _sys.meta_path.insert(0, _QuietTensorFlowFinder())
