"""The speed study's reparametrisations (issue #16): the pixels come back exactly."""

import numpy as np
import pytest

from benchmarks.speed_study import Reparam
from nst_tf.images import deprocess, preprocess


@pytest.mark.parametrize("kind", ["colour", "fourier", "laplacian"])
@pytest.mark.parametrize("hw", [(48, 64), (37, 50)])
def test_a_reparametrisation_round_trips_the_pixels(kind, hw, content_small):
    """params -> pixels gives back the image: the same uint8 pixels, and within 1e-3 grey levels
    as floats (float32 FFTs and 3x3 inverses are not bit-exact; the Laplacian one is)."""
    from nst_tf.images import resize_image

    image = np.round(resize_image(content_small, size=hw))
    x = preprocess(image)
    reparam = Reparam(kind, hw)
    back = reparam.pixels(reparam.params(x)).numpy()
    assert back.shape == (1, *hw, 3)
    assert np.max(np.abs(back - x.numpy())) < 1e-3
    np.testing.assert_array_equal(np.round(deprocess(back)).astype(np.uint8), image.astype(np.uint8))
    if kind == "laplacian":
        np.testing.assert_array_equal(back, x.numpy())


@pytest.mark.parametrize("kind", ["colour", "fourier", "laplacian"])
def test_a_reparametrisation_is_linear_and_not_the_identity(kind, rng):
    """Each is a change of variables (linear, so L-BFGS sees a preconditioned problem), not a no-op:
    a step along one variable moves many pixels (Fourier, Laplacian) or several channels (colour),
    where the identity would move exactly one value."""
    hw = (16, 24)
    reparam = Reparam(kind, hw)
    p = reparam.params(preprocess(rng.uniform(0, 255, (*hw, 3)).astype(np.float32)))
    q = reparam.params(preprocess(rng.uniform(0, 255, (*hw, 3)).astype(np.float32)))
    both = reparam.pixels(p + 2 * q).numpy()
    np.testing.assert_allclose(both, reparam.pixels(p).numpy() + 2 * reparam.pixels(q).numpy(), atol=1e-2)
    unit = np.zeros(p.shape[0], np.float32)
    unit[-1 if kind == "laplacian" else 1] = 1.0
    moved = np.count_nonzero(np.abs(reparam.pixels(unit).numpy()) > 1e-6)
    assert moved >= 2


def test_the_study_runs_in_quick_mode_and_reports_each_idea(tmp_path, monkeypatch):
    """``python -m benchmarks.speed_study --quick`` on bundled images: the reference and two ideas
    reach the reference's loss (or say they did not), with times and a table per pair."""
    import json

    from benchmarks import speed_study

    monkeypatch.delenv("PASTICHE_PYTHON", raising=False)
    (tmp_path / "no-paintings").mkdir()
    monkeypatch.setenv("NST_EXTRA_IMAGES", str(tmp_path / "no-paintings"))  # bundled images only
    speed_study.main(["--quick", "--out", str(tmp_path), "--only", "default,laplacian param"])
    data = json.loads((tmp_path / "speed_study.json").read_text())
    ((pair, result),) = data["pairs"].items()
    ideas = result["ours"]["ideas"]
    assert set(ideas) == {"single-scale", "default", "laplacian param"}
    assert ideas["single-scale"]["speedup_vs_single"] == 1.0
    # the default schedule reaches the single-scale reference's loss in the quick run: a time, not None
    assert ideas["default"]["time_s"] is not None and ideas["default"]["time_s"] > 0, ideas["default"]
    assert "skipped" in result["pastiche"]
    assert f"## {pair}" in (tmp_path / "speed_study.md").read_text()
