"""Fast style transfer: train a feed-forward network once, then stylise in one pass (notebook 05).

Optimisation-based transfer (``nst_tf.transfer``) solves one problem per image.
Johnson, Alahi & Fei-Fei (2016) train an *image transformation network* once,
per style, on many photos, with the same perceptual loss (content + style + TV
through VGG19, ``nst_tf.losses``); afterwards stylising is one forward pass.
Ulyanov et al. (2016) did the same for textures: a generator maps noise to
images with the style's Gram statistics.

* ``build_transformer``: Johnson's network: 9x9 conv, two stride-2 convs,
  residual blocks, two resize-then-convolve upsamplings (nearest neighbour,
  then a 3x3 conv: no transposed convolutions, so no checkerboard artefacts),
  a 9x9 conv to RGB; instance normalisation throughout (Ulyanov et al. 2016).
  Fully convolutional: any input size gives an output of the same size.
* ``build_texture_generator``: the same body on a noise input (notebook 05 trains it).
* ``PerceptualLoss``: the objective of ``nst_tf.optimize.make_objective``, per image,
  with the content targets of the batch itself (``test_fast`` checks they agree).
* ``train``: a ``tf.GradientTape`` step run under a ``tf.distribute`` strategy
  (one device by default, ``MirroredStrategy`` across GPUs, ``MultiWorkerMirroredStrategy``
  when ``TF_CONFIG`` is set), periodic all-or-nothing checkpoints, Ctrl-C keeps the last one,
  ``resume=True`` continues exactly where it stopped (the data stream included).
* ``stylize_image`` / ``stylize_folder`` / ``stylize_video``: apply a saved model, every output
  with a JSON sidecar, written through ``nst_tf.files``.

Multi-worker training: on every machine set ``TF_CONFIG`` (a JSON string) before starting
``python -m nst_tf train``, e.g. on worker 0 of two::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'

and ``"index": 1`` on the other; ``--batch-size`` is the global batch, split across all replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nst_tf import data as nst_data
from nst_tf import datasets, optimize, resources
from nst_tf import precision as precisions
from nst_tf.config import Config
from nst_tf.errors import ConfigError, ImageError, NSTError
from nst_tf.fast_config import TrainConfig
from nst_tf.files import (
    FolderReport,
    atomic_write,
    printable,
    progress_bar,
    restore_signal_handlers,
    set_signal_handlers,
    unique_names,
    user_path,
    write_files,
)
from nst_tf.images import (
    image_info,
    load_image,
    preprocess,
    resize_image,
    save_image,
    save_with_sidecar,
    scaled_size,
    to_uint8,
)
from nst_tf.losses import gram_matrix
from nst_tf.models import build_extractor, get_weights
from nst_tf.vgg19 import min_input_side

__all__ = [
    "HELD_OUT", "PerceptualLoss", "TrainConfig", "TrainResult", "build_texture_generator",
    "build_transformer", "default_strategy", "evaluate", "load_model", "photo_dataset", "save_model",
    "stylize", "stylize_folder", "stylize_image", "stylize_video", "train", "training_photos",
]  # fmt: skip

#: Bundled photos kept out of training: the held-out set of notebook 05 and benchmarks/fast.py.
HELD_OUT = ("coffee", "rocket")
#: Bundled content photos used for training (with every image in data/src/train/).
TRAIN_BUNDLED = ("astronaut", "chelsea")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
#: Decoded training photos kept in memory (a user's folder of thousands is read as it goes).
_DECODED_CACHE = 64


# ----------------------------------------------------------------------------- the networks
@keras.saving.register_keras_serializable(package="nst_tf")
class CropLike(keras.layers.Layer):
    """``x`` cut to the height and width of ``reference``: the decoder's output, 4x the quarter-size
    features, can be up to 3 pixels larger than an input whose sides are not multiples of 4."""

    def call(self, x, reference):
        shape = tf.shape(reference)
        return x[:, : shape[1], : shape[2], :]


@keras.saving.register_keras_serializable(package="nst_tf")
class ReflectPad(keras.layers.Layer):
    """Pad height and width by ``pad`` pixels on each side with the mirror image of the border
    (``tf.pad(mode="REFLECT")``): the convolution after it sees picture, not zeros, at the edges,
    so the network paints no dark frame around its outputs (format 2; format 1 padded with zeros)."""

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


#: The network's format, recorded in every model's sidecar: 2 pads with the border's mirror image
#: (``ReflectPad``), 1 (before issue #23) with zeros. Both load and stylise.
FORMAT = 2
PADDINGS = ("reflect", "zero")


def _norm(channels: int, name: str):
    # instance normalisation: each image's channels normalised over their own H x W positions
    return keras.layers.GroupNormalization(groups=channels, epsilon=1e-3, name=name)


def _conv(x, channels, kernel, name, strides=1, relu=True, padding="reflect"):
    if padding == "reflect":  # same output size as padding="same" (odd kernels), for any stride
        x = ReflectPad(kernel // 2, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        channels, kernel, strides=strides, padding="valid" if padding == "reflect" else "same", name=name
    )(x)
    x = _norm(channels, f"{name}_in")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual(x, channels, name, padding):
    y = _conv(x, channels, 3, f"{name}_a", padding=padding)
    y = _conv(y, channels, 3, f"{name}_b", relu=False, padding=padding)
    return keras.layers.Add(name=name)([x, y])


def _upsample(x, channels, name, padding):
    # resize, then convolve: no transposed convolution, so no checkerboard (Odena et al. 2016)
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
    return _conv(x, channels, 3, name, padding=padding)


def _body(x, width: int, res_blocks: int, padding: str = "reflect"):
    """Encoder (full, 1/2, 1/4 resolution), residual blocks, decoder back to full resolution."""
    if padding not in PADDINGS:
        raise ConfigError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    x = _conv(x, width, 9, "enc1", padding=padding)
    x = _conv(x, 2 * width, 3, "enc2", strides=2, padding=padding)
    x = _conv(x, 4 * width, 3, "enc3", strides=2, padding=padding)
    for i in range(res_blocks):
        x = _residual(x, 4 * width, f"res{i + 1}", padding)
    x = _upsample(x, 2 * width, "dec1", padding)
    x = _upsample(x, width, "dec2", padding)
    if padding == "reflect":
        x = ReflectPad(4, name="to_rgb_pad")(x)
    x = keras.layers.Conv2D(3, 9, padding="valid" if padding == "reflect" else "same", name="to_rgb")(x)
    # RGB in [0, 255] through a scaled tanh, as Johnson et al.; in float32 under any policy
    x = keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels", dtype="float32")(x)


#: Layers that stay float32 under ``mixed_bfloat16``: the RGB output, where bfloat16's 8-bit
#: mantissa would quantise pixels near black and white to steps of half a grey level.
FLOAT32_LAYERS = ("tanh", "to_pixels", "crop")


@contextlib.contextmanager
def _dtype_policy(policy: str):
    """Layers built inside compute in ``policy`` ("float32" or "mixed_bfloat16": float32 weights)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_transformer(
    width: int = 16, res_blocks: int = 5, seed: int = 0, precision: str = "float32", padding: str = "reflect"
) -> keras.Model:
    """Johnson et al.'s image transformation network: RGB [0, 255] (N, H, W, 3) -> same shape.

    ``precision`` (``nst_tf.precision``): in bfloat16 the layers compute under Keras's
    ``mixed_bfloat16`` (float32 weights, bfloat16 arithmetic; no loss scaling needed), the
    output layers (``FLOAT32_LAYERS``) in float32. ``padding``: "reflect" (format 2, the default)
    mirrors the border before each convolution, "zero" (format 1) pads with zeros."""
    keras.utils.set_random_seed(int(seed))
    with _dtype_policy(precisions.keras_policy(precision)):
        photo = keras.Input((None, None, 3), name="photo")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="from_pixels")(photo)
        out = CropLike(name="crop", dtype="float32")(_body(x, width, res_blocks, padding), photo)
        return keras.Model(photo, out, name=f"transformer_w{width}_r{res_blocks}")


