"""Shared fixtures: real (tiny) images and the real VGG19 weights, resolved once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_output(tmp_path, monkeypatch):
    """Runs in tests write into a temporary data/output, never the repository's."""
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "output"))


@pytest.fixture(scope="session")
def vgg_weights():
    """The resolved ImageNet VGG19 weights (dict) - the same files users get."""
    from nst_tf.weights import load_vgg19_weights

    weights, _ = load_vgg19_weights()
    return weights


@pytest.fixture(scope="session")
def content_small():
    from nst_tf.images import load_image

    return load_image(ROOT / "data/src/content/chelsea.jpg", long_side=64)


@pytest.fixture(scope="session")
def style_small():
    from nst_tf.images import load_image

    return load_image(ROOT / "data/src/style/hubble_deep_field.jpg", long_side=64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def run_cli(capsys, *argv):
    """``python -m nst_tf ARGV`` in-process: (exit code, stdout, stderr)."""
    from nst_tf.cli import main as _cli_main

    try:
        code = _cli_main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err
