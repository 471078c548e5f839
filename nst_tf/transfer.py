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

import hashlib
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from nst_tf import color, resources
from nst_tf._version import __version__
from nst_tf.animation import animation_writer
from nst_tf.config import Config
from nst_tf.errors import ConfigError, ImageError
from nst_tf.files import atomic_write, printable, user_path, write_files
from nst_tf.images import deprocess, image_writer, load_image, preprocess, resize_image
from nst_tf.losses import gram_matrix
from nst_tf.models import build_extractor, get_weights
from nst_tf.optimize import History, make_objective, optimize
from nst_tf.vgg19 import CONV_LAYERS, min_input_side

__all__ = ["Result", "transfer_style", "synthesize_texture", "reconstruct_content", "run"]


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
        writers = {path: image_writer(self.image, path)}
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
        writers[path.with_suffix(".json")] = lambda fh: fh.write(_json_bytes(meta))
        try:
            write_files(writers, overwrite=overwrite)
        except _SkipAnimation:
            err = failed[0]
            meta["animation_error"] = f"{type(err).__name__}: {err}"
            del writers[anim]
            write_files(writers, overwrite=overwrite)
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
    text = _json_bytes(data)
    return atomic_write(path, lambda fh: fh.write(text), overwrite=overwrite)


def _json_bytes(data: dict) -> bytes:
    return json.dumps(data, indent=2, default=_json_default).encode("utf-8")


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


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


