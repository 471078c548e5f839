"""Training the fast networks (notebook 05; ``python -m nst_tf train``).

* ``PerceptualLoss``: the objective of ``nst_tf.optimize`` (``objective_data`` +
  ``loss_from_features``) with the content targets of the batch itself.
* ``train``: a ``tf.GradientTape`` step run under a ``tf.distribute`` strategy (one device by
  default, ``MirroredStrategy`` across GPUs, ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is
  set), photos from the training pool (``nst_tf.datasets``), periodic all-or-nothing checkpoints,
  Ctrl-C keeps the last one, ``resume=True`` continues exactly where it stopped (the data stream
  included), validation strips and a loss curve.
* ``evaluate`` / ``compare_with_transfer`` / ``check_network``: the network against the
  optimisation-based transfer on one objective and by the calibration's measures.

Multi-worker training: on every machine set ``TF_CONFIG`` (a JSON string) before starting
``python -m nst_tf train``, e.g. on worker 0 of two::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'

and ``"index": 1`` on the other; ``--batch-size`` is the global batch, split across all replicas.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nst_tf import data as nst_data
from nst_tf import datasets, optimize, resources
from nst_tf import precision as precisions
from nst_tf.config import Config
from nst_tf.errors import ConfigError
from nst_tf.fast_config import TrainConfig
from nst_tf.files import (
    atomic_write,
    printable,
    progress_bar,
    restore_signal_handlers,
    set_signal_handlers,
    user_path,
)
from nst_tf.images import (
    load_image,
    preprocess,
    resize_image,
    save_image,
    scaled_size,
)
from nst_tf.losses import gram_matrix
from nst_tf.models import build_extractor, get_weights
from nst_tf.networks import (
    FORMAT,
    build_transformer,
    save_model,
    stylize,
)
from nst_tf.vgg19 import min_input_side

__all__ = [
    "BAR",
    "HELD_OUT",
    "PerceptualLoss",
    "TRAIN_BUNDLED",
    "TrainConfig",
    "TrainResult",
    "VALIDATION_SIDE",
    "check_network",
    "check_size",
    "checkpoint_path",
    "compare_with_transfer",
    "default_strategy",
    "distributed_step",
    "evaluate",
    "fit",
    "make_train_step",
    "photo_dataset",
    "read_checkpoint",
    "resume_state",
    "train",
    "training_photos",
    "transfer_config",
    "validation_dir",
]

#: Bundled photos kept out of training: the held-out set of notebook 05 and benchmarks/fast.py.
HELD_OUT = datasets.HELD_OUT
#: Bundled content photos used for training (with every image in data/src/train/).
TRAIN_BUNDLED = datasets.TRAIN_BUNDLED


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

    return distributed_step(replica_step, strategy)


def distributed_step(replica_step, strategy):
    """The compiled ``step(batch, seed) -> (loss, {term: value})`` of every trainer: ``replica_step``
    on each replica's share of the batch (``strategy.run``), its loss and terms summed over the
    replicas (each is already divided by the global batch, so the sum is the global mean)."""

    @tf.function
    def step(batch, seed):
        loss, terms = strategy.run(replica_step, args=(batch, seed))
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

    #: The loss terms of each history row, after the step and the total (:func:`fit` records them).
    TERMS = ("content", "style", "tv")

    def run_metadata(self) -> dict:
        """What the sidecar of every trained network records of its run (the fast networks', the
        decoder's of :mod:`nst_tf.arbitrary`): steps, why it stopped, the last loss and its terms,
        the history, the loss curve, timings, strategy, size, VGG19 weights, precision, versions."""
        from nst_tf.transfer import versions

        last = (
            dict(zip(("loss", *self.TERMS), self.history[-1][1 : 2 + len(self.TERMS)]))
            if self.history
            else {}
        )
        return {
            "steps_done": self.steps_done,
            "stopped": self.stopped,
            "loss": last,
            "history": [[round(v, 6) for v in row] for row in self.history],
            "loss_curve": self.loss_curve,
            "timings": {"total_s": round(self.seconds, 2), "images_per_s": round(self.images_per_s, 3)},
            "strategy": self.strategy,
            "parameters": int(self.model.count_params()),
            "weights": self.weights,
            "precision": self.precision,
            "versions": versions(),
        }

    def metadata(self) -> dict:
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
            "validation": {
                "folder": validation_dir(self.path).name if self.path else None,
                "photos": [p.stem for p in _held_out_paths()] if self.validation else [],
                "long_side": VALIDATION_SIDE,
                "strips": self.validation,
            },
            **self.run_metadata(),
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


def resume_state(output, config, config_type, where: str) -> tuple:
    """(config, step, history, arrays) to continue the training whose checkpoint is beside
    ``output``: its saved settings (``config_type.from_dict``), with ``config.steps`` as the new
    total when ``config`` is given. ``where``: how the caller names ``output`` in the error."""
    if output is None:
        raise ConfigError(f"resume needs the model path whose checkpoint to continue ({where})")
    meta, arrays = read_checkpoint(checkpoint_path(output))
    saved = config_type.from_dict(meta["config"])
    config = saved.replace(steps=config.steps if config else saved.steps)
    return config, int(meta["step"]), [list(r) for r in meta["history"]], arrays


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
    outs = [np.clip(stylize(model, p), 0, 255) for p in photos]  # an early decoder strays far
    height = max(p.shape[0] for p in photos)
    pad = [np.pad(im, ((0, height - im.shape[0]), (0, 2), (0, 0)), constant_values=255) for im in photos]
    top = np.concatenate(pad, 1)
    bottom = np.concatenate(
        [np.pad(o, ((0, height - o.shape[0]), (0, 2), (0, 0)), constant_values=255) for o in outs], 1
    )
    return save_image(np.concatenate([top, bottom], 0), path, quality=90)


def _loss_curve(history: list, path: Path, labels=("loss", "content", "style", "tv")) -> Path:
    """The training loss and its terms (``labels``) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = np.asarray([r[: len(labels) + 1] for r in history], np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for i, label in enumerate(labels, start=1):
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
        config, start, history, arrays = resume_state(output, config, TrainConfig, "--output M.keras")
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
    writes = output is not None and _is_chief(strategy)
    val_photos = _validation_photos() if writes and config.validate_every else []
    validate = None
    if val_photos:
        val_dir = validation_dir(output)

        def validate(model, step):
            return _validation_strip(model, val_photos, val_dir / f"step-{step:06d}.jpg").name

    return fit(
        result, step_fn, ds, optimizer, strategy=strategy, output=output, progress=progress,
        callback=callback, validate=validate, manifest={"style": result.style["name"]},
    )  # fmt: skip


def fit(
    result: TrainResult, step_fn, ds: tf.data.Dataset, optimizer, *, strategy, output=None,
    progress: bool | None = None, callback=None, validate=None, manifest: dict | None = None,
) -> TrainResult:  # fmt: skip
    """The loop every trainer of the project shares (the fast networks here, the decoder of
    :mod:`nst_tf.arbitrary`): ``step_fn(batch, seed) -> (loss, {term: value})`` (the terms ``result.TERMS``) from
    :func:`make_train_step` on each batch of ``ds`` (distributed by ``strategy``) from step
    ``result.steps_done`` to ``result.config.steps``; a row ``[step, loss, *terms, seconds]`` per step
    in ``result.history``; a non-finite loss stops it; a checkpoint every ``checkpoint_every`` steps
    and at the end (all or nothing), ``validate(model, step)`` every ``validate_every`` steps, Ctrl-C
    keeps the last checkpoint. With ``output`` (on the chief worker), the end writes the checkpoint,
    the data manifest (``manifest``: what it adds), the loss curve and the model with
    ``result.metadata()`` as its sidecar, a second Ctrl-C notwithstanding."""
    config, model, history, terms = result.config, result.model, result.history, result.TERMS
    start = result.steps_done
    batches = iter(strategy.experimental_distribute_dataset(ds))
    writes = output is not None and _is_chief(strategy)  # one writer among the workers
    ckpt = checkpoint_path(output) if writes else None
    every = getattr(config, "validate_every", 0) if validate is not None else 0
    bar = progress_bar(config.steps, desc="train", initial=start, enabled=progress)
    # a resumed run continues the clock of the runs before it (the history's last time)
    earlier_s = float(history[-1][-1]) if history else 0.0
    t0, images = time.perf_counter(), 0
    try:
        for step in range(start, config.steps):
            batch = next(batches)
            seed = tf.constant([config.seed, step], tf.int64)
            loss, values = step_fn(batch, seed)
            row = [step + 1, float(loss), *(float(values[k]) for k in terms)]
            if not np.isfinite(row[1]):
                result.stopped = "nonfinite"
                break
            result.steps_done, images = step + 1, images + config.batch_size
            history.append(row + [round(earlier_s + time.perf_counter() - t0, 3)])
            rate = images / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{row[1]:.3g}", img_s=f"{rate:.2f}")
            if ckpt is not None and (step + 1) % config.checkpoint_every == 0:
                _save_checkpoint(ckpt, model, optimizer, step + 1, config, history)
            if every and (step + 1) % every == 0:
                result.validation.append(validate(model, step + 1))
            if callback is not None:
                callback(step + 1, row[1])
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    finally:
        bar.close()
    run_s = time.perf_counter() - t0
    result.seconds = earlier_s + run_s  # every run of this training together
    done = result.steps_done * config.batch_size
    result.images_per_s = (images / run_s if images else done / result.seconds) if run_s > 0 else 0.0
    if writes:
        previous = set_signal_handlers(signal.SIG_IGN)  # a second Ctrl-C must not cut the save short
        try:
            if result.stopped != "nonfinite":
                _save_checkpoint(ckpt, model, optimizer, result.steps_done, config, history)
            result.path = Path(output)
            if result.pool is not None:
                datasets.write_manifest(output, result.pool, **(manifest or {}))
            if history:
                curve = _loss_curve(history, result.path.with_suffix(".loss.png"), ("loss", *terms))
                result.loss_curve = curve.name
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
