"""``import utils`` works from the repository root and from notebooks/, with the same functions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import utils
from nst_tf import animation, images
assert utils.deprocess_image is images.deprocess_image
assert utils.save_animation is animation.save_animation
assert sorted(utils.__all__) == sorted(n for n in utils.__all__ if callable(getattr(utils, n)))
print("OK", utils.__file__)
"""


@pytest.mark.parametrize("folder", [".", "notebooks"])
def test_import_utils(folder):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT / folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK") and (ROOT / folder / "utils.py").samefile(proc.stdout.split()[1])
