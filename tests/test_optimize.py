"""The optimisers themselves, on problems whose answer is known, and on a real 64 px transfer."""

import numpy as np
import pytest
from conftest import quadratic_objective

from nst_tf import Config, transfer_style
from nst_tf.optimize import LOWER, UPPER, optimize


@pytest.mark.parametrize("side", [16, 128])
def test_lbfgs_solves_a_mean_based_quadratic_in_a_few_steps_at_any_size(side, rng):
    target = rng.uniform(LOWER + 20, UPPER - 20, (1, side, side, 3)).astype(np.float32)
    result = optimize(quadratic_objective(target), np.zeros_like(target), steps=5, progress=False)
    start = float(np.mean(target**2))
    assert result.loss < 1e-3 * start, f"loss {result.loss:.4g} from {start:.4g}"
    assert result.evaluations <= 10


@pytest.mark.slow
def test_lbfgs_on_scaled_pixels_beats_raw_pixels(monkeypatch, content_small, style_small):
    """Issue #4: L-BFGS works on pixels / (LBFGS_SCALE * sqrt(n)).

    On raw pixels scipy's first step moves each pixel by ~1/sqrt(n) grey levels and the early
    curvature pairs are poor; the same 10 steps then end at a clearly higher loss.
    """
    from nst_tf import optimize as opt

    cfg = Config(size=64, steps=10, pyramid=(), seed=0)
    final = {}
    n_values = content_small.size  # 64 px image: its pixel count x 3 channels
    for name, scale in (("scaled", opt.LBFGS_SCALE), ("raw", 1 / np.sqrt(n_values))):
        monkeypatch.setattr(opt, "LBFGS_SCALE", scale)
        final[name] = transfer_style(content_small, style_small, cfg, progress=False).history.loss[-1]
    assert final["scaled"] < 0.9 * final["raw"], final


def test_lbfgs_keeps_pixels_inside_the_valid_range(rng):
    target = rng.uniform(-500, 500, (1, 8, 8, 3)).astype(np.float32)  # partly unreachable
    result = optimize(quadratic_objective(target), np.zeros_like(target), steps=10, progress=False)
    assert np.all(result.image >= np.asarray(LOWER) - 1e-3) and np.all(
        result.image <= np.asarray(UPPER) + 1e-3
    )
    inside = (target > np.asarray(LOWER)) & (target < np.asarray(UPPER))
    np.testing.assert_allclose(result.image[inside], target[inside], atol=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisers_halve_a_real_transfer_loss_in_20_steps(optimizer, content_small, style_small):
    """Regression: Adam with the TF tutorial's epsilon (1e-1) hardly moved on mean-based losses."""
    cfg = Config(
        size=64,
        steps=20,
        pyramid=(),
        init="noise",
        seed=0,
        optimizer=optimizer,
        learning_rate=8.0 if optimizer == "adam" else None,
    )
    result = transfer_style(content_small, style_small, cfg, progress=False)
    loss = result.history.loss
    assert loss[-1] < 0.5 * loss[0], f"{optimizer}: {loss[0]:.4g} -> {loss[-1]:.4g}"


def test_lbfgs_measures_the_curvature_and_a_given_one_sizes_the_first_step(rng):
    """Issue #16: ``OptimizeResult.gamma`` is s.y / y.y per pixel value, and ``optimize(gamma=...)``
    makes the first step that long. For mean((x - t)^2) the Hessian is 2/n per value: gamma = 1/2,
    and a first step of that length lands on the minimum (one trial evaluation after the start)."""
    target = rng.uniform(LOWER + 20, UPPER - 20, (1, 24, 24, 3)).astype(np.float32)
    plain = optimize(quadratic_objective(target), np.zeros_like(target), steps=4, progress=False)
    assert plain.gamma == pytest.approx(0.5, rel=1e-3)
    sized = optimize(quadratic_objective(target), np.zeros_like(target), steps=1, progress=False, gamma=0.5)
    assert sized.history.evaluations == [2]  # the start, then the step that solves it
    assert sized.loss < 1e-6 * float(np.mean(target**2))
    unsized = optimize(quadratic_objective(target), np.zeros_like(target), steps=1, progress=False)
    assert unsized.history.evaluations[0] > 2  # a 2-grey-level first step: the line search extrapolates


def test_a_coarse_to_fine_run_traces_its_loss_once(content_small, style_small):
    """Issue #16 item 2: the compiled value-and-gradient is shared by every stage (one trace for
    three sizes), where a function per stage retraced VGG19 at each size."""
    from nst_tf import optimize as opt

    opt._COMPILED.clear()
    transfer_style(
        content_small, style_small, size=64, pyramid=((0.5, 2), (0.75, 2)), steps=2, progress=False
    )
    (functions,) = [f for per_extractor in opt._COMPILED.values() for f in per_extractor.values()] or [None]
    assert functions is not None and functions.experimental_get_tracing_count() == 1