def build_texture_generator(
    width: int = 16, res_blocks: int = 3, noise_channels: int = 8, seed: int = 0, precision: str = "float32"
):
    """Ulyanov et al.'s idea with Johnson's body: noise (N, H, W, noise_channels) -> texture (N, H, W, 3)."""
    keras.utils.set_random_seed(int(seed))
    with _dtype_policy(precisions.keras_policy(precision)):
        noise = keras.Input((None, None, noise_channels), name="noise")
        out = CropLike(name="crop", dtype="float32")(_body(noise, width, res_blocks), noise)
        return keras.Model(noise, out, name=f"texture_generator_w{width}_r{res_blocks}")


def model_precision(model: keras.Model) -> str:
    """ "bfloat16" if any layer of ``model`` computes in bfloat16, else "float32"."""
    return "bfloat16" if any(layer.compute_dtype == "bfloat16" for layer in model.layers) else "float32"


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """``model`` computing in ``precision`` (resolved): itself if it already does, else a copy with
    the same (float32) weights under the other policy (a float32-trained network stylising in
    bfloat16, or the reverse)."""
    want = precisions.resolve(precision)
    if model_precision(model) == want:
        return model
    policy = precisions.keras_policy(want)

    def clone(layer):
        cfg = layer.get_config()
        if layer.name not in FLOAT32_LAYERS and "dtype" in cfg:
            cfg["dtype"] = policy
        return layer.__class__.from_config(cfg)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


# ----------------------------------------------------------------------------- the loss
class PerceptualLoss:
    """``loss(photos, outputs) -> (per-image total (N,), {"content", "style", "tv": (N,)})``.

    The objective of ``nst_tf.optimize.make_objective`` with each photo as its own content
    target: every layer's loss divided by the mean square of its target (the photo's features,
    the style's Gram matrix). Photos and outputs are RGB in [0, 255]; both go through VGG19 in
    one batch. The style image is resized to ``config.size * config.style_scale`` on its long side.
    """

    def __init__(self, config: TrainConfig, style_image: np.ndarray):
        self.content_layers = {k: float(v) for k, v in config.content_layers.items()}
        self.style_layers = {k: float(v) for k, v in config.style_layers.items()}
        self.weights = {"content_weight": config.content_weight, "style_weight": config.style_weight,
                        "tv_weight": config.tv_weight}  # fmt: skip
        layers = [*self.content_layers, *self.style_layers]
        self.min_side = min_input_side(layers)
        self.extractor = build_extractor(
            layers, pooling=config.pooling, weights=config.weights, precision=config.precision
        )
        long_side = max(self.min_side, round(config.size * config.style_scale))
        style = resize_image(style_image, long_side)
        if min(style.shape[:2]) < self.min_side:
            raise ConfigError(f"the style image is too narrow for layers up to {max(layers)}: raise --size")
        feats = self.extractor(preprocess(style), training=False)
        self.grams = {k: tf.constant(gram_matrix(feats[k])) for k in self.style_layers}

    def __call__(self, photos, outputs):
        n = tf.shape(photos)[0]
        x = preprocess(tf.concat([photos, outputs], 0))  # one VGG19 pass for both halves
        feats = self.extractor(x, training=False)
        data, layout = optimize.objective_data(
            content_targets={k: tf.stop_gradient(feats[k][:n]) for k in self.content_layers},
            style_targets=self.grams,
            content_layers=self.content_layers,
            style_layers=self.style_layers,
            **self.weights,
        )
        total, terms = optimize.loss_from_features({k: v[n:] for k, v in feats.items()}, x[n:], layout, data)
        zero = tf.zeros_like(total)  # a term whose weight is 0 is not computed: report it as 0
        return total, {k: terms.get(k, zero) for k in ("content", "style", "tv")}


