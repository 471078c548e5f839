"""L-BFGS-B, the default optimiser: scipy's Fortran-derived routine driven by our own loop.

``minimize(fun, x0, lower, upper, ...)`` takes the same iterates as
``scipy.optimize.minimize(method="L-BFGS-B")`` with ``ftol=gtol=0``, without its
per-call cost: ``minimize`` turns array bounds into a Python list of pairs and
back, element by element, which took 3.6 s of a 37 s default 512 px transfer
(profiled). The loop calls scipy's private ``_lbfgsb.setulb`` as scipy's own
``_lbfgsb_py`` does (scipy >= 1.15), so it is only trusted where it was
verified: on the scipy versions in ``VERIFIED_SCIPY`` (pinned in
requirements.txt) and only once a self-check (once per process) has shown it
reproduces ``minimize`` exactly. Anywhere else ``minimize`` runs. ``driver()``
names the one in use; every run's sidecar records it.
"""

from __future__ import annotations

import numpy as np

#: scipy versions (major.minor) on which ``_direct`` reproduced ``minimize`` iterate for iterate
#: (tests/test_lbfgsb.py's problems; 1.15.3, 1.16.3 and 1.17.1 checked); requirements.txt pins one.
VERIFIED_SCIPY = ("1.15", "1.16", "1.17")
#: ``maxcor`` correction pairs; ``maxls`` line-search steps. No tolerance stops: a run ends after its steps.
OPTIONS = {"maxcor": 20, "maxls": 20}
DIRECT = "nst_tf.lbfgsb (scipy setulb)"
MINIMIZE = "scipy.optimize.minimize"


def minimize(fun, x0, lower, upper, *, maxiter, maxfun, callback=None, maxcor=None, maxls=None) -> str:
    """Minimise ``fun(x) -> (f, gradient)`` within ``lower <= x <= upper``; return the driver's name.

    ``callback(x, f)`` runs after every iteration (``x`` is the solver's own
    array: copy it to keep it). Stops after ``maxiter`` iterations or once more
    than ``maxfun`` evaluations were spent, like scipy.
    """
    options = dict(
        maxiter=maxiter,
        maxfun=maxfun,
        callback=callback,
        maxcor=OPTIONS["maxcor"] if maxcor is None else maxcor,
        maxls=OPTIONS["maxls"] if maxls is None else maxls,
    )
    name = driver()
    (_direct if name == DIRECT else _scipy)(fun, x0, lower, upper, **options)
    return name


def _scipy(fun, x0, lower, upper, *, maxiter, maxfun, callback, maxcor, maxls):
    from scipy.optimize import Bounds
    from scipy.optimize import minimize as scipy_minimize

    def each_iteration(intermediate_result):  # scipy passes the result object to this parameter name
        if callback is not None:
            callback(intermediate_result.x, intermediate_result.fun)

    scipy_minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(lower, upper),
        callback=each_iteration,
        options={
            "maxiter": maxiter,
            "maxfun": maxfun,
            "maxcor": maxcor,
            "maxls": maxls,
            "ftol": 0.0,
            "gtol": 0.0,
        },
    )


def required(n: int, m: int) -> dict[str, tuple[int, np.dtype]]:
    """setulb's work arrays for ``n`` variables and ``m`` correction pairs: ``{name: (length, dtype)}``.

    ``wa`` has the length the L-BFGS-B 3.0 documentation of setulb gives,
    ``(2m + 5)n + 11m^2 + 8m`` doubles, and ``iwa`` 3n integers; the state
    arrays have the fixed sizes scipy >= 1.15 allocates.
    """
    f8, i4 = np.dtype(np.float64), np.dtype(np.int32)
    return {
        "wa": ((2 * m + 5) * n + 11 * m * m + 8 * m, f8),
        "iwa": (3 * n, i4),
        "task": (2, i4),
        "lsave": (4, i4),
        "isave": (44, i4),
        "dsave": (29, f8),
        "ln_task": (2, i4),
    }


def workspace(n: int, m: int) -> dict[str, np.ndarray]:
    """Zeroed work arrays of the ``required`` lengths."""
    return {name: np.zeros(size, dtype) for name, (size, dtype) in required(n, m).items()}


def check_workspace(n: int, m: int, arrays: dict) -> None:
    """Refuse work arrays setulb would overrun: the private routine writes into them unchecked."""
    for name, (size, dtype) in required(n, m).items():
        got = arrays[name]
        if got.size < size or got.dtype != dtype or not got.flags.c_contiguous:
            raise RuntimeError(
                f"L-BFGS-B work array {name} has {got.size} {got.dtype} (n={n}, m={m}), "
                f"setulb needs {size} contiguous {dtype}"
            )


