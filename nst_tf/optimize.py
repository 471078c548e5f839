"""The optimisation loop shared by reconstruction, texture synthesis and transfer.

``make_objective`` turns an extractor plus precomputed targets into a function
``x -> (loss per image, {term: loss per image})`` on a *preprocessed* batch.
``optimize`` then runs either L-BFGS-B (the default: few, well-chosen steps,
pixel bounds for free; ``nst_tf.lbfgsb``) or a Keras optimiser (Adam, SGD)
in a compiled ``tf.GradientTape`` step. Both return an ``OptimizeResult`` with the best image
seen, a per-step history and optional frames (notebook 01 compares them).

Targets are computed once by the caller; the generated batch is the only
thing that goes through the network each step, and only as deep as the
deepest layer the loss reads.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from nst_tf import lbfgsb, losses
from nst_tf.files import progress_bar
from nst_tf.images import VGG_MEAN_BGR, deprocess_image

#: Pixel bounds of a preprocessed (BGR, mean-subtracted) image, per channel.
LOWER = -np.array(VGG_MEAN_BGR, np.float32)
UPPER = 255.0 + LOWER


@dataclass
class History:
    """What happened at each step: wall time since start (s), loss and its terms.

    Every optimiser records, for step k, the loss at the pixels *after* step k and the
    time at which step k finished (the first step's time includes tracing: see
    ``OptimizeResult.first_step_s``), so their curves can be compared point by point.
    """

    step: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    evaluations: list[int] = field(default_factory=list)

    def record(self, step, seconds, loss, terms, evaluations):
        self.step.append(int(step))
        self.time.append(float(seconds))
        self.loss.append(float(loss))
        self.evaluations.append(int(evaluations))
        for name, value in terms.items():
            self.terms.setdefault(name, []).append(float(value))

    def extend(self, other: History, step_offset: int, time_offset: float, eval_offset: int):
        """Append a later stage's history (coarse-to-fine) with shifted counters."""
        for i in range(len(other.step)):
            self.record(
                other.step[i] + step_offset,
                other.time[i] + time_offset,
                other.loss[i],
                {k: v[i] for k, v in other.terms.items()},
                other.evaluations[i] + eval_offset,
            )

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "time": self.time,
            "loss": self.loss,
            "terms": self.terms,
            "evaluations": self.evaluations,
        }


@dataclass
class OptimizeResult:
    """Best image found (preprocessed batch), its loss, history, frames and why it stopped."""

    image: np.ndarray
    loss: float
    history: History
    frames: list[np.ndarray]
    stopped: str  # "completed" | "interrupted" | "non-finite loss"
    seconds: float
    evaluations: int
    #: Wall time of step 1 (s), which includes tracing the compiled step function: the later steps'
    #: time is ``seconds - first_step_s`` (None if no step finished).
    first_step_s: float | None = None
    #: Which optimiser implementation ran: ``lbfgsb.DIRECT``, ``lbfgsb.MINIMIZE`` or a Keras optimiser.
    driver: str = ""
    #: L-BFGS (scipy): the inverse curvature s.y / y.y of the last step, divided by the number of
    #: pixel values; ``optimize(gamma=...)`` sizes the next stage's first step with it.
    gamma: float | None = None
    #: Each term of the loss at the best image (also when no step finished: an optimiser that
    #: stopped at its start, as L-BFGS can when the start is already the answer).
    terms: dict = field(default_factory=dict)