# ----------------------------------------------------------------------------- training data
# The training pool lives in nst_tf.datasets; these are the names fast.train, notebook 05 and the
# tests have always used.
def training_photos(content_dir=None) -> list[Path]:
    """The training photos: every readable image in ``content_dir``
    (:func:`nst_tf.datasets.folder_photos`: bad files, dangling links and link loops skipped with a
    warning), or the bundled set (``TRAIN_BUNDLED`` plus ``data/src/train/``, CC0 / public-domain
    photos from scikit-image, see CREDITS.md; :func:`nst_tf.datasets.bundled_photos`)."""
    if content_dir is not None:
        photos = datasets.folder_photos(content_dir)
        if not photos:
            raise ConfigError(
                f"none of the images in '{printable(user_path(content_dir))}' could be read (see the "
                "warnings): pass a folder of photos"
            )
        return [p.path for p in photos]
    return [p.path for p in datasets.bundled_photos()]


def _sha256(path, n: int = 12) -> str:
    return datasets.sha256_file(path, n)


#: The crop stream (a fixed function of (seed, crop index)): :class:`nst_tf.datasets.PhotoStream`.
_Photos = datasets.PhotoStream


def photo_dataset(paths, size: int, batch_size: int, seed: int = 0, start: int = 0) -> tf.data.Dataset:
    """Endless ``tf.data`` stream of (batch_size, size, size, 3) RGB crops in [0, 255]: each photo
    scaled (short side 1-2x ``size``), then a random crop and a random left-right flip (stateless,
    seeded per crop). ``start`` skips that many crops (resuming). See :func:`nst_tf.datasets.crops`."""
    return datasets.crops(paths, size, batch_size, seed, start)


# ----------------------------------------------------------------------------- training
def default_strategy() -> tf.distribute.Strategy:
    """``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set, ``MirroredStrategy`` with
    several GPUs, else TensorFlow's default strategy (one device)."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def make_train_step(model, optimizer, loss_fn, strategy, global_batch: int, noise: float = 0.0):
    """One step, written out: the loss of each replica's share of the batch, averaged over the
    *global* batch, so the replicas' summed gradients equal one device's gradient on it."""

    def replica_step(photos, seed):
        inputs = photos
        if noise > 0:  # the network sees a noisy photo; the content target stays the clean one
            inputs = photos + noise * tf.random.stateless_normal(tf.shape(photos), seed)
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            per_image, terms = loss_fn(photos, outputs)
            loss = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        means = {k: tf.nn.compute_average_loss(v, global_batch_size=global_batch) for k, v in terms.items()}
        return loss, means

    @tf.function
    def step(photos, seed):
        loss, terms = strategy.run(replica_step, args=(photos, seed))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        return total, {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in terms.items()}

    return step


@dataclass
class TrainResult:
    """A trained (or interrupted) network and how it was made."""

    model: keras.Model
    config: TrainConfig
    history: list = field(default_factory=list)  # (step, loss, content, style, tv, seconds)
    steps_done: int = 0
    stopped: str = "completed"
    seconds: float = 0.0
    images_per_s: float = 0.0
    data: list = field(default_factory=list)
    style: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict)
    strategy: dict = field(default_factory=dict)
    path: Path | None = None
    pool: datasets.Pool | None = None
    validation: list = field(default_factory=list)  # strips written (names in M.val/)
    loss_curve: str | None = None

    def metadata(self) -> dict:
        from nst_tf.transfer import versions

        return {
            "kind": "nst_tf fast style transfer network (Johnson et al. 2016)",
            "format": FORMAT,
            "config": self.config.to_dict(),
            "style": self.style,
            "data": self.data,
            "data_manifest": datasets.manifest_path(self.path).name if self.path else None,
            "data_sources": list(self.config.sources()),
            "held_out": list(HELD_OUT)
            if any(str(s).lower() in datasets.SOURCES for s in self.config.sources())
            else [],
            "steps_done": self.steps_done,
            "stopped": self.stopped,
            "loss": dict(zip(("loss", "content", "style", "tv"), self.history[-1][1:5]))
            if self.history
            else {},
            "history": [[round(v, 6) for v in row] for row in self.history],
            "validation": {
                "folder": validation_dir(self.path).name if self.path else None,
                "photos": [p.stem for p in _held_out_paths()] if self.validation else [],
                "long_side": VALIDATION_SIDE,
                "strips": self.validation,
            },
            "loss_curve": self.loss_curve,
            "timings": {"total_s": round(self.seconds, 2), "images_per_s": round(self.images_per_s, 3)},
            "strategy": self.strategy,
            "parameters": int(self.model.count_params()),
            "weights": self.weights,
            "precision": self.precision,
            "versions": versions(),
        }


def checkpoint_path(model_path) -> Path:
    """Where training keeps its checkpoint: ``M.keras`` -> ``M.ckpt.npz``."""
    path = user_path(model_path)
    return path.with_name(f"{path.stem}.ckpt.npz")


def _save_checkpoint(path: Path, model, optimizer, step: int, config: TrainConfig, history: list):
    arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(model.get_weights())}
    arrays.update({f"opt_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    meta = json.dumps({"step": step, "config": config.to_dict(), "history": history})
    arrays["meta"] = np.array(meta)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def read_checkpoint(path) -> tuple[dict, dict]:
    """(meta, arrays) of a checkpoint written by ``train``; one-line ConfigError if unusable."""
    path = user_path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(
            f"cannot resume from '{printable(path)}': {printable(err)} — start without --resume"
        ) from None
    return meta, arrays


def _restore(model, optimizer, arrays: dict):
    model.set_weights([arrays[f"model_{i}"] for i in range(len(model.get_weights()))])
    for i, v in enumerate(optimizer.variables):
        v.assign(arrays[f"opt_{i}"])


#: Long side of the held-out photos in the validation strips written during training.
VALIDATION_SIDE = 128


def validation_dir(model_path) -> Path:
    """Where training writes its validation strips: ``M.keras`` -> ``M.val/``."""
    path = user_path(model_path)
    return path.with_name(f"{path.stem}.val")


def _held_out_paths() -> list[Path]:
    """The bundled held-out photos (``HELD_OUT``) that are present."""
    folder = nst_data.BUNDLED_DIR / "content"
    return [p for p in (folder / f"{name}.jpg" for name in HELD_OUT) if p.is_file()]


def _validation_photos() -> list[np.ndarray]:
    return [load_image(p, VALIDATION_SIDE) for p in _held_out_paths()]


def _validation_strip(model, photos, path: Path) -> Path:
    """The held-out photos (top) above the network's outputs (bottom), side by side, as a JPEG."""
    outs = [stylize(model, p) for p in photos]
    height = max(p.shape[0] for p in photos)
    pad = [np.pad(im, ((0, height - im.shape[0]), (0, 2), (0, 0)), constant_values=255) for im in photos]
    top = np.concatenate(pad, 1)
    bottom = np.concatenate(
        [np.pad(o, ((0, height - o.shape[0]), (0, 2), (0, 0)), constant_values=255) for o in outs], 1
    )
    return save_image(np.concatenate([top, bottom], 0), path, quality=90)