def _scaled_size(shape, long_side: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


# ----------------------------------------------------------------------------- core
def run(config: Config, content=None, styles=(), *, progress: bool | None = None, callback=None) -> Result:
    """Run ``config`` on a content image and/or style images (already loaded or by name)."""
    config.validate()
    t0 = time.perf_counter()
    keras_seed(config.seed)
    styles = list(styles)
    uses_content = config.task != "texture" and config.content_weight > 0
    uses_style = config.task != "reconstruct" and config.style_weight > 0
    if uses_content and content is None:
        raise ConfigError("this run needs a content image: pass one (CLI: --content NAME_OR_PATH)")
    if uses_style and not styles:
        raise ConfigError("this run needs a style image: pass one (CLI: --style NAME_OR_PATH)")
    if content is None and not styles:
        raise ConfigError("no images given: pass a content and/or a style image")
    blend = _blend_weights(config, len(styles))  # before loading anything
    content_img = _load(content) if content is not None else None
    style_imgs = [_load(s) for s in styles]
    inputs = {}
    if content is not None:
        inputs["content"] = _describe_input(content)
    if styles:
        inputs["styles"] = [_describe_input(s) for s in styles]

    reference = content_img if content_img is not None else style_imgs[0]
    full_hw = _scaled_size(reference.shape, config.size)
    content_layers = dict(config.content_layers) if uses_content else {}
    style_layers = dict(config.style_layers) if uses_style else {}
    layers = list(content_layers) + [k for k in style_layers if k not in content_layers]
    if not layers:
        raise ConfigError("nothing to optimise: give a positive content_weight or style_weight")
    min_side = min_input_side(layers)
    if min(full_hw) < min_side:
        needed = config.size
        while min(_scaled_size(reference.shape, needed)) < min_side:
            needed += 1
        raise ConfigError(
            f"{_label(content if content is not None else styles[0])} would be {full_hw[1]}x{full_hw[0]} px "
            f"(WxH) at size={config.size}, too small for layer(s) up to {max(layers, key=CONV_LAYERS.index)}, "
            f"which need a short side of at least {min_side} px: use size >= {needed} (CLI --size) "
            "or shallower layers"
        )
    resources.check_memory(full_hw, layers)
    if style_layers:
        for img in style_imgs:
            resources.check_memory(
                _style_hw(img.shape, max(full_hw) * config.style_scale, min_side),
                list(style_layers),
                fix=f"lower style_scale (CLI --style-scale) below {config.style_scale:g} so that the style "
                "image is at most {side} px on its long side",
            )

    # colour preservation works on the inputs (histogram) or on luminance (see nst_tf.color)
    if config.preserve_color == "histogram" and content_img is not None:
        style_imgs = [color.match_color(s, content_img) for s in style_imgs]
    if config.preserve_color == "luminance" and content_img is not None:
        content_full = content_img
        style_imgs = [color.to_luminance(s, content_img) for s in style_imgs]
        content_img = color.to_luminance(content_img)

    extractor = build_extractor(
        layers, pooling=config.pooling, activation=config.activation, weights=config.weights
    )
    _, weights_info = get_weights(config.weights)  # the same cache entry the extractor was built from
    # targets through one compiled function: its first call at a new size costs ~0.8 s less than an
    # eager call (measured at 512 px), and every stage needs one or two new sizes
    features = tf.function(lambda batch: extractor(batch, training=False), reduce_retracing=True)
    history, frames = History(), []
    stage_timings = []
    x = None
    stopped = "completed"
    steps_done = evals_done = 0
    elapsed = 0.0
    stages = [
        (s, n)
        for s, n in config.stages()
        if min(_scaled_size(reference.shape, round(config.size * s))) >= min_side
    ]
    final_terms = {}
    for scale, steps in stages:
        hw = _scaled_size(reference.shape, round(config.size * scale)) if scale < 1 else full_hw
        try:
            t_targets = time.perf_counter()
            c_targets = s_targets = None
            if content_layers:
                c_in = preprocess(resize_image(content_img, size=hw))
                feats = features(c_in)
                c_targets = {k: feats[k].numpy() for k in content_layers}
            if style_layers:
                s_targets = _style_targets(
                    features, style_imgs, blend, style_layers, max(hw) * config.style_scale, min_side
                )
            targets_s = time.perf_counter() - t_targets
            x0 = _initial(config, x, hw, content_img, style_imgs)
            objective = make_objective(
                extractor,
                content_targets=c_targets,
                style_targets=s_targets,
                content_layers=content_layers,
                style_layers=style_layers,
                content_weight=config.content_weight,
                style_weight=config.style_weight,
                tv_weight=config.tv_weight,
            )
        except KeyboardInterrupt:
            if x is None:  # no stage finished: nothing to return
                raise
            stopped = "interrupted"  # between stages: keep the previous stage's image
            break
        result = optimize(
            objective,
            x0,
            steps=steps,
            optimizer=config.optimizer,
            learning_rate=config.learning_rate,
            lr_decay=config.lr_decay,
            frame_every=config.frame_every,
            progress=progress,
            desc=f"{config.task} {hw[1]}x{hw[0]}",
            callback=callback,
        )
        history.extend(result.history, steps_done, elapsed, evals_done)
        frames += [f if f.shape[:2] == full_hw else _to_size(f, full_hw) for f in result.frames]
        steps_done += len(result.history.step)
        evals_done += result.evaluations
        elapsed += result.seconds + targets_s
        stage_timings.append(
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
        x = result.image
        final_terms = {k: v[-1] for k, v in result.history.terms.items()}
        final_terms["total"] = result.loss
        if result.stopped != "completed":
            stopped = result.stopped
            break

    if stopped != "completed":
        warnings.warn(stop_message(stopped, steps_done, config), RuntimeWarning, stacklevel=3)
    image = deprocess(x)
    if config.preserve_color == "luminance" and content is not None:
        image = color.combine_luminance(image, resize_image(content_full, size=image.shape[:2]))
    timings = {
        "total_s": round(time.perf_counter() - t0, 3),
        "optimise_s": round(sum(s["optimise_s"] for s in stage_timings), 3),
        "stages": stage_timings,
    }
    return Result(
        image=np.clip(np.round(image), 0, 255).astype(np.uint8),
        history=history,
        config=config,
        timings=timings,
        frames=frames,
        stopped=stopped,
        weights=weights_info,
        inputs=inputs,
        final_losses=final_terms,
        driver=result.driver,
    )


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


def _style_targets(features, style_imgs, blend, style_layers, long_side, min_side) -> dict:
    """Gram matrices of each style image (resized to ``long_side``), blended with weights."""
    targets = {k: 0.0 for k in style_layers}
    for img, w in zip(style_imgs, blend):
        hw = _style_hw(img.shape, long_side, min_side)
        feats = features(preprocess(resize_image(img, size=hw)))
        for k in style_layers:
            targets[k] = targets[k] + w * gram_matrix(feats[k]).numpy()
    return targets


def _style_hw(shape, long_side, min_side) -> tuple[int, int]:
    """Size of a style image with ``long_side`` px, enlarged until its short side is >= ``min_side``."""
    side = max(min_side, int(round(long_side)))
    while min(_scaled_size(shape, side)) < min_side:  # elongated style: enlarge until the layers fit
        side += 1
    return _scaled_size(shape, side)


def _to_size(frame, hw):
    return np.clip(np.round(resize_image(frame.astype(np.float32), size=hw)), 0, 255).astype(np.uint8)


def _initial(config: Config, previous, hw, content_img, style_imgs) -> np.ndarray:
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
    content, style, config: Config | None = None, *, progress=None, callback=None, **overrides
) -> Result:
    """Paint ``content`` in the style of ``style`` (one image, or a list to blend).

    ``overrides`` are ``Config`` fields, e.g. ``style_weight=1e-1, size=256``.
    """
    config = _settings(config, "transfer", overrides)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    return run(config, content, styles, progress=progress, callback=callback)


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
