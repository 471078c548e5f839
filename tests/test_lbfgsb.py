"""nst_tf.lbfgsb (issue #12.2): our L-BFGS-B driver loop takes exactly scipy's steps, its work
arrays are checked against setulb's documented sizes, and outside the verified scipy versions
(or when its self-check fails) scipy.optimize.minimize runs instead; every sidecar says which ran."""

import numpy as np
import pytest
from conftest import quadratic_objective

from nst_tf import lbfgsb
from nst_tf.optimize import LOWER, UPPER, optimize


@pytest.fixture
def fresh_driver(monkeypatch):
    """Forget this process's driver choice, so that a test can make it again (restored afterwards)."""
    monkeypatch.setattr(lbfgsb, "_DRIVER", None)


@pytest.mark.parametrize("maxiter, maxfun", [(15, 40), (30, 6)])
def test_own_driver_takes_exactly_scipys_steps(maxiter, maxfun):
    """Issue #4: our loop skips minimize's element-by-element bounds conversion (3.6 s of a 37 s
    512 px run) and must otherwise be the same algorithm: same iterates, same stopping on maxiter
    and on maxfun, with all four kinds of bounds."""
    assert lbfgsb.driver() == lbfgsb.DIRECT, "the private scipy driver no longer matches minimize"
    fun, lower, upper = lbfgsb.bounded_quadratic(300, seed=1)
    options = dict(maxiter=maxiter, maxfun=maxfun, maxcor=20, maxls=20)
    ours = lbfgsb.trace(lbfgsb._direct, fun, np.zeros(300), lower, upper, **options)
    scipy = lbfgsb.trace(lbfgsb._scipy, fun, np.zeros(300), lower, upper, **options)
    assert ours[0] == scipy[0]
    assert len(ours[1]) == len(scipy[1]) > 1
    for mine, theirs in zip(ours[1], scipy[1]):
        np.testing.assert_array_equal(mine, theirs)
    final = ours[1][-1]
    assert np.all(final >= lower) and np.all(final <= upper) and np.any(final == upper)


def test_scipy_versions_outside_the_verified_ones_use_minimize(monkeypatch, fresh_driver, rng):
    import scipy

    assert lbfgsb.scipy_verified(scipy.__version__), "requirements.txt pins a verified scipy"
    assert lbfgsb.scipy_verified("1.17.1") and not lbfgsb.scipy_verified("1.14.1")
    assert not lbfgsb.scipy_verified("2.0.0") and not lbfgsb.scipy_verified("1.1")
    target = rng.uniform(LOWER + 20, UPPER - 20, (1, 16, 16, 3)).astype(np.float32)
    fast = optimize(quadratic_objective(target), np.zeros_like(target), steps=4, progress=False)
    assert fast.driver == lbfgsb.DIRECT

    monkeypatch.setattr(lbfgsb, "_DRIVER", None)
    monkeypatch.setattr(scipy, "__version__", "1.99.0")

    def forbidden(*args, **kwargs):
        raise AssertionError("the own driver ran on an unverified scipy")

    monkeypatch.setattr(lbfgsb, "_direct", forbidden)
    slow = optimize(quadratic_objective(target), np.zeros_like(target), steps=4, progress=False)
    assert slow.driver == lbfgsb.driver() == lbfgsb.MINIMIZE
    assert slow.evaluations == fast.evaluations
    np.testing.assert_allclose(slow.history.loss, fast.history.loss, rtol=1e-6)
    np.testing.assert_array_equal(slow.image, fast.image)


def test_a_failing_self_check_uses_minimize(monkeypatch, fresh_driver):
    from scipy.optimize import _lbfgsb

    monkeypatch.setattr(_lbfgsb, "setulb", lambda *args: None)  # a changed private API: no progress
    assert lbfgsb.driver() == lbfgsb.MINIMIZE


@pytest.mark.parametrize("n, m", [(1, 1), (12, 5), (300, 20), (786_432, 20)])
def test_work_arrays_have_setulbs_documented_lengths(n, m):
    arrays = lbfgsb.workspace(n, m)
    # L-BFGS-B 3.0, setulb: wa has (2mmax + 5)nmax + 11mmax^2 + 8mmax doubles, iwa 3nmax integers
    assert arrays["wa"].size == (2 * m + 5) * n + 11 * m**2 + 8 * m and arrays["wa"].dtype == np.float64
    assert arrays["iwa"].size == 3 * n and arrays["iwa"].dtype == np.int32
    lbfgsb.check_workspace(n, m, arrays)


def test_short_or_mistyped_work_arrays_are_refused_before_setulb_runs(monkeypatch):
    from scipy.optimize import _lbfgsb

    arrays = lbfgsb.workspace(12, 5)
    for name, bad in (
        ("wa", arrays["wa"][:-1]),
        ("iwa", np.zeros(35, np.int32)),
        ("isave", np.zeros(44, np.int64)),
        ("dsave", np.zeros(58, np.float64)[::2]),  # right size, not contiguous
    ):
        with pytest.raises(RuntimeError, match=f"work array {name}.*setulb needs"):
            lbfgsb.check_workspace(12, 5, {**arrays, name: bad})

    real = lbfgsb.workspace

    def too_small(n, m):
        arrays = real(n, m)
        arrays["wa"] = arrays["wa"][: 2 * m * n]  # the v2.1 formula's mistakes are of this kind
        return arrays

    def forbidden(*args):
        raise AssertionError("setulb ran with a short work array")

    monkeypatch.setattr(lbfgsb, "workspace", too_small)
    monkeypatch.setattr(_lbfgsb, "setulb", forbidden)
    fun, lower, upper = lbfgsb.bounded_quadratic(12, seed=0)
    with pytest.raises(RuntimeError, match="work array wa"):
        lbfgsb._direct(
            fun, np.zeros(12), lower, upper, maxiter=3, maxfun=10, callback=None, maxcor=5, maxls=20
        )


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_every_sidecar_records_the_driver(optimizer, tmp_path, content_small, style_small):
    import json

    from nst_tf import transfer_style

    result = transfer_style(
        content_small, style_small, size=32, steps=2, pyramid=(), optimizer=optimizer, progress=False
    )
    path = result.save(tmp_path / "out.png")
    recorded = json.loads(path.with_suffix(".json").read_text())["driver"]
    assert recorded == (lbfgsb.driver() if optimizer == "lbfgs" else "keras.optimizers.Adam")
