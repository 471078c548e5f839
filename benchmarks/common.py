"""Shared pieces of the benchmarks: images, a step recorder, the lean and the naive loops.

Nothing here changes how nst_tf runs: "ours" is always the public API
(``nst_tf.transfer_style`` / ``nst_tf.optimize.optimize``) with weights
resolved the normal way (``weights=None``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The paintings of the issue; the bundled pair is the fallback on machines without them.
CONTENT, STYLE = "tubingen", "starry_night"
FALLBACK = ("chelsea", "hubble_deep_field")
#: Where the shared paintings live on the project machines (used if NST_EXTRA_IMAGES is unset).
SHARED_IMAGES = "/work/shared/images"
#: The content/style pairs of benchmarks.run's multi-pair sections (per_step, quality, pastiche):
#: the paintings when they can be found, else bundled images only (issue #16 item 5).
PAIRS = (("tubingen", "starry_night"), ("taj_mahal", "great_wave"), ("chelsea", "kandinsky_composition_vii"))
BUNDLED_PAIRS = (("chelsea", "hubble_deep_field"), ("astronaut", "gravel"), ("coffee", "brick"))


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"content:style,content:style"`` -> ``[(content, style), ...]`` (names or paths without ':')."""
    pairs = []
    for item in text.split(","):
        parts = [x.strip() for x in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"'{item.strip()}' is not CONTENT:STYLE (e.g. tubingen:starry_night)")
        if tuple(parts) in pairs:
            raise ValueError(f"pair '{item.strip()}' given twice")
        pairs.append(tuple(parts))
    return pairs


def pair_label(content_path, style_path) -> str:
    """``content:style`` (file stems): how results name a pair, in the syntax of ``--pairs``."""
    return f"{Path(content_path).stem}:{Path(style_path).stem}"


def resolve_pairs(pairs=None, fallback=BUNDLED_PAIRS) -> tuple[list[tuple[str, str]], str | None]:
    """Paths of each (content, style) pair, never downloading, and a note when the default was replaced.

    ``pairs=None`` means :data:`PAIRS` if every image is found, else ``fallback`` (bundled images; the note
    says why). Explicitly given pairs must all be found: ``nst_tf.errors.ImageError`` otherwise.
    """
    from nst_tf.data import resolve_image
    from nst_tf.errors import ImageError

    if not os.environ.get("NST_EXTRA_IMAGES") and os.path.isdir(SHARED_IMAGES):
        os.environ["NST_EXTRA_IMAGES"] = SHARED_IMAGES

    def paths(names):
        return [
            (
                str(resolve_image(c, "content", allow_download=False)),
                str(resolve_image(s, "style", allow_download=False)),
            )
            for c, s in names
        ]

    if pairs is not None:
        return paths(pairs), None
    try:
        return paths(PAIRS), None
    except ImageError as err:
        names = ", ".join(f"{c}:{s}" for c, s in fallback)
        why = str(err).split(" — ")[0]  # the first clause names the missing image; the rest is advice
        return paths(fallback), f"the default paintings were not found ({why}); used the bundled {names}"


def resolve_pair(content: str | None, style: str | None) -> tuple[str, str, str | None]:
    """Paths of the content and style images, never downloading; falls back to the bundled pair."""
    from nst_tf.data import resolve_image
    from nst_tf.errors import ImageError

    if not os.environ.get("NST_EXTRA_IMAGES") and os.path.isdir(SHARED_IMAGES):
        os.environ["NST_EXTRA_IMAGES"] = SHARED_IMAGES
    content, style = content or CONTENT, style or STYLE
    try:
        return (
            str(resolve_image(content, "content", allow_download=False)),
            str(resolve_image(style, "style", allow_download=False)),
            None,
        )
    except ImageError as err:
        c, s = FALLBACK
        note = f"{content}/{style} not found ({err}); used the bundled {c}/{s} instead"
        return (
            str(resolve_image(c, "content", allow_download=False)),
            str(resolve_image(s, "style", allow_download=False)),
            note,
        )


def cpu_model() -> str:
    """The CPU's model name (``nst_tf.precision.cpu_model``; imports nothing heavy: the notebook runner
    and the peer benchmark's own venv, without TensorFlow, use it too)."""
    from nst_tf.precision import cpu_model as model

    return model()