def _loss_curve(history: list, path: Path) -> Path:
    """The training loss and its three terms against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = np.asarray([r[:5] for r in history], np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for i, label in enumerate(("loss", "content", "style", "tv"), start=1):
        ax.plot(rows[:, 0], rows[:, i], label=label, lw=1.6 if i == 1 else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted terms)")
    ax.legend(frameon=False, ncol=4, fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
    finally:
        plt.close(fig)
    return path


def train(
    config: TrainConfig | None,
    *,
    output=None,
    resume: bool = False,
    progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None,
    callback=None,
) -> TrainResult:
    """Train a transformation network for ``config.style``; save it to ``output`` (``.keras``).

    With ``output``, a checkpoint ``<stem>.ckpt.npz`` is written every ``checkpoint_every`` steps
    and on Ctrl-C (all or nothing), and the model and its JSON sidecar at the end (also when
    interrupted: ``stopped="interrupted"``). ``resume=True`` continues from that checkpoint with
    its saved settings (``config`` None, or one whose ``steps`` sets the new total). ``callback(step,
    loss)`` runs after each step.
    """
    start, history, arrays = 0, [], None
    if resume:
        if output is None:
            raise ConfigError("resume needs the model path whose checkpoint to continue (--output M.keras)")
        meta, arrays = read_checkpoint(checkpoint_path(output))
        saved = TrainConfig.from_dict(meta["config"])
        config = saved.replace(steps=config.steps if config else saved.steps)
        start, history = int(meta["step"]), [list(r) for r in meta["history"]]
    config.validate()
    # before any work: the transformer and VGG19 (on photos and outputs, 2x the batch) must fit
    resources.check_train_memory(
        config.size, config.batch_size, config.width, config.res_blocks,
        [*config.content_layers, *config.style_layers],
    )  # fmt: skip
    strategy = strategy or default_strategy()
    style_path = Path(nst_data.resolve_image(config.style, "style"))
    loss_fn = PerceptualLoss(config, load_image(style_path))
    if config.size < loss_fn.min_side:
        raise ConfigError(f"size {config.size} is below {loss_fn.min_side} px, too small for these layers")
    pool = datasets.training_pool(config.sources(), crop_size=config.size, progress=progress)
    paths = pool.paths()
    with strategy.scope():
        model = build_transformer(
            config.width, config.res_blocks, seed=config.seed, precision=config.precision
        )
        optimizer = keras.optimizers.Adam(config.learning_rate)
        optimizer.build(model.trainable_variables)
    if arrays is not None:
        _restore(model, optimizer, arrays)
    result = TrainResult(
        model, config, history, start,
        data=[
            {"path": str(p.path), "source": p.source, "licence": p.licence, "sha256": (p.sha256 or "")[:12]}
            for p in pool.photos
        ],
        pool=pool,
        style={"name": config.style, "path": str(style_path), "sha256": _sha256(style_path)},
        weights=get_weights(config.weights)[1],
        precision=precisions.describe(config.precision),
        strategy={"name": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync},
    )  # fmt: skip
    step_fn = make_train_step(model, optimizer, loss_fn, strategy, config.batch_size, config.noise)
    ds = photo_dataset(paths, config.size, config.batch_size, config.seed, start=start * config.batch_size)
    batches = iter(strategy.experimental_distribute_dataset(ds))
    writes = output is not None and _is_chief(strategy)  # one writer among the workers
    ckpt = checkpoint_path(output) if writes else None
    val_photos = _validation_photos() if writes and config.validate_every else []
    val_dir = validation_dir(output) if val_photos else None
    bar = progress_bar(config.steps, desc="train", initial=start, enabled=progress)
    t0, images = time.perf_counter(), 0
    try:
        for step in range(start, config.steps):
            photos = next(batches)
            seed = tf.constant([config.seed, step], tf.int64)
            loss, terms = step_fn(photos, seed)
            row = [step + 1, float(loss), *(float(terms[k]) for k in ("content", "style", "tv"))]
            if not np.isfinite(row[1]):
                result.stopped = "nonfinite"
                break
            result.steps_done, images = step + 1, images + config.batch_size
            history.append(row + [round(time.perf_counter() - t0, 3)])
            rate = images / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{row[1]:.3g}", img_s=f"{rate:.2f}")
            if ckpt is not None and (step + 1) % config.checkpoint_every == 0:
                _save_checkpoint(ckpt, model, optimizer, step + 1, config, history)
            if val_dir is not None and (step + 1) % config.validate_every == 0:
                result.validation.append(
                    _validation_strip(model, val_photos, val_dir / f"step-{step + 1:06d}.jpg").name
                )
            if callback is not None:
                callback(step + 1, row[1])
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    finally:
        bar.close()
    result.seconds = time.perf_counter() - t0
    result.images_per_s = images / max(result.seconds, 1e-9)
    if writes:
        previous = set_signal_handlers(signal.SIG_IGN)  # a second Ctrl-C must not cut the save short
        try:
            if result.stopped != "nonfinite":
                _save_checkpoint(ckpt, model, optimizer, result.steps_done, config, history)
            result.path = Path(output)
            datasets.write_manifest(output, pool, style=result.style["name"])
            if history:
                result.loss_curve = _loss_curve(history, result.path.with_suffix(".loss.png")).name
            result.path = save_model(model, output, result.metadata())
        finally:
            restore_signal_handlers(previous)
    return result


def _is_chief(strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    return task_type == "chief" or (task_type == "worker" and resolver.task_id == 0)


# ----------------------------------------------------------------------------- saving and loading
def save_model(model: keras.Model, path, metadata: dict | None = None, *, overwrite: bool = True) -> Path:
    """Write ``model`` as ``.keras`` and its JSON sidecar beside it, all or nothing."""
    path = user_path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"model path '{printable(path)}' must end in .keras")
    meta = dict(metadata or {})
    meta.setdefault("parameters", int(model.count_params()))
    text = json.dumps(meta, indent=2).encode("utf-8")
    write_files(
        {path: lambda fh: model.save(fh.name), path.with_suffix(".json"): lambda fh: fh.write(text)},
        overwrite=overwrite,
    )
    return path


def load_model(path, precision: str | None = "auto") -> keras.Model:
    """A network saved by ``train``/``save_model``; one-line ConfigError if it is not one.

    ``precision`` ("auto", "float32", "bfloat16"; ``nst_tf.precision``): what it computes in,
    whatever it was trained in (its weights are float32 either way); None keeps the saved one."""
    path = user_path(path)
    fix = "pass a .keras file written by `python -m nst_tf train`"
    if not path.is_file():
        raise ConfigError(f"model '{printable(path)}' does not exist or is not a file — {fix}")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile errors...
        raise ConfigError(f"cannot load model '{printable(path)}': {_reason(err)} — {fix}") from None
    check_signature(model, f"model '{printable(path)}'", fix)
    if precision is None:
        return model
    try:
        return with_precision(model, precision)
    except NSTError:
        raise
    except Exception as err:  # a network of other layers than build_transformer's may not clone
        raise ConfigError(
            f"cannot run model '{printable(path)}' in {printable(precision)} precision: {_reason(err)} — "
            "pass --precision float32 (precision='float32')"
        ) from None


#: The networks that ship trained: ``nst_tf.data.SHIPPED_DIR`` (``data/models``).
SHIPPED_DIR = nst_data.SHIPPED_DIR
shipped_models = nst_data.shipped_models


def shipped_model(style: str) -> Path:
    """The shipped network for ``style`` (``starry_night``, ``Starry Night`` and ``starry-night``
    alike); one-line ConfigError naming the shipped ones otherwise."""
    models = shipped_models()
    key = "_".join(str(style).strip().lower().replace("-", " ").split())
    if key in models:
        return models[key]
    raise ConfigError(
        f"no shipped network for style {printable(style)!r}: choose {', '.join(models) or '(none shipped)'}, "
        "or train one (python -m nst_tf train --style IMAGE) and pass --model"
    )


def _reason(err: BaseException) -> str:
    """An exception's first line (its type if it has no text), printable, at most 200 characters."""
    return printable(str(err).splitlines()[0] if str(err) else type(err).__name__)[:200]