def make_objective(extractor, **targets) -> Objective:
    """Build ``objective(x) -> (total (N,), terms)`` for a preprocessed batch ``x``; the keywords
    (targets, layers, weights, masks) are :func:`objective_data`'s.

    ``content_targets[layer]`` are content features (1 or N images),
    ``style_targets[layer]`` Gram matrices (1 or N). Layer dicts map names to
    per-layer weights. The three loss weights may be scalars or length-N
    vectors (one problem per batch item).
    Terms with zero weight are not computed at all.

    Each layer's loss is divided by the mean square of its own target
    (``losses.mean_square``), computed once here. Without it the layers' raw
    losses differ by about five orders of magnitude (the Gram entries of
    block4_conv1 are ~10^3 times those of block1_conv1, and the loss squares
    them; notebook 03 measures both), and block4_conv1 would drown out the others.

    Spatial control (notebook 04, ``nst_tf.masks``): ``style_masks`` is a list of regions, each
    ``{layer: (h, w) mask}`` at that layer's resolution, and ``style_targets`` then a list of as
    many ``{layer: Gram}``. Each region compares its guided Gram matrix
    (``losses.guided_gram_matrix``) with its own target, and its loss is multiplied by the region's
    share of the layer, ``mean(mask**2)``: a pixel's gradient then has the same size in a small
    region as in a large one, and one all-white region gives exactly the unmasked loss.
    ``content_maps`` ``{layer: (h, w)}`` weighs the content loss per position (``--content-mask``).
    """
    return Objective(extractor, *objective_data(**targets))


def objective_data(
    *,
    content_targets: dict | None = None,
    style_targets: dict | None = None,
    content_layers: dict | None = None,
    style_layers: dict | None = None,
    content_weight=1.0,
    style_weight=1.0,
    tv_weight=0.0,
    style_masks: list | None = None,
    content_maps: dict | None = None,
) -> tuple[dict, tuple]:
    """The targets, scales and weights of :func:`make_objective` as ``(data, layout)`` for
    :func:`loss_from_features`. Targets may be arrays or tensors, also inside a ``tf.function``:
    a trainer passes each batch's own photo features as its content targets (``nst_tf.fast``),
    each normalised by its own mean square, so every image of the batch is its own problem."""
    content_layers = {k: float(v) for k, v in (content_layers or {}).items() if v}
    style_layers = {k: float(v) for k, v in (style_layers or {}).items() if v}
    use_content = bool(content_layers) and np.any(np.asarray(content_weight) > 0)
    use_style = bool(style_layers) and np.any(np.asarray(style_weight) > 0)
    use_tv = bool(np.any(np.asarray(tv_weight) > 0))
    weights = {
        "content": tf.convert_to_tensor(content_weight, tf.float32),
        "style": tf.convert_to_tensor(style_weight, tf.float32),
        "tv": tf.convert_to_tensor(tv_weight, tf.float32),
    }
    content, style = {}, []
    if use_content:
        for k in content_layers:  # layer -> (target features, scale[, weight map])
            target = tf.convert_to_tensor(content_targets[k], tf.float32)
            scale = content_layers[k] / losses.mean_square(target)
            maps = () if content_maps is None else (tf.convert_to_tensor(content_maps[k], tf.float32),)
            content[k] = (target, scale, *maps)
    if use_style:
        regions = [(style_targets, None)] if style_masks is None else list(zip(style_targets, style_masks))
        for targets, masks in regions:
            for k in style_layers:  # (layer, (target Gram, scale[, mask]))
                target = tf.convert_to_tensor(targets[k], tf.float32)
                mask = () if masks is None else (tf.convert_to_tensor(masks[k], tf.float32),)
                share = 1.0 if masks is None else tf.reduce_mean(tf.square(mask[0]))
                style.append((k, (target, style_layers[k] * share / losses.mean_square(target), *mask)))
    return (
        {"weights": weights, "content": content, "style": tuple(t for _, t in style)},
        (use_tv, tuple(k for k, _ in style)),
    )


