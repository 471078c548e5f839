"""An L-BFGS whose state never leaves the device: the GPU path for ``optimizer="lbfgs"`` (issue #16).

Why it exists: the default optimiser, scipy's L-BFGS-B (``nst_tf.lbfgsb``), runs on the host in
float64. Every evaluation copies the image out of TensorFlow and the gradient back (2.8 ms at 512 px
on a CPU, benchmarks/lbfgs_drivers.py), and L-BFGS-B's float64 algebra runs over every pixel on the
host: on a GPU the device would wait for both at every evaluation. Here every
vector (iterate, gradient, the ``maxcor`` pairs of history) is a ``tf.Variable``, and one compiled
``tf.function`` does a whole iteration (direction, line search as a ``tf.while_loop``, history
update); the Python loop reads back one small vector of scalars per iteration. The history costs
``2 * maxcor`` image-sized float32 buffers on the device (126 MB at 512 px with ``maxcor=20``).

How it differs from scipy's L-BFGS-B (same problem, similar iterates, not the same ones):

* Bounds by projection and an *active set*, not by L-BFGS-B's generalized Cauchy point and subspace
  minimisation. A variable at a bound whose gradient points out of the box is held fixed; for the
  others the direction is the two-loop recursion ``d = -H g`` on the free variables, and every trial
  point is projected (clipped) back into the box.
* A backtracking line search that needs only decrease (Armijo) along the projected path, with
  quadratic interpolation, at most ``maxls`` evaluations, instead of More-Thuente's Wolfe search
  (which may also lengthen a step). Only accepted points lower the loss, so the last iterate is
  always the best one.
* Float32 arithmetic (the dtype of ``x0``) instead of float64.

Shared with scipy: the ``maxcor`` most recent pairs (s, y) in the inverse-Hessian approximation, a
pair skipped when ``s.y <= eps * y.y`` (it would not keep the approximation positive definite),
the scale ``gamma = s.y / y.y`` of the newest pair, the first step (see ``minimize``), the reset of
the history when a line search fails, and ``maxiter``/``maxfun`` stops with no tolerance stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nst_tf.errors import ConfigError

NAME = "nst_tf.graph_lbfgs (in-graph)"
DRIVERS = ("scipy", "graph")
C1 = 1e-4  # sufficient decrease: accept a step that gains at least 0.01 % of what the slope promises


def lbfgs_driver() -> str:
    """Which L-BFGS runs: ``NST_LBFGS`` (scipy or graph) if set, else "graph" where TensorFlow sees a GPU."""
    choice = os.environ.get("NST_LBFGS", "").strip()
    if not choice:
        return "graph" if tf.config.list_physical_devices("GPU") else "scipy"
    if choice.lower() not in DRIVERS:
        raise ConfigError(
            f"NST_LBFGS={choice!r} is not an L-BFGS driver: use scipy or graph (or leave it unset)"
        )
    return choice.lower()


@dataclass
class Result:
    x: tf.Tensor  # the last accepted iterate (shape of x0): the best point, since the loss only decreases
    loss: float
    evaluations: int
    iterations: int
    stopped: str  # "maxiter" | "maxfun" | "converged" | "no progress" | "non-finite loss"
    gamma: float | None  # s.y / y.y of the newest pair kept (None without one): the curvature scale


def minimize(
    value_and_grad, x0, lower, upper, *, maxiter, maxfun, callback=None, maxcor=20, maxls=20, gamma=None
):
    """Minimise within ``lower <= x <= upper``; return a ``Result``.

    ``value_and_grad(x) -> (loss, gradient)`` or ``(loss, gradient, aux)`` (``aux``: a dict of scalar
    tensors, e.g. the loss terms, reported for each accepted point) is TensorFlow code, best a
    ``tf.function``. ``callback(x, loss, evaluations, aux)`` runs after every iteration with the new
    iterate ``x`` (a tensor on the device, shaped like ``x0``: ``x.numpy()`` copies it to the host)
    and host numbers. Stops after ``maxiter`` iterations, once more than ``maxfun`` evaluations were
    spent (checked after each iteration, as scipy does), at a point where no free variable has a
    gradient, on a non-finite loss, or when a line search finds no decrease even from a fresh history.

    The first iteration (and the first after a reset) has no curvature information: like scipy's
    L-BFGS-B when every variable has both bounds (as pixels do), it tries the full projected
    gradient step ``x - g`` first (where some variable lacks a bound, scipy's first trial moves
    ``min(1, 1/||g||)`` along ``-g`` instead: its lnsrlb; measured with scipy 1.17). ``gamma``, e.g.
    an earlier run's ``Result.gamma``, replaces 1 as the first iteration's inverse Hessian: its first
    trial is then the quasi-Newton step ``x - gamma g``.
    """
    solver = _Solver(value_and_grad, x0, lower, upper, maxcor, maxls)
    if gamma is not None and gamma > 0:
        solver.gamma.assign(gamma)
    iterations, stopped = 0, "maxiter"
    loss, evaluations, status, aux = solver.host(solver.start())
    while status == "ok" and iterations < maxiter:
        if evaluations > maxfun:
            status = "maxfun"
            break
        loss, evaluations, status, aux = solver.host(solver.iterate())
        if status == "restart":  # the line search failed with a history: forget it and try again
            solver.reset()  # (without a history a failure is "no progress": no second restart)
            loss, evaluations, status, aux = solver.host(solver.iterate())
        if status in ("ok", "converged"):
            iterations += 1
            if callback is not None:
                callback(solver.shaped(), loss, evaluations, aux)
    if status != "ok":
        stopped = status
    gamma = float(solver.gamma.numpy()) if int(solver.count.numpy()) > 0 else None
    return Result(solver.shaped(), loss, evaluations, iterations, stopped, gamma)


STATUS = ("ok", "converged", "restart", "non-finite loss", "no progress")


class _Solver:
    def __init__(self, value_and_grad, x0, lower, upper, maxcor, maxls):
        x0 = tf.convert_to_tensor(x0)
        dtype, n = x0.dtype, int(tf.size(x0))
        self.fun, self.shape, self.maxcor, self.maxls = value_and_grad, x0.shape, maxcor, maxls
        self.eps = tf.constant(np.finfo(dtype.as_numpy_dtype).eps, dtype)  # float32: 1.2e-7

        def flat(bound):
            return tf.reshape(tf.broadcast_to(tf.cast(bound, dtype), x0.shape), [-1])

        self.lower, self.upper = flat(lower), flat(upper)
        self.x = tf.Variable(tf.clip_by_value(tf.reshape(x0, [-1]), self.lower, self.upper))
        self.g = tf.Variable(tf.zeros([n], dtype))
        self.f = tf.Variable(tf.zeros([], dtype))
        self.evaluations = tf.Variable(0, dtype=tf.int64)
        # the history: a ring buffer of the maxcor newest pairs, slot `newest` written last
        self.S = tf.Variable(tf.zeros([maxcor, n], dtype))
        self.Y = tf.Variable(tf.zeros([maxcor, n], dtype))
        self.rho = tf.Variable(tf.zeros([maxcor], dtype))  # 1 / (s.y) per pair
        self.count = tf.Variable(0)  # pairs in use (<= maxcor)
        self.newest = tf.Variable(maxcor - 1)
        self.gamma = tf.Variable(tf.ones([], dtype))  # initial inverse Hessian: gamma * identity

    def host(self, packed):
        """The one device-to-host copy per iteration: loss, evaluations, status, then the aux values."""
        loss, evaluations, status, *aux = packed.numpy().tolist()
        return loss, int(evaluations), STATUS[int(status)], dict(zip(self.aux_names, aux))

    def shaped(self):
        return tf.reshape(self.x, self.shape)

    def reset(self):
        self.count.assign(0)
        self.gamma.assign(1.0)

    def _evaluate(self, x):
        self.evaluations.assign_add(1)
        loss, grad, *aux = self.fun(tf.reshape(x, self.shape))
        aux = {k: tf.reshape(v, []) for k, v in (aux[0] if aux else {}).items()}
        self.aux_dtypes = {k: v.dtype for k, v in aux.items()}  # at trace time (start traces first)
        return loss, tf.reshape(grad, [-1]), aux

    def _free(self, x, g):
        """1 for variables that may move, 0 for those at a bound whose gradient points outward."""
        stuck = ((x <= self.lower) & (g > 0)) | ((x >= self.upper) & (g < 0))
        return tf.cast(~stuck, x.dtype)

    def _outputs(self, status, aux):
        """Pack the scalars for ``host`` into one float64 vector (a single copy, a single sync)."""
        # converged: no free variable has a gradient (a stationary point of the box problem)
        stationary = tf.reduce_all(self._free(self.x, self.g) * self.g == 0)
        status = tf.where((status == 0) & stationary, 1, status)
        self.aux_names = sorted(aux)  # at trace time; the same in every trace
        scalars = [self.f, self.evaluations, status, *(aux[k] for k in self.aux_names)]
        return tf.stack([tf.cast(v, tf.float64) for v in scalars])

    @tf.function
    def start(self):
        f, g, aux = self._evaluate(self.x)
        self.f.assign(f)
        self.g.assign(g)
        status = tf.where(tf.math.is_finite(f), 0, 3)
        return self._outputs(status, aux)

    def _two_loop(self, q):
        """``H q`` for the L-BFGS inverse Hessian H: newest pair to oldest, then back (Nocedal & Wright 7.4)."""
        m, k = self.maxcor, self.count
        alpha = tf.TensorArray(q.dtype, size=m)
        for i in tf.range(k):  # newest first
            j = (self.newest - i) % m
            a = self.rho[j] * tf.tensordot(tf.gather(self.S, j), q, 1)
            alpha = alpha.write(i, a)
            q -= a * tf.gather(self.Y, j)
        r = self.gamma * q
        for i in tf.range(k - 1, -1, -1):  # oldest first
            j = (self.newest - i) % m
            b = self.rho[j] * tf.tensordot(tf.gather(self.Y, j), r, 1)
            r += (alpha.read(i) - b) * tf.gather(self.S, j)
        return r

    @tf.function
    def iterate(self):
        x, g, f = self.x.read_value(), self.g.read_value(), self.f.read_value()
        free = self._free(x, g)
        d = -free * self._two_loop(free * g)  # descent: g.d = -(free g).H(free g) < 0
        d = tf.where(tf.tensordot(g, d, 1) < 0, d, -free * g)  # unless round-off: steepest descent

        def trial(t):  # a point on the projected path, its loss, gradient, and whether it is accepted
            xt = tf.clip_by_value(x + t * d, self.lower, self.upper)
            ft, gt, aux = self._evaluate(xt)
            predicted = tf.tensordot(g, xt - x, 1)  # < 0 unless the step rounded away
            return xt, ft, gt, aux, (predicted < 0) & (ft <= f + C1 * predicted)

        def backtrack(k, t, xt, ft, gt, aux, ok):
            # after a failed trial: minimise the parabola through f, the slope along the path and ft,
            # within [0.1t, 0.5t]. The first trial (k = 0) is the full step t = 1; without history
            # (gamma = 1) that is x - g, as scipy's L-BFGS-B tries first on a problem with bounds.
            slope = tf.tensordot(g, xt - x, 1) / t
            t_min = -slope * t * t / (2 * (ft - f - slope * t))
            shorter = tf.where(tf.math.is_finite(t_min), tf.clip_by_value(t_min, 0.1 * t, 0.5 * t), 0.5 * t)
            t = tf.where(k > 0, shorter, t)
            return (k + 1, t, *trial(t))

        def searching(k, t, xt, ft, gt, aux, ok):
            return (k == 0) | (~ok & tf.math.is_finite(ft) & (k < self.maxls))

        # one trial in the loop body only: the network is traced once in this function, not twice
        nothing = {name: tf.zeros([], dtype) for name, dtype in self.aux_dtypes.items()}
        initial = (0, tf.ones([], x.dtype), x, f, g, nothing, tf.constant(False))
        k, t, xt, ft, gt, aux, ok = tf.while_loop(searching, backtrack, initial)
        # no decrease in maxls evaluations: with history the caller resets it and tries once more
        failed = tf.where(self.count > 0, 2, 4)
        status = tf.where(tf.math.is_finite(ft), tf.where(ok, 0, failed), 3)
        if ok:
            s, y = xt - x, gt - g
            sy, yy = tf.tensordot(s, y, 1), tf.tensordot(y, y, 1)
            if sy > self.eps * yy:  # keep the pair: the approximation stays positive definite
                slot = (self.newest + 1) % self.maxcor
                self.S[slot].assign(s)
                self.Y[slot].assign(y)
                self.rho[slot].assign(1 / sy)
                self.newest.assign(slot)
                self.count.assign(tf.minimum(self.count + 1, self.maxcor))
                self.gamma.assign(sy / yy)
            self.x.assign(xt)
            self.g.assign(gt)
            self.f.assign(ft)
        return self._outputs(status, aux)