def _shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in t.shape) for t in tensors]


def check_signature(model, label: str = "the model", fix: str = "pass a network made by build_transformer"):
    """Raise a one-line ConfigError unless ``model`` maps RGB images to RGB images of any size:
    one input and one output, each 4-D (batch, height, width, 3), height and width free."""
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{label} is a {type(model).__name__}, not a Keras model — {fix}")
    try:
        ins, outs = _shapes(model.inputs), _shapes(model.outputs)
    except (AttributeError, TypeError, ValueError):  # a subclassed model that was never called
        raise ConfigError(
            f"{label} has no input and output shapes (not a functional network) — {fix}"
        ) from None
    for word, shapes in (("input", ins), ("output", outs)):
        if len(shapes) != 1:
            raise ConfigError(f"{label} has {len(shapes)} {word}s, not one RGB image — {fix}")
        shape = shapes[0]
        if len(shape) != 4 or shape[-1] != 3:
            what = "takes inputs" if word == "input" else "gives outputs"
            shown = "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
            raise ConfigError(
                f"{label} {what} of shape {shown}, not RGB images (batch, height, width, 3) — {fix}"
            )
    if ins[0][1:3] != (None, None):
        raise ConfigError(
            f"{label} takes only {ins[0][1]}x{ins[0][2]} px images (HxW), but stylising needs a fully "
            f"convolutional network (any size) — {fix}"
        )