class Objective:
    """``objective(x) -> (total (N,), terms)``: the loss of ``make_objective``, targets as data.

    The targets (content features, Gram matrices, masks, weights) are *arguments* of one loss
    function, not constants baked into it, so the compiled ``value_and_grad`` is shared by every
    objective with the same extractor and the same kind of terms, whatever the image size: a
    coarse-to-fine run (and a folder of photos) traces it once, where a function per stage
    retraced the whole VGG19 graph at each new size (``value_and_grad``).
    """

    def __init__(self, extractor, data, layout):
        self.extractor, self.data, self.layout = extractor, data, layout
        self._compiled = None

    def __call__(self, x):
        return _loss(self.extractor, self.layout, x, self.data)

    def value_and_grad(self, x):
        """``(loss summed over the batch, terms, gradient)`` at ``x``, compiled once per layout."""
        if self._compiled is None:  # found (or traced) once per objective, not at every evaluation
            self._compiled = self._shared_function(x)
        return self._compiled(x, self.data)

    def _shared_function(self, x):
        compiled = _COMPILED.setdefault(self.extractor, {})
        flat = tf.nest.flatten(self.data)
        key = (
            self.layout,
            tuple(self.data["content"]),
            tuple((t.shape.rank, *t.shape.as_list()[-1:]) for t in flat),
        )
        if key not in compiled:
            signature = tf.nest.map_structure(_relaxed, (x, self.data))
            layout, extractor = self.layout, self.extractor

            def value_and_grad(x, data):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    total, terms = _loss(extractor, layout, x, data)
                    loss = tf.reduce_sum(total)
                return loss, terms, tape.gradient(loss, x)

            compiled[key] = tf.function(value_and_grad, input_signature=signature)
        return compiled[key]


#: Compiled ``value_and_grad`` per extractor (dropped with it) and layout.
_COMPILED = weakref.WeakKeyDictionary()


def _relaxed(t):
    """A TensorSpec with every dimension unknown but the channels: one trace serves every size."""
    t = tf.convert_to_tensor(t)
    rank = t.shape.rank
    return tf.TensorSpec([None] * (rank - 1) + [t.shape[-1]] if rank else [], t.dtype)


def _loss(extractor, layout, x, data):
    """The loss of ``make_objective``: content, style (one term per layer and region) and TV."""
    return loss_from_features(extractor(x, training=False), x, layout, data)


def loss_from_features(feats, x, layout, data):
    """The loss of :func:`make_objective` from the extractor's features of ``x`` (preprocessed, used
    for the total variation) and :func:`objective_data`'s ``(data, layout)``: ``(total (N,), terms)``
    with a term for each nonzero weight."""
    use_tv, style_layers = layout
    w, terms = data["weights"], {}
    total = tf.zeros(tf.shape(x)[:1])
    if data["content"]:
        loss = tf.add_n(
            [
                scale * losses.content_loss(feats[k], target, *maps)
                for k, (target, scale, *maps) in data["content"].items()
            ]
        )
        terms["content"] = w["content"] * loss
        total += terms["content"]
    if style_layers:
        loss = tf.add_n(
            [
                scale * losses.style_layer_loss(feats[k], target, *mask)
                for k, (target, scale, *mask) in zip(style_layers, data["style"])
            ]
        )
        terms["style"] = w["style"] * loss
        total += terms["style"]
    if use_tv:
        terms["tv"] = w["tv"] * losses.total_variation_loss(x)
        total += terms["tv"]
    return total, terms


class _NonFinite(Exception):
    pass