def run_stages(objective_at, start_rgb, stages, rec, *, gamma=True):
    """Coarse-to-fine L-BFGS over ``stages`` (``transfer.plan_stages``) from the RGB photo
    ``start_rgb``: the library's loop (``transfer.run_stages``, curvature hand-off unless ``gamma``
    is False), every step reported to the Recorder ``rec``."""
    import warnings

    from nst_tf.images import preprocess, resize_image
    from nst_tf.transfer import run_stages as library_stages

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        library_stages(
            stages,
            objective_at,
            lambda hw: preprocess(resize_image(start_rgb, size=hw)).numpy(),
            progress=False,
            callback=rec,
            handoff=gamma,
        )
    return rec


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return (
            out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine_info() -> dict:
    import keras
    import tensorflow as tf

    import nst_tf

    cpu = cpu_model()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "commit": git_commit(),
        "command": " ".join(["python", *sys.argv]),
        "load_average_at_start": load,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "nst_tf": nst_tf.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def vgg_flops(hw, depth_layer: str = "block5_conv1") -> float:
    """FLOPs of one forward + input-gradient pass of VGG19 up to ``depth_layer`` on an (h, w) image."""
    from nst_tf.models import CHANNELS, CONV_LAYERS, STRIDE

    h, w = hw
    total, c_in = 0.0, 3
    for name in CONV_LAYERS[: CONV_LAYERS.index(depth_layer) + 1]:
        positions = (h // STRIDE[name]) * (w // STRIDE[name])
        total += 2 * positions * 9 * c_in * CHANNELS[name]
        c_in = CHANNELS[name]
    return 2 * total  # the backward pass to the input costs about as much as the forward pass


class Reached(KeyboardInterrupt):
    """Raised from a step callback to end a run once a target loss is reached.

    nst_tf.optimize treats it like Ctrl-C: it stops and keeps the best image.
    """


@dataclass
class Recorder:
    """Step callback for nst_tf: wall/CPU time since ``start()``, loss and image size of every step.

    With ``stop_below`` and ``full_hw`` set, ends the run (``Reached``) at the
    first full-size step whose loss is <= ``stop_below``.
    """

    full_hw: tuple[int, int] | None = None
    stop_below: float | None = None
    rows: list = field(default_factory=list)  # (wall_s, cpu_s, loss, h, w)
    t0: float = 0.0
    c0: float = 0.0

    def start(self) -> Recorder:
        self.rows = []
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __call__(self, step, loss, x=None):
        t, c = time.perf_counter() - self.t0, time.process_time() - self.c0
        h, w = (int(x.shape[-3]), int(x.shape[-2])) if x is not None else (0, 0)
        self.rows.append((t, c, float(loss), h, w))
        if self.stop_below is not None and (h, w) == tuple(self.full_hw or ()) and loss <= self.stop_below:
            raise Reached

    def full(self) -> list:
        """Rows of the full-size stage (the largest image seen)."""
        if not self.rows:
            return []
        hw = tuple(self.full_hw) if self.full_hw else max((r[3], r[4]) for r in self.rows)
        return [r for r in self.rows if (r[3], r[4]) == hw]

    def first_below(self, target: float):
        """(wall_s, cpu_s, full-size step) when the full-size loss first got <= target, or None."""
        for i, r in enumerate(self.full()):
            if r[2] <= target:
                return r[0], r[1], i + 1
        return None


def steady(times: list[float]) -> float:
    """Mean step time from a list of cumulative step end times, the first step left out."""
    if len(times) < 3:
        return float("nan")
    return float(np.mean(np.diff(times[1:])))


def load_pair(content_path, style_path, size):
    """Content (long side ``size``) and style (resized to the content's h x w) as float32 RGB."""
    from nst_tf.images import load_image, resize_image

    content = load_image(content_path, long_side=size)
    style = resize_image(load_image(style_path), size=content.shape[:2])
    return content, style


def keras_vgg19(weights: dict):
    """keras.applications.VGG19 (fused conv+ReLU, all 16 conv layers) with ``weights`` set."""
    import keras

    vgg = keras.applications.VGG19(include_top=False, weights=None)
    for layer in vgg.layers:
        if layer.name in weights:
            layer.set_weights(list(weights[layer.name]))
    vgg.trainable = False
    return vgg


def lean_step_fn(vgg, x):
    """The lean reference: one compiled forward + input gradient to block5_conv1, nothing else."""
    import keras
    import tensorflow as tf

    trunk = keras.Model(vgg.input, vgg.get_layer("block5_conv1").output)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.square(trunk(x, training=False)))
        return loss, tape.gradient(loss, x)

    x = tf.constant(x)
    return lambda: step(x)[1].numpy()


def naive_step_fn(vgg, content_pre, style_pre):
    """The official Keras example's loop (keras.io/examples/generative/neural_style_transfer).

    Every step, content, style and generated images are concatenated and pushed
    through all 16 conv layers; content features and style Gram matrices are
    recomputed; SGD with the example's learning-rate schedule. Same VGG19
    weights as ours. Returns ``step() -> loss``.
    """
    import keras
    import tensorflow as tf

    features = keras.Model(vgg.inputs, {layer.name: layer.output for layer in vgg.layers})
    style_layers = [f"block{b}_conv1" for b in range(1, 6)]
    content_layer = "block5_conv2"
    content_weight, style_weight, tv_weight = 2.5e-8, 1e-6, 1e-6
    _, rows, cols, _ = content_pre.shape

    def gram(x):
        x = tf.transpose(x, (2, 0, 1))
        f = tf.reshape(x, (tf.shape(x)[0], -1))
        return tf.matmul(f, tf.transpose(f))

    def style_loss(style, combination):
        s, c = gram(style), gram(combination)
        return tf.reduce_sum(tf.square(s - c)) / (4.0 * (3**2) * ((rows * cols) ** 2))

    def tv_loss(x):
        a = tf.square(x[:, : rows - 1, : cols - 1, :] - x[:, 1:, : cols - 1, :])
        b = tf.square(x[:, : rows - 1, : cols - 1, :] - x[:, : rows - 1, 1:, :])
        return tf.reduce_sum(tf.pow(a + b, 1.25))

    def compute_loss(combination, base, style):
        feats = features(tf.concat([base, style, combination], axis=0))
        f = feats[content_layer]
        loss = content_weight * tf.reduce_sum(tf.square(f[2] - f[0]))
        for name in style_layers:
            f = feats[name]
            loss += (style_weight / len(style_layers)) * style_loss(f[1], f[2])
        return loss + tv_weight * tv_loss(combination)

    @tf.function
    def loss_and_grads(combination, base, style):
        with tf.GradientTape() as tape:
            loss = compute_loss(combination, base, style)
        return loss, tape.gradient(loss, combination)

    opt = keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(100.0, 100, 0.96))
    base, style = tf.constant(content_pre), tf.constant(style_pre)
    combination = tf.Variable(content_pre)

    def step():
        loss, grads = loss_and_grads(combination, base, style)
        opt.apply_gradients([(grads, combination)])
        return float(loss)

    return step