def network_width(model: keras.Model) -> int:
    """Channels of the transformer's full-resolution layers (``build_transformer``'s ``width``: its
    ``enc1`` layer), for memory estimates; for another network, its widest convolution."""
    first = next((layer for layer in model.layers if layer.name == "enc1"), None)
    if getattr(first, "filters", None):
        return int(first.filters)
    widths = [int(getattr(layer, "filters", 0) or 0) for layer in model.layers]
    return max([w for w in widths if w > 0] or [16])


# ----------------------------------------------------------------------------- stylising
#: model -> its compiled forward pass; weak, so a notebook that builds many models does not keep them all.
_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stylize(model: keras.Model, images) -> np.ndarray:
    """RGB image(s) (H, W, 3) or (N, H, W, 3) in [0, 255] -> stylised float32, same shape.

    One compiled function per model, for any size (no retracing when the size changes)."""
    runner = _RUNNERS.get(model)
    if runner is None:
        ref = weakref.ref(model)  # the function must not keep its own key alive
        runner = _RUNNERS[model] = tf.function(
            lambda x: ref()(x, training=False),
            input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
        )
    arr = np.asarray(images, np.float32)
    single = arr.ndim == 3
    out = runner(arr[None] if single else arr).numpy()
    return out[0] if single else out


def _model_info(model_path) -> dict:
    path = user_path(model_path) if model_path is not None else None
    return {"path": str(path), "sha256": _sha256(path)} if path is not None and path.is_file() else {}


def _image_sidecar(
    src: Path, model_info: dict, seconds: float, shape, extra: dict | None = None, model=None
) -> dict:
    from nst_tf.transfer import versions

    meta = {
        "kind": "nst_tf fast style transfer output",
        "model": model_info,
        "precision": None if model is None else model_precision(model),
        "input": {"path": str(src), "sha256": _sha256(src)},
        "image_size": list(shape[:2]),
        "seconds": round(seconds, 4),
        **(extra or {}),
        "versions": versions(),
    }
    return meta


def stylize_image(
    model, src, out, *, size: int | None = None, model_path=None, overwrite: bool = False
) -> Path:
    """Stylise one image file; write ``out`` (.png/.jpg) and ``out.json``. Returns ``out``.

    Refused (one-line ConfigError, before decoding where the file's header gives its size) if the
    forward pass would not fit in memory (:func:`nst_tf.resources.check_stylize_memory`)."""
    src, out = user_path(src), user_path(out)
    img = _load_within_memory(src, size, network_width(model))
    t0 = time.perf_counter()
    styled = to_uint8(stylize(model, img))
    seconds = time.perf_counter() - t0
    side = _image_sidecar(src, _model_info(model_path), seconds, styled.shape, model=model)
    return save_with_sidecar(styled, out, side, overwrite=overwrite)


def _load_within_memory(src: Path, size: int | None, width: int) -> np.ndarray:
    """``load_image(src, size)``, refused first (one-line ConfigError) if stylising it with a
    width-``width`` network would not fit in memory: from the header's size before decoding (a
    16k x 16k photo is refused unread), else from the decoded image."""
    planned = _planned_hw(src, size)
    if planned is not None:
        resources.check_stylize_memory(planned, width)
    img = load_image(src, size)
    if planned is None:
        resources.check_stylize_memory(img.shape[:2], width)
    return img


def _planned_hw(src: Path, size: int | None) -> tuple[int, int] | None:
    """(height, width) ``src`` will have once loaded at long side ``size``, from its header alone
    (no decoding); None when the header cannot tell (then the image is checked once decoded)."""
    try:
        info = image_info(src)
    except (NSTError, OSError):
        return None
    hw = (int(info["height"]), int(info["width"]))
    return scaled_size(hw, size) if size else hw


def failure_reason(err: BaseException) -> str:
    """One line for an error while stylising one input: an NSTError's own message, else what went
    wrong inside Keras/TensorFlow (type and first line, at most 200 characters)."""
    if isinstance(err, NSTError):
        return str(err)
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    first = printable(first if len(first) <= 200 else first[:197] + "...")
    return f"stylising failed ({type(err).__name__}{': ' + first if first else ''}) — check the model and the input"