def optimize(
    objective,
    x0,
    *,
    steps: int,
    optimizer: str = "lbfgs",
    learning_rate: float | None = None,
    lr_decay: float = 1.0,
    frame_every: int = 0,
    progress: bool | None = None,
    desc: str = "optimising",
    callback=None,
    gamma: float | None = None,
) -> OptimizeResult:
    """Minimise ``objective`` over the pixels of ``x0`` (preprocessed batch) for ``steps`` steps.

    ``optimizer``: "lbfgs" (scipy L-BFGS-B, one step = one iteration, pixels
    kept inside the valid 0-255 range by bounds), "adam" or "sgd" (Keras
    optimisers, ``learning_rate`` in pixel units, multiplied by ``lr_decay``
    over the run; pixels clipped after each step). Ctrl-C or a NaN/inf loss
    stops the run early and still returns the best image so far (``stopped``
    says which). ``frame_every`` > 0 keeps a uint8 frame every that many steps.
    ``callback(step, loss, x)`` is called after every step (e.g. a
    ``nst_tf.plotting.LiveView``). ``gamma``: an earlier stage's ``OptimizeResult.gamma``
    (coarse-to-fine): L-BFGS's first step then has the length that curvature predicts.
    """
    x0 = np.asarray(x0, np.float32)
    if optimizer == "lbfgs":
        run = _run_lbfgs
    elif optimizer in ("adam", "sgd"):
        run = _run_keras
    else:
        from nst_tf.errors import ConfigError

        raise ConfigError(f"unknown optimizer {optimizer!r}: use one of lbfgs, adam, sgd")
    driver = (
        _lbfgs_driver_name()
        if optimizer == "lbfgs"
        else f"keras.optimizers.{'Adam' if optimizer == 'adam' else 'SGD'}"
    )
    state = _State(x0, frame_every, callback)
    bar = progress_bar(steps, desc=desc, enabled=progress)
    start = time.perf_counter()
    try:
        run(
            objective,
            x0,
            steps,
            state,
            bar,
            start,
            optimizer=optimizer,
            learning_rate=learning_rate,
            lr_decay=lr_decay,
            gamma=gamma,
        )
        stopped = "completed"
    except KeyboardInterrupt:
        stopped = "interrupted"
    except _NonFinite:
        stopped = "non-finite loss"
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return OptimizeResult(
        state.best_x,
        state.best_loss,
        state.history,
        state.frames,
        stopped,
        seconds,
        state.evaluations,
        state.first_step_s,
        driver,
        state.gamma,
        state.best_terms,
    )


class _State:
    """Best image so far, history and frames: survives an interrupted run."""

    def __init__(self, x0, frame_every, callback=None):
        self.callback = callback
        self.best_x = x0.copy()
        self.best_loss = math.inf
        self.history = History()
        self.frames = [deprocess_image(x0[0])] if frame_every else []
        self.frame_every = frame_every
        self.evaluations = 0
        self.last_terms = {}
        self.best_terms = {}
        self.first_step_s = None
        self.gamma = None

    def evaluated(self, x, loss, terms):
        self.evaluations += 1
        if not math.isfinite(loss):
            raise _NonFinite
        self.last_terms = terms
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_x = x.copy()
            self.best_terms = {k: float(np.sum(v)) for k, v in terms.items()}

    def stepped(self, step, start, loss, x, bar, seconds=None):
        """Record step ``step``: its loss at ``x`` (the pixels after the step), finished ``seconds`` in."""
        seconds = time.perf_counter() - start if seconds is None else seconds
        if step == 1:
            self.first_step_s = seconds
        self.history.record(
            step,
            seconds,
            loss,
            {k: float(np.sum(v)) for k, v in self.last_terms.items()},
            self.evaluations,
        )
        if self.frame_every and step % self.frame_every == 0:
            self.frames.append(deprocess_image(x[0]))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        if self.callback is not None:
            self.callback(step, loss, x)


def _value_and_grad_fn(objective):
    """``x -> (loss, terms, gradient)``: the objective's shared compiled function if it has one
    (``Objective``), else one compiled for this objective alone (any callable works)."""
    if isinstance(objective, Objective):
        return objective.value_and_grad

    @tf.function(reduce_retracing=True)
    def value_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total, terms = objective(x)
            loss = tf.reduce_sum(total)
        return loss, terms, tape.gradient(loss, x)

    return value_and_grad


#: L-BFGS works on pixels divided by ``LBFGS_SCALE * sqrt(n_pixels)``. With every pixel bounded,
#: L-BFGS-B's first trial is ``y - dL/dy`` in the variables ``y`` it is given, i.e. pixels move by
#: ``scale**2`` times their gradient: on raw pixels (scale 1) and our mean-based losses (gradients
#: ~1/n) a tiny step that the line search wastes several evaluations growing, with poor early
#: curvature pairs. Measured at 256 px, 30 steps: 44 -> 31-33 evaluations, loss 2.66 -> 2.40 (any
#: scale between 1 and 16 gives about the same); at 512 px the loss after 20 steps drops from 2.82
#: to 2.46. A later coarse-to-fine stage sizes its first step from the curvature instead (``gamma``).
LBFGS_SCALE = 2.0