def time_calls(fn, n: int, warmup: int = 1) -> dict:
    """Wall and CPU seconds per call of ``fn`` (after ``warmup`` calls), plus the first call's time."""
    t = time.perf_counter()
    for _ in range(warmup):
        fn()
    first = time.perf_counter() - t
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "s": float(np.mean(wall)),
        "s_median": float(np.median(wall)),
        "s_min": float(np.min(wall)),
        "cpu_s": float(np.mean(cpu)),
        "first_s": first,
        "n": n,
    }


def train_and_install(name: str, train, config, out: Path, install_dir: Path | None, log=print) -> bool:
    """Train (``train(config, output=out, ...)``: ``nst_tf.fast.train`` or
    ``nst_tf.arbitrary.train_decoder``) or, when ``out``'s checkpoint exists, resume it; once all
    ``config.steps`` are done, copy the model, its sidecar and its data manifest into
    ``install_dir`` (None: leave them in ``out``'s folder). True when finished."""
    import shutil

    from nst_tf import datasets, training

    ckpt = training.checkpoint_path(out)
    if ckpt.exists():
        log(f"{name}: resuming at step {training.read_checkpoint(ckpt)[0]['step']} of {config.steps}")
        result = train(config, output=out, resume=True, progress=True)
    else:
        log(f"{name}: training {config.steps} steps of {config.batch_size} crops of {config.size} px")
        result = train(config, output=out, progress=True)
    log(f"{name}: {result.steps_done} steps, {result.images_per_s:.2f} images/s, {result.stopped}")
    if result.stopped != "completed" or result.steps_done < config.steps:
        log(f"{name}: not finished; rerun to resume")
        return False
    if install_dir is not None:
        install_dir.mkdir(parents=True, exist_ok=True)
        for src in (out, out.with_suffix(".json"), datasets.manifest_path(out)):
            shutil.copyfile(src, install_dir / src.name)
        log(f"{name}: installed {install_dir / out.name}")
    return True