def stylize_folder(
    model, folder, out_dir, *, size: int | None = None, batch_size: int = 4, model_path=None,
    overwrite: bool = False, progress: bool | None = None, outputs: dict | None = None,
) -> FolderReport:  # fmt: skip
    """Stylise every image in ``folder`` (and below) into ``out_dir`` (same relative names, .png;
    two inputs that would share a name, ``a.jpg`` and ``a.png``, become ``a.png`` and ``a-2.png``:
    :func:`nst_tf.files.unique_names`), ``batch_size`` images of equal size per forward pass (fewer
    where that many would not fit in memory). A file that cannot be read, stylised or written is
    reported in ``FolderReport.failed`` and skipped; every other file is still produced.

    ``outputs`` ({image: output path}): the images to stylise and where each goes, in order, instead
    of every image below ``folder`` named as above (``stylize`` with several inputs names them all
    with one rule)."""
    folder, out_dir = user_path(folder), user_path(out_dir)
    if outputs is None:
        paths = nst_data.images_below(folder)
        rels = unique_names([p.relative_to(folder).with_suffix(".png") for p in paths])
        outputs = {p: out_dir / rel for p, rel in zip(paths, rels)}
    paths = [Path(p) for p in outputs]
    targets = {Path(p): Path(o) for p, o in outputs.items()}
    report, info = FolderReport(total=len(paths)), _model_info(model_path)
    width = network_width(model)
    t0 = time.perf_counter()
    pending: list[tuple[Path, np.ndarray]] = []

    def flush():
        if not pending:
            return
        t = time.perf_counter()
        try:
            styled = stylize(model, np.stack([img for _, img in pending]))
        except Exception as err:  # noqa: BLE001 - the model on these images: report them, go on
            for src, _ in pending:
                report.failed[str(src)] = failure_reason(err)
            pending.clear()
            return
        seconds = (time.perf_counter() - t) / len(pending)
        for (src, _), img in zip(pending, styled):
            out = targets[src]
            try:
                img8 = to_uint8(img)
                side = _image_sidecar(src, info, seconds, img8.shape, {"batch": len(pending)}, model)
                save_with_sidecar(img8, out, side, overwrite=overwrite)
                report.written.append(out)
            except NSTError as err:
                report.failed[str(src)] = str(err)
        pending.clear()

    for src in progress_bar(desc="stylize", enabled=progress, iterable=paths):
        try:
            img = _load_within_memory(src, size, width)
        except (NSTError, OSError) as err:
            report.failed[str(src)] = str(err)
            continue
        fits = max(1, min(batch_size, resources.largest_stylize_batch(img.shape[:2], width)))
        if pending and (img.shape != pending[0][1].shape or len(pending) >= fits):
            flush()
        pending.append((src, img))
    flush()
    report.seconds = time.perf_counter() - t0
    return report


def flicker(frames) -> float:
    """Mean absolute difference between consecutive frames, grey levels (0 for a still video)."""
    prev, total, n = None, 0.0, 0
    for frame in frames:
        frame = np.asarray(frame, np.float32)
        if prev is not None:
            total += float(np.mean(np.abs(frame - prev)))
            n += 1
        prev = frame
    return total / max(n, 1)


def stylize_video(
    model, src, out, *, size: int | None = None, blend: float = 0.0, model_path=None, overwrite: bool = False
) -> dict:
    """Stylise a video frame by frame (imageio + imageio-ffmpeg) at the source frame rate.

    ``blend`` in [0, 1) mixes each output with the previous one (``out_t = (1 - blend) f(x_t)
    + blend out_{t-1}``): a cheap flicker filter that trails moving edges. Odd frame sides are
    cut by one pixel (H.264 needs even ones). Returns the sidecar's dict, with the flicker (mean
    absolute frame-to-frame difference) of the input and of the output.
    """
    import imageio.v2 as iio

    src, out = user_path(src), user_path(out)
    if not 0 <= blend < 1:
        raise ConfigError(f"blend must be in [0, 1), got {blend!r}")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".avi"):
        raise ConfigError(f"video output '{printable(out)}' must end in .mp4, .mov, .mkv or .avi")
    try:
        reader = iio.get_reader(src, format="FFMPEG")
        video = reader.get_meta_data()
        fps, frame_wh = float(video.get("fps") or 25.0), video.get("size")
    except Exception as err:
        raise ImageError(f"cannot read video '{printable(src)}': {printable(err)} — check the file") from None
    try:
        hw = (int(frame_wh[1]), int(frame_wh[0]))
    except (TypeError, ValueError, IndexError):
        hw = None
    if hw is not None and min(hw) > 0:  # one frame per pass: refused before any frame is decoded
        try:
            resources.check_stylize_memory(scaled_size(hw, size) if size else hw, network_width(model))
        except ConfigError:
            reader.close()
            raise
    stats = {"frames": 0, "input_diff": 0.0, "output_diff": 0.0}
    t0 = time.perf_counter()

    def write(fh):
        writer = iio.get_writer(fh.name, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                macro_block_size=1, pixelformat="yuv420p")  # fmt: skip
        prev_in = prev_out = None
        try:
            for frame in reader:
                frame = load_image(np.asarray(frame), size)
                h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
                frame = frame[:h, :w]
                styled = stylize(model, frame)
                if prev_out is not None and blend > 0:
                    styled = (1 - blend) * styled + blend * prev_out
                styled8 = to_uint8(styled)
                if prev_in is not None:
                    stats["input_diff"] += float(np.mean(np.abs(frame - prev_in)))
                    stats["output_diff"] += float(np.mean(np.abs(styled8.astype(np.float32) - prev_out)))
                writer.append_data(styled8)
                prev_in, prev_out = frame, styled8.astype(np.float32)
                stats["frames"] += 1
        finally:
            writer.close()
            reader.close()
        if stats["frames"] == 0:
            raise ImageError(f"video '{printable(src)}' has no frames")

    meta: dict = {}

    def write_meta(fh):
        from nst_tf.transfer import versions

        meta.update(
            kind="nst_tf fast style transfer video",
            model=_model_info(model_path),
            precision=model_precision(model),
            input={"path": str(src), "sha256": _sha256(src)},
            fps=fps,
            frames=stats["frames"],
            blend=blend,
            flicker_input=round(stats["input_diff"] / max(stats["frames"] - 1, 1), 4),
            flicker_output=round(stats["output_diff"] / max(stats["frames"] - 1, 1), 4),
            seconds=round(time.perf_counter() - t0, 3),
            versions=versions(),
        )
        fh.write(json.dumps(meta, indent=2).encode("utf-8"))

    write_files({out: write, out.with_suffix(".json"): write_meta}, overwrite=overwrite)
    return meta