def _lbfgs_driver_name() -> str:
    """The L-BFGS that ``_run_lbfgs`` will run (``OptimizeResult.driver``): see ``graph_lbfgs.lbfgs_driver``."""
    from nst_tf import graph_lbfgs

    return graph_lbfgs.NAME if graph_lbfgs.lbfgs_driver() == "graph" else lbfgsb.driver()


def _run_lbfgs(objective, x0, steps, state, bar, start, *, gamma=None, **_):
    from nst_tf import graph_lbfgs

    value_and_grad = _value_and_grad_fn(objective)
    shape = x0.shape
    scale = LBFGS_SCALE * math.sqrt(x0.size)
    if graph_lbfgs.lbfgs_driver() == "graph":
        return _run_graph_lbfgs(value_and_grad, x0, steps, state, bar, start, scale, gamma)
    start_x = np.clip(x0, LOWER, UPPER)
    first = None  # the evaluation at the start, made early when it sizes the first step
    if gamma is not None and gamma > 0:
        # Every pixel is bounded, so L-BFGS-B's first trial is y - dL/dy (its lnsrlb): in pixels
        # x - scale^2 dL/dx. scale = sqrt(gamma in pixel units) makes it the quasi-Newton step.
        first = value_and_grad(tf.constant(start_x))
        scale = math.sqrt(gamma * x0.size)
    lower = np.broadcast_to(LOWER, shape).ravel() / scale
    upper = np.broadcast_to(UPPER, shape).ravel() / scale
    y_start = start_x.ravel().astype(np.float64) / scale
    last, gammas = {}, []  # the latest evaluation and the latest accepted one: (pixels, gradient)

    def pixels(flat):
        return (flat * scale).reshape(shape).astype(np.float32)

    def fun(flat):
        nonlocal first
        x = pixels(flat)
        loss, terms, grad = value_and_grad(tf.constant(x)) if first is None else first
        first, loss, grad = None, float(loss), grad.numpy()
        state.evaluated(x, loss, {k: v.numpy() for k, v in terms.items()})
        last["now"] = (x, grad)
        last.setdefault("accepted", (x, grad))
        return loss, grad.ravel().astype(np.float64) * scale

    def callback(flat, loss):
        (x, g), (x_, g_) = last["now"], last["accepted"]  # the line search ends where it accepts
        s, y = (x - x_).ravel(), (g - g_).ravel()
        sy, yy = float(np.dot(s, y)), float(np.dot(y, y))
        if sy > 0 and yy > 0:  # the median of the last few steps' estimates: one step's is noisy
            gammas.append(sy / yy / x.size)
            state.gamma = float(np.median(gammas[-5:]))
        last["accepted"] = last["now"]
        step = len(state.history.step) + 1
        state.stepped(step, start, float(loss), pixels(flat), bar)

    return lbfgsb.minimize(
        fun, y_start, lower, upper, maxiter=steps, maxfun=int(steps * 1.5) + 10, callback=callback
    )


