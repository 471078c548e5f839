"""``import utils`` from ``notebooks/``: the repository root's ``utils.py``, loaded from there.

Jupyter puts the notebook's folder on ``sys.path``, not the repository root, so
this file makes the same names importable from the notebooks (one source: the
root ``utils.py``; ``tests/test_utils.py`` checks both).
"""

import runpy
from pathlib import Path

_root = runpy.run_path(str(Path(__file__).resolve().parent.parent / "utils.py"))
__all__ = list(_root["__all__"])
globals().update({name: _root[name] for name in __all__})