# ----------------------------------------------------------------------------- evaluation
def evaluate(model_or_image, photo, config: TrainConfig, size: int) -> float:
    """Loss of a stylised ``photo`` at long side ``size`` under *the* transfer objective
    (``nst_tf.transfer.loss_at`` with this config's layers and weights, in float32): the number an
    L-BFGS run of ``transfer_style`` with the same settings reports, so the two compare.

    ``model_or_image``: a network (applied to the photo) or an already stylised image."""
    from nst_tf import transfer

    cfg = transfer_config(config, size)
    image = model_or_image
    if isinstance(model_or_image, keras.Model):
        content = transfer.load_inputs(cfg, photo, [config.style]).content
        image = stylize(model_or_image, resize_image(content, size=scaled_size(content.shape, size)))
    return transfer.loss_at(cfg, image, photo, [config.style])


#: The bar a network must clear against the default transfer on held-out photos (issue #23.3):
#: SSIM and edge correlation with the photo at least 0.9x the transfer's, style distance at most 1.5x.
BAR = {"ssim": 0.9, "edge_correlation": 0.9, "style_distance": 1.5}


def compare_with_transfer(model, config: TrainConfig, photo, size: int = 256) -> dict:
    """Does the network do more than recolour? Its output on ``photo`` (long side ``size``) beside the
    default transfer's (``transfer_style`` with ``Config``'s defaults at ``size``, same painting):
    SSIM and edge correlation with the photo and style distance to the painting
    (:func:`nst_tf.metrics.report`, the calibration's measures) and the loss under the network's own
    objective (:func:`evaluate`), for both; the ratios network / transfer and whether they clear
    :data:`BAR`. Returns ``{"network", "transfer", "ratio", "meets_bar", "images", "seconds"}``."""
    from nst_tf import metrics
    from nst_tf.transfer import transfer_style

    path = nst_data.resolve_image(photo, "content") if isinstance(photo, (str, os.PathLike)) else photo
    image = load_image(path) if isinstance(path, (str, os.PathLike)) else np.asarray(photo, np.float32)
    image = resize_image(image, size=scaled_size(image.shape, size))
    painting = load_image(nst_data.resolve_image(config.style, "style"))
    stylize(model, image)  # the first call traces; leave it out of the time
    t = time.perf_counter()
    net = stylize(model, image)
    net_s = time.perf_counter() - t
    run = transfer_style(
        image, config.style, config=Config(size=size, weights=config.weights), progress=False
    )
    out = {"images": {"network": net, "transfer": run.image}, "seconds": {}}
    out["seconds"] = {"network": net_s, "transfer": run.timings["total_s"]}
    for key, result in out["images"].items():
        out[key] = metrics.report(result, image, painting) | {"loss": evaluate(result, image, config, size)}
    out["ratio"] = {k: out["network"][k] / max(out["transfer"][k], 1e-12) for k in BAR}
    r = out["ratio"]
    out["meets_bar"] = bool(
        r["ssim"] >= BAR["ssim"]
        and r["edge_correlation"] >= BAR["edge_correlation"]
        and r["style_distance"] <= BAR["style_distance"]
    )
    return out


def check_size(config: TrainConfig) -> int:
    """The long side a network is checked at: the painting's size in training (crop x
    ``style_scale``), where its strokes have the scale the network learnt; at least 64 px."""
    return max(64, round(config.size * config.style_scale))


def check_network(model, config: TrainConfig, size: int | None = None) -> dict:
    """:func:`compare_with_transfer` on each bundled held-out photo at ``size`` (default
    :func:`check_size`): ``{photo: {network, transfer, ratio, meets_bar, seconds}}`` (no images)."""
    size = size or check_size(config)
    out = {}
    for path in _held_out_paths():
        row = compare_with_transfer(model, config, path, size)
        row.pop("images")
        out[path.stem] = row | {"size": size}
    return out


def transfer_config(config: TrainConfig, size: int, **changes) -> Config:
    """The ``Config`` of an optimisation-based transfer with the same objective as ``config``."""
    return Config(
        content_layers=dict(config.content_layers), style_layers=dict(config.style_layers),
        content_weight=config.content_weight, style_weight=config.style_weight, tv_weight=config.tv_weight,
        style_scale=config.style_scale, pooling=config.pooling, weights=config.weights, size=size,
    ).replace(**changes)  # fmt: skip
