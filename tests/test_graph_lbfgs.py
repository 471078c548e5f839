"""nst_tf.graph_lbfgs (issue #16 item 4): the in-graph L-BFGS, the GPU path of ``optimizer="lbfgs"``.

It runs here on the CPU (``NST_LBFGS=graph``): the same problems as scipy's L-BFGS-B, the same
answers on problems with a known minimum, bounds kept, and the same stops."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import quadratic_objective

from nst_tf import graph_lbfgs, lbfgsb
from nst_tf.errors import ConfigError
from nst_tf.optimize import LOWER, UPPER, optimize


def _quadratic(h, b):
    """``value_and_grad`` of ``x.h.x / 2 - b.x`` (float64)."""
    h, b = tf.constant(h, tf.float64), tf.constant(b, tf.float64)

    @tf.function
    def value_and_grad(x):
        hx = tf.linalg.matvec(h, x)
        return 0.5 * tf.tensordot(x, hx, 1) - tf.tensordot(b, x, 1), hx - b

    return value_and_grad


def _separable(rng, n):
    """``sum a_i (x_i - c_i)^2 / 2`` with curvatures a from 1 to 100: the box solution is ``clip(c)``."""
    a, c = np.geomspace(1, 100, n), rng.uniform(-2, 2, n)
    return _quadratic(np.diag(a), a * c), c


@pytest.mark.parametrize("box", [(-3.0, 3.0), (-1.0, 0.5)])
def test_quadratic_minimum_is_found_inside_the_box_or_projected_onto_it(box, rng):
    """With the minimum ``c`` inside [-3, 3] the answer is ``c``; with the box [-1, 0.5] about half
    of ``c`` lies outside, and the answer of a separable problem is then ``clip(c)``."""
    n = 200
    value_and_grad, c = _separable(rng, n)
    lower, upper = (tf.constant(v, tf.float64) for v in box)
    result = graph_lbfgs.minimize(
        value_and_grad, tf.zeros(n, tf.float64), lower, upper, maxiter=100, maxfun=300
    )
    expected = np.clip(c, *box)
    assert np.abs(result.x.numpy() - expected).max() < 1e-6, result
    assert result.iterations > 5 and result.stopped in ("maxiter", "converged", "no progress")
    if box == (-1.0, 0.5):
        assert np.mean(c < -1) + np.mean(c > 0.5) > 0.3  # many bounds are active at the answer


def test_coupled_quadratic_with_all_kinds_of_bounds_ends_where_scipy_does():
    """The problem ``nst_tf.lbfgsb`` checks scipy on: non-separable, some variables without a lower or
    upper bound (here +-1e30), its minimum partly outside the box. Both solvers run to convergence."""
    n = 300
    fun, lower, upper = lbfgsb.bounded_quadratic(n, seed=1)
    rng = np.random.default_rng(1)  # the same draws as bounded_quadratic
    a = rng.normal(size=(n, n))
    value_and_grad = _quadratic(a @ a.T / n + np.eye(n), rng.normal(size=n) * 4)
    _, iterates = lbfgsb.trace(lbfgsb._direct, fun, np.zeros(n), lower, upper, maxiter=200, maxfun=400, maxcor=20, maxls=20)  # fmt: skip
    low, up = (tf.constant(np.nan_to_num(v, posinf=1e30, neginf=-1e30)) for v in (lower, upper))
    result = graph_lbfgs.minimize(value_and_grad, tf.zeros(n, tf.float64), low, up, maxiter=40, maxfun=400)
    assert np.abs(result.x.numpy() - iterates[-1]).max() < 1e-6
    assert result.loss == pytest.approx(fun(iterates[-1])[0], rel=1e-12)
    assert np.any(result.x.numpy() == upper) and np.any(result.x.numpy() == lower)


def test_variables_at_a_bound_pushed_outward_never_move(rng):
    """L-BFGS-B's promise: a variable at a bound whose gradient points out of the box stays put,
    in every iterate, not just at the end (float32, the dtype the image uses)."""
    n = 100
    value_and_grad, c = _separable(rng, n)
    c32 = tf.constant(c, tf.float32)

    @tf.function
    def value_and_grad32(x):
        f, g = value_and_grad(tf.cast(x, tf.float64))
        return tf.cast(f, tf.float32), tf.cast(g, tf.float32)

    x0 = np.clip(c, -0.5, 0.5).astype(np.float32)  # starts at the bound wherever c is outside
    pinned = np.abs(c) > 0.5
    iterates = []
    result = graph_lbfgs.minimize(
        value_and_grad32, tf.constant(x0), -0.5, 0.5, maxiter=15, maxfun=50,
        callback=lambda x, loss, evaluations, aux: iterates.append(x.numpy()),
    )  # fmt: skip
    assert len(iterates) == result.iterations >= 5 and pinned.sum() > 20
    for x in iterates:
        np.testing.assert_array_equal(x[pinned], x0[pinned])
    np.testing.assert_allclose(iterates[-1], np.clip(c32.numpy(), -0.5, 0.5), atol=1e-4)


def test_maxfun_stops_like_scipy(rng):
    """Stop once more than ``maxfun`` evaluations were spent, checked after each iteration."""
    value_and_grad, _ = _separable(rng, 50)
    result = graph_lbfgs.minimize(value_and_grad, tf.zeros(50, tf.float64), -3.0, 3.0, maxiter=100, maxfun=6)
    assert result.stopped == "maxfun" and result.evaluations == 7 and result.iterations < 100


def test_pixels_stay_inside_the_valid_range_when_the_target_is_outside(monkeypatch, rng):
    """A target partly beyond 0-255: pixels end exactly at the bound there, at the target elsewhere;
    history, evaluations, frames and the callback are filled as on the scipy path."""
    monkeypatch.setenv("NST_LBFGS", "graph")
    target = rng.uniform(-500, 500, (1, 8, 8, 3)).astype(np.float32)
    seen = []
    result = optimize(
        quadratic_objective(target), np.zeros_like(target), steps=10, progress=False, frame_every=5,
        callback=lambda step, loss, x: seen.append((step, x.shape)),
    )  # fmt: skip
    assert result.driver == graph_lbfgs.NAME and result.stopped == "completed"
    lower, upper = np.broadcast_to(LOWER, target.shape), np.broadcast_to(UPPER, target.shape)
    assert np.all(result.image >= lower) and np.all(result.image <= upper)
    np.testing.assert_allclose(result.image, np.clip(target, lower, upper), atol=0.5)
    below, above = target < lower, target > upper
    assert below.any() and above.any()
    np.testing.assert_allclose(result.image[below], lower[below], rtol=1e-6)
    np.testing.assert_allclose(result.image[above], upper[above], rtol=1e-6)
    assert result.history.step == list(range(1, 11)) and seen == [(k, target.shape) for k in range(1, 11)]
    assert result.history.evaluations[-1] == result.evaluations <= 16 and len(result.frames) == 3
    assert result.loss == result.history.loss[-1] == min(result.history.loss)


def _tiny_transfer(vgg_weights, content_small, style_small):
    """A real transfer objective at 32 x 32 on shallow layers (so that the test takes seconds)."""
    from nst_tf.images import preprocess, resize_image
    from nst_tf.losses import gram_matrix
    from nst_tf.models import build_extractor
    from nst_tf.optimize import make_objective

    content, style = (resize_image(image, size=(32, 32)) for image in (content_small, style_small))
    style_layers = {"block1_conv1": 1.0, "block2_conv1": 1.0, "block3_conv1": 1.0}
    content_layers = {"block2_conv2": 1.0}
    extractor = build_extractor([*style_layers, *content_layers], weights=vgg_weights)
    fs, fc = extractor(preprocess(style)), extractor(preprocess(content))
    objective = make_objective(
        extractor,
        content_targets={k: fc[k] for k in content_layers},
        style_targets={k: gram_matrix(fs[k]) for k in style_layers},
        content_layers=content_layers,
        style_layers=style_layers,
    )
    noise = np.random.default_rng(0).normal(0, 20, (1, 32, 32, 3)).astype(np.float32)
    return objective, np.asarray(preprocess(content)) + noise


@pytest.mark.slow
def test_graph_path_gives_the_scipy_paths_result_on_a_tiny_transfer(monkeypatch, vgg_weights, content_small, style_small):  # fmt: skip
    """GPU path (NST_LBFGS=graph) vs CPU path (scipy's L-BFGS-B) on the same 32 px problem, 20 steps.

    Measured: the loss falls from 2.13 to 0.620 (scipy) and 0.630 (graph), 21 evaluations each; step
    1 agrees to 4 digits (both try the full gradient step first, then backtrack), and the mean
    pixel difference at the end is 4.5 grey levels. Not identical: the directions differ (active
    set vs generalized Cauchy point), the line searches differ (Armijo backtracking vs More-Thuente)
    and the arithmetic differs (float32 vs float64), and on a non-convex loss small differences
    grow. Tolerances: final loss within 5 % of scipy's, images within 10 grey levels on average
    (of 255), both at most 40 % of the starting loss.
    """
    objective, x0 = _tiny_transfer(vgg_weights, content_small, style_small)
    start = float(objective(x0)[0][0])
    results = {}
    for name in ("scipy", "graph"):
        monkeypatch.setenv("NST_LBFGS", name)
        results[name] = optimize(objective, x0, steps=20, progress=False)
    scipy, graph = results["scipy"], results["graph"]
    assert scipy.driver == lbfgsb.driver() and graph.driver == graph_lbfgs.NAME
    assert scipy.loss < 0.4 * start and graph.loss < 0.4 * start, (start, scipy.loss, graph.loss)
    assert graph.loss == pytest.approx(scipy.loss, rel=0.05)
    assert graph.history.loss[0] == pytest.approx(scipy.history.loss[0], rel=1e-3)
    assert np.abs(graph.image - scipy.image).mean() < 10
    assert abs(graph.evaluations - scipy.evaluations) <= 5
    assert np.all(graph.image >= LOWER) and np.all(graph.image <= UPPER)
    assert set(graph.history.terms) == set(scipy.history.terms) == {"content", "style"}


def test_non_finite_loss_stops_and_keeps_the_last_finite_iterate(monkeypatch, rng):
    """NaN from the 4th evaluation: the run stops with "non-finite loss" and returns the last
    accepted (finite) iterate, as the scipy path returns the best image so far."""
    monkeypatch.setenv("NST_LBFGS", "graph")
    target = rng.uniform(LOWER + 20, UPPER - 20, (1, 8, 8, 3)).astype(np.float32)
    clean = quadratic_objective(target)
    calls = tf.Variable(0)

    def poisoned(x):
        total, terms = clean(x)
        calls.assign_add(1)
        return tf.where(calls >= 4, tf.constant(np.nan, tf.float32), total), terms

    result = optimize(poisoned, np.zeros_like(target), steps=10, progress=False)
    assert result.stopped == "non-finite loss" and result.evaluations == 4
    assert 1 <= len(result.history.loss) < 3 and np.isfinite(result.history.loss).all()
    assert result.loss == result.history.loss[-1] and np.isfinite(result.image).all()
    assert float(clean(result.image)[0][0]) == pytest.approx(result.loss, rel=1e-5)


def test_non_finite_loss_at_the_start_keeps_the_start_image(monkeypatch):
    monkeypatch.setenv("NST_LBFGS", "graph")
    x0 = np.zeros((1, 4, 4, 3), np.float32)

    def infinite(x):
        total = tf.reduce_sum(x, axis=[1, 2, 3]) + np.inf
        return total, {"all": total}

    result = optimize(infinite, x0, steps=5, progress=False)
    assert result.stopped == "non-finite loss" and result.history.loss == [] and result.evaluations == 1
    np.testing.assert_array_equal(result.image, x0)


def test_driver_choice(monkeypatch):
    monkeypatch.delenv("NST_LBFGS", raising=False)
    assert graph_lbfgs.lbfgs_driver() == ("graph" if tf.config.list_physical_devices("GPU") else "scipy")
    monkeypatch.setenv("NST_LBFGS", "graph")
    assert graph_lbfgs.lbfgs_driver() == "graph"
    monkeypatch.setenv("NST_LBFGS", "scipy")
    assert graph_lbfgs.lbfgs_driver() == "scipy"


def test_bad_driver_name_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setenv("NST_LBFGS", "gpu")
    with pytest.raises(ConfigError, match="NST_LBFGS") as error:
        graph_lbfgs.lbfgs_driver()
    assert "\n" not in str(error.value) and "scipy" in str(error.value) and "graph" in str(error.value)
    x0 = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ConfigError, match="NST_LBFGS"):
        optimize(quadratic_objective(x0), x0, steps=2, progress=False)


def test_curvature_is_passed_on_between_stages(monkeypatch, rng):
    """``OptimizeResult.gamma`` (s.y / y.y per pixel value) from the graph path is the scipy path's,
    and given back (``optimize(gamma=...)``, as a coarse-to-fine run does) it makes the first trial
    the quasi-Newton step: on the mean squared distance (Hessian 2/n, so gamma = 1/2) that step lands
    on the target in one evaluation after the one at the start."""
    monkeypatch.setenv("NST_LBFGS", "graph")
    target = rng.uniform(LOWER + 20, UPPER - 20, (1, 8, 8, 3)).astype(np.float32)
    objective = quadratic_objective(target)
    x0 = np.clip(target + rng.normal(0, 10, target.shape), LOWER, UPPER).astype(np.float32)
    graph = optimize(objective, x0, steps=2, progress=False)  # step 3 would start at round-off level
    monkeypatch.setenv("NST_LBFGS", "scipy")
    scipy = optimize(objective, x0, steps=2, progress=False)
    assert graph.gamma == pytest.approx(0.5, rel=1e-3) and scipy.gamma == pytest.approx(0.5, rel=1e-3)
    monkeypatch.setenv("NST_LBFGS", "graph")
    warm = optimize(objective, x0, steps=1, progress=False, gamma=graph.gamma)
    assert warm.evaluations == 2 and warm.loss < 1e-6 * float(objective(x0)[0][0])