def _run_graph_lbfgs(value_and_grad, x0, steps, state, bar, start, scale, gamma):
    """``_run_lbfgs`` with ``nst_tf.graph_lbfgs``: pixels stay on the device; the host gets scalars,
    and a copy of the image only for a frame, a callback, and at the end (the last iterate is the best).

    ``gamma`` (s.y / y.y in pixel units per pixel value, ``state.gamma``) converts to the scaled
    variables ``y = x / scale`` (where s.y is the same and y.y is scale^2 times larger) as
    ``gamma * n / scale^2``: an earlier stage's curvature makes the first trial a quasi-Newton step."""
    from nst_tf import graph_lbfgs

    @tf.function(reduce_retracing=True)
    def scaled_value_and_grad(y):  # the same problem as scipy's: pixels / scale
        loss, terms, grad = value_and_grad(y * scale)
        return loss, grad * scale, {k: tf.reduce_sum(v) for k, v in terms.items()}

    latest = {}

    def pixels(y):
        return y.numpy() * np.float32(scale)

    def callback(y, loss, evaluations, terms):
        latest.update(y=y, loss=loss)
        state.evaluations, state.last_terms = evaluations, terms
        step = len(state.history.step) + 1
        wanted = state.callback is not None or (state.frame_every and step % state.frame_every == 0)
        state.stepped(step, start, loss, pixels(y) if wanted else None, bar)

    lower, upper = tf.constant(LOWER / scale), tf.constant(UPPER / scale)
    try:
        result = graph_lbfgs.minimize(
            scaled_value_and_grad,
            tf.constant(np.clip(x0, LOWER, UPPER) / np.float32(scale)),
            lower,
            upper,
            maxiter=steps,
            maxfun=int(steps * 1.5) + 10,
            callback=callback,
            gamma=None if gamma is None else gamma * x0.size / scale**2,
        )
    finally:  # also on Ctrl-C: the last accepted iterate is the best image so far
        if latest:
            state.best_x, state.best_loss = pixels(latest["y"]), latest["loss"]
    state.evaluations = result.evaluations
    if result.gamma is not None:  # the newest pair's (scipy's branch takes a median of five)
        state.gamma = result.gamma * scale**2 / x0.size
    if result.stopped == "non-finite loss":
        raise _NonFinite
    return graph_lbfgs.NAME


def _run_keras(objective, x0, steps, state, bar, start, *, optimizer, learning_rate, lr_decay, **_):
    import keras

    from nst_tf.config import KNOWN_GOOD

    lr = learning_rate
    if lr is None:  # SGD's step is lr x gradient, and a mean's gradient shrinks with the pixel count
        good, pixels = KNOWN_GOOD[optimizer], x0.shape[1] * x0.shape[2]
        lr = good["learning_rate"] if optimizer == "adam" else good["lr_per_pixel"] * pixels
    if lr_decay != 1.0:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=steps, decay_rate=lr_decay)
    # Adam's epsilon must be far below the gradient: the losses are means over pixels, so a pixel's
    # gradient is ~7e-5 (RMS) at 128 px, ~1.5e-5 at 256 px, ~1e-6 at 1024 px. With the TF tutorial's
    # epsilon 1e-1 (made for its unnormalised losses on 0-1 pixels, whose gradients are ~1e4: notebook
    # 04) Adam became SGD with lr/1e-1 = 40 and hardly moved.
    opt = (
        keras.optimizers.Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        if optimizer == "adam"
        else keras.optimizers.SGD(lr)
    )
    var = tf.Variable(x0)
    lower, upper = tf.constant(LOWER), tf.constant(UPPER)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            total, terms = objective(var)
            loss = tf.reduce_sum(total)
        grad = tape.gradient(loss, var)
        opt.apply_gradients([(grad, var)])
        var.assign(tf.clip_by_value(var, lower, upper))
        return loss, terms

    @tf.function
    def loss_now():  # the loss at the current pixels, without an update (after the last step)
        total, terms = objective(var)
        return tf.reduce_sum(total), terms

    # Each train_step returns the loss at the pixels *before* its update. So that history[k] is the
    # loss after step k, as for L-BFGS (whose callback gets the loss at the new iterate), step k is
    # recorded once step k + 1 has evaluated its pixels, with the time at which step k finished.
    previous, done_at = x0, None
    for step in range(1, steps + 2):
        loss, terms = train_step() if step <= steps else loss_now()
        loss = float(loss)
        state.evaluated(previous, loss, {k: v.numpy() for k, v in terms.items()})
        if step > 1:
            state.stepped(step - 1, start, loss, previous, bar, seconds=done_at)
        if step > steps:
            break
        previous, done_at = var.numpy(), time.perf_counter() - start