def _direct(fun, x0, lower, upper, *, maxiter, maxfun, callback, maxcor, maxls):
    """scipy's own L-BFGS-B driver loop (``scipy.optimize._lbfgsb_py``, scipy >= 1.15), minus its bounds
    conversion loops."""
    from scipy.optimize import _lbfgsb

    n, m = x0.size, maxcor
    low = np.ascontiguousarray(lower, np.float64).ravel()
    up = np.ascontiguousarray(upper, np.float64).ravel()
    if low.size != n or up.size != n:
        raise ValueError(f"bounds have {low.size} and {up.size} values for {n} variables")
    x = np.clip(np.asarray(x0, np.float64).ravel(), low, up)
    # bound type per variable, as scipy sets it: 0 none, 1 lower only, 2 both, 3 upper only
    has_low, has_up = np.isfinite(low), np.isfinite(up)
    nbd = np.where(has_low, np.where(has_up, 2, 1), np.where(has_up, 3, 0)).astype(np.int32)
    low, up = np.where(has_low, low, 0.0), np.where(has_up, up, 0.0)
    f = np.array(0.0, np.float64)
    g = np.zeros(n, np.float64)
    w = workspace(n, m)
    check_workspace(n, m, w)
    task = w["task"]
    nfev = iterations = 0
    evaluated_at = None
    while True:
        g = np.array(g, np.float64)  # a float64 copy, as scipy makes: `last` keeps its own gradient
        _lbfgsb.setulb(m, x, low, up, nbd, f, g, 0.0, 0.0, w["wa"], w["iwa"], task, w["lsave"],
                       w["isave"], w["dsave"], maxls, w["ln_task"])  # fmt: skip
        if task[0] == 3:  # wants f and g at x; like scipy, do not recompute at an unchanged x
            if evaluated_at is None or not np.array_equal(x, evaluated_at):
                evaluated_at = x.copy()
                last = fun(x.copy())
                nfev += 1
            f, g = last
        elif task[0] == 1:  # an iteration finished
            iterations += 1
            if callback is not None:
                callback(x, f)
            if iterations >= maxiter or nfev > maxfun:
                break
        else:  # converged, or the line search failed: scipy stops too
            break


# ----------------------------------------------------------------------------- the self-check
def bounded_quadratic(n: int, seed: int):
    """``(fun, lower, upper)``: a convex problem whose minimum lies partly outside the box [-1, 0.5].

    Every fourth variable has no lower bound, every fifth no upper bound (some neither): all four
    of L-BFGS-B's bound types occur. The problem on which ``_direct`` is checked against
    ``minimize`` (here once per process, in ``tests/test_lbfgsb.py`` at a larger size).
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    h, b = a @ a.T / n + np.eye(n), rng.normal(size=n) * 4

    def fun(x):
        return float(0.5 * x @ h @ x - b @ x), h @ x - b

    lower, upper = -np.ones(n), np.full(n, 0.5)
    lower[::4], upper[::5] = -np.inf, np.inf
    return fun, lower, upper


def trace(drive, fun, x0, lower, upper, **options) -> tuple[int, list[np.ndarray]]:
    """Run one driver (``_direct`` or ``_scipy``): (evaluations of ``fun``, the iterate after each
    iteration)."""
    calls, iterates = [], []

    def counted(x):
        calls.append(1)
        return fun(x)

    drive(counted, x0, lower, upper, callback=lambda x, f: iterates.append(x.copy()), **options)
    return len(calls), iterates


def same_trace(a, b) -> bool:
    return a[0] == b[0] and len(a[1]) == len(b[1]) and all(np.array_equal(p, q) for p, q in zip(a[1], b[1]))


def scipy_verified(version: str | None = None) -> bool:
    """Is ``version`` (default: the installed scipy's) one of ``VERIFIED_SCIPY``?"""
    if version is None:
        import scipy

        version = scipy.__version__
    return ".".join(version.split(".")[:2]) in VERIFIED_SCIPY


_DRIVER: str | None = None


def driver() -> str:
    """``DIRECT`` where scipy is a verified version and ``_direct`` reproduces ``minimize`` on a
    small bounded problem (checked once per process), else ``MINIMIZE``."""
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = DIRECT if scipy_verified() and _self_check() else MINIMIZE
    return _DRIVER


def _self_check() -> bool:
    fun, lower, upper = bounded_quadratic(12, seed=0)
    options = dict(maxiter=8, maxfun=30, maxcor=5, maxls=20)
    try:
        fast = trace(_direct, fun, np.zeros(12), lower, upper, **options)
    except Exception:  # the private API changed: use minimize
        return False
    reference = trace(_scipy, fun, np.zeros(12), lower, upper, **options)
    return len(fast[1]) > 0 and same_trace(fast, reference)
