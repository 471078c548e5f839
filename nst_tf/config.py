"""Settings of one run, as a dataclass that round-trips to JSON (notebook 03).

Every output image gets a sidecar with ``Config.to_dict()``, so
``Config.from_dict(json.load(f))`` re-creates the run that made it.
``Config.validate()`` checks everything before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field

from nst_tf import files
from nst_tf.errors import ConfigError
from nst_tf.precision import PRECISIONS
from nst_tf.vgg19 import ACTIVATIONS, POOLINGS, check_layers

OPTIMIZERS = ("lbfgs", "adam", "sgd")
INITS = ("content", "style", "noise")
COLOR_MODES = ("none", "luminance", "histogram")
TASKS = ("transfer", "reconstruct", "texture")
#: How several style images combine: "blend" mixes their Gram targets at every layer (style_blend);
#: "scale" takes the coarse structure from the first and the fine texture from the second (notebook 04).
STYLE_MIXES = ("blend", "scale")

#: Gatys et al.'s style layers: the first conv of each block, equally weighted.
DEFAULT_STYLE_LAYERS = {f"block{b}_conv1": 1.0 for b in range(1, 6)}
#: Gatys et al.'s content layer (conv4_2).
DEFAULT_CONTENT_LAYERS = {"block4_conv2": 1.0}

#: Upper bounds (issue #13.6): far past any sensible run, low enough that nothing overflows.
#: 100,000 full-size steps at 512 px take about two days on a 2-core CPU.
MAX_STEPS = 100_000
#: Long side in pixels: only against overflow; the memory check (nst_tf.resources) refuses far
#: less, with a message naming the largest size that fits.
MAX_SIZE = 65_536
#: Learning rate, lr_decay and style_scale (pixel units; KNOWN_GOOD's SGD rate scales with pixels).
MAX_RATE = 1e6
MAX_STYLE_SCALE = 100.0
#: Coarse-to-fine stages before the full-size one.
MAX_STAGES = 16

#: Known-good settings per optimiser, measured (benchmarks/README.md, "Learning rates and TV weights
#: (session 4)": 128 px, 100 steps, two bundled pairs, lowest final loss among the rates that converged
#: on both; SGD at 2 x pixels already diverged on one of them). Adam's
#: learning rate is in grey levels per step at any size; SGD's is ``lr_per_pixel`` times the number
#: of pixels of the generated image (its step is lr x gradient, and the gradient of a mean shrinks as
#: 1/pixels), used with ``lr_decay``. ``learning_rate=None`` in a Config means these values.
KNOWN_GOOD = {
    "lbfgs": {"learning_rate": None, "steps": 100},
    "adam": {"learning_rate": 16.0, "steps": 400},
    "sgd": {"learning_rate": None, "lr_per_pixel": 1.0, "lr_decay": 0.1, "steps": 400},
}


#: How texture synthesis and content reconstruction differ from Config's (transfer) defaults:
#: they start from noise at full size (no coarse stage), so they need more full-size steps. A whisper
#: of TV (1e-5) removes the pixel noise that ReLU features cannot see (notebook 01).
#: Texture: with no content term only tv_weight / style_weight matters, and notebook 02 measured
#: tv_weight 3e-6 at style_weight 1 (exercise 02.3). Style weight 1 against the 10 used before, at 192 px,
#: 100 L-BFGS steps, seed 0 (the result's own TV, mean squared RGB neighbour difference; relative style
#: loss): starry_night 3583 vs 10246 (0.065 vs 0.066), hubble_deep_field 2808 vs 4414 (0.053 vs 0.057),
#: gravel 3926 vs 12965 (0.0055 vs 0.0045); the sources' own TV is 1840, 813 and 1946. In bfloat16
#: (precision auto, 2-core AMD EPYC); float32, starry_night: 3321 vs 10210 (0.068 vs 0.070).
TASK_DEFAULTS = {
    "transfer": {},
    "texture": dict(  # style_weight 1 (the style term is the relative style loss) with tv_weight 3e-6
        content_weight=0.0,
        content_layers={},
        style_weight=1.0,
        init="noise",
        tv_weight=3e-6,
        pyramid=(),
        steps=100,
    ),  # fmt: skip
    "reconstruct": dict(
        style_weight=0.0, style_layers={}, init="noise", tv_weight=1e-5, pyramid=(), steps=100
    ),
}


def _setting(default, help: str, *, choices=None, cli=TASKS, flag=None):
    """A Config field with its one-line ``help``; ``cli``: the commands with a flag for it, named
    ``--field-name`` unless ``flag`` (a name, or ``{command: name}``) says otherwise."""
    metadata = {"help": help, "choices": choices, "cli": cli, "flag": flag}
    if isinstance(default, dict):  # mutable: each Config gets its own copy
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Config:
    """All knobs of a style transfer, texture synthesis or content reconstruction.

    Weights: the loss is ``content_weight * L_c + style_weight * L_s + tv_weight * L_tv``
    with the mean-based terms of ``nst_tf.losses``. Size is the long side of the
    generated image in pixels. ``pyramid`` lists ``(scale, steps)`` stages run
    before the ``steps`` at full size (coarse-to-fine, written out in notebook 03).

    The default schedule (20 L-BFGS steps at half size, then 10 at full size)
    was chosen by measurement (benchmarks/README.md). The half-size stage lays
    out the painting's large structures (swirls, strokes) at the scale they have
    in the painting; the full-size steps restore sharp detail. The default
    style weight, 3, was calibrated on 12 content x style pairs
    (benchmarks/results/calibration.md, issue #16): with 10 (the default before,
    and notebooks 03-05's setting) the painting took over the photo's outlines on
    one pair of the 12; with 3 they survived on all 12, and the results are as
    close to the paintings' style statistics (median style distance 0.199 vs
    0.192). For a closer fit to the style, raise ``steps`` or ``style_weight``.
    """

    # Each field's help is its one-line comment and the CLI's --help text for its flag (nst_tf.cli
    # builds the flags, choices and defaults from these fields); `cli` names the commands that have it.
    task: str = _setting("transfer", "what to make: transfer, reconstruct or texture", choices=TASKS, cli=())
    content_layers: dict[str, float] = _setting(
        DEFAULT_CONTENT_LAYERS,
        "content layer(s) and weights, e.g. block4_conv2 or block3_conv2:1,block4_conv2:2",
        cli=("transfer", "reconstruct"), flag={"reconstruct": "--layer"},
    )  # fmt: skip
    style_layers: dict[str, float] = _setting(
        DEFAULT_STYLE_LAYERS, "style layers and weights, e.g. block1_conv1,block2_conv1:0.5",
        cli=("transfer", "texture"), flag={"texture": "--layers"},
    )  # fmt: skip
    content_weight: float = _setting(1.0, "weight of the content loss", cli=("transfer",))
    style_weight: float = _setting(
        3.0,
        "weight of the style loss (higher = more stylised; useful range 1-1000)",
        cli=("transfer",),
    )
    tv_weight: float = _setting(
        1e-4,
        "total-variation weight: smooths pixel noise (each task's default is its recommendation)",
    )
    optimizer: str = _setting("lbfgs", "lbfgs (fastest), adam or sgd", choices=OPTIMIZERS)
    learning_rate: float | None = _setting(
        None,
        f"adam/sgd step size in pixel units (default: adam {KNOWN_GOOD['adam']['learning_rate']:g}; "
        f"sgd {KNOWN_GOOD['sgd']['lr_per_pixel']:g} x pixels, best with lr_decay {KNOWN_GOOD['sgd']['lr_decay']:g})",
        flag="--lr",
    )
    lr_decay: float = _setting(
        1.0, "learning-rate multiplier reached at the last step for adam/sgd (1 = constant)"
    )
    steps: int = _setting(10, "optimiser steps at full size, after the pyramid's coarse stages")
    pyramid: tuple[tuple[float, int], ...] = _setting(
        ((0.5, 20),), "coarse-to-fine (scale, steps) stages before full size: scale:steps,... or 'none'"
    )
    init: str = _setting("content", "starting image", choices=INITS, cli=("transfer",))
    size: int = _setting(512, "long side of the result in pixels")
    style_scale: float = _setting(
        1.0, "style image size relative to the generated image (<1 = finer brush strokes)", cli=("transfer",)
    )
    style_blend: tuple[float, ...] | None = _setting(
        None, "one weight per style image, e.g. 0.7 0.3 (none: equal)", cli=("transfer", "texture")
    )
    style_mix: str = _setting(
        "blend",
        "several styles: blend their Gram targets, or scale (first: coarse structure, second: fine texture)",
        choices=STYLE_MIXES, cli=(),
    )  # fmt: skip
    preserve_color: str = _setting(
        "none", "keep the content's colours: luminance-only transfer, or the style recoloured (histogram)",
        choices=COLOR_MODES, cli=("transfer",),
    )  # fmt: skip
    pooling: str = _setting("max", "VGG19 pooling", choices=POOLINGS)
    activation: str = _setting(
        "relu", "features from the ReLU outputs or the raw convolutions", choices=ACTIVATIONS, cli=()
    )
    seed: int = _setting(0, "random seed (noise start, Keras)")
    frame_every: int = _setting(
        0, "keep a frame every N steps for the animation (0 = none; 5 with --animation)"
    )
    weights: str | None = _setting(
        None, "VGG19 weights .h5 file, or 'random' (none: resolved automatically, see README)"
    )
    precision: str = _setting(
        "auto",
        "VGG19's number format: float32, bfloat16, or auto (bfloat16 where native and faster)",
        choices=PRECISIONS,
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):  # NumPy scalars (np.int64(512)...) become Python numbers
            setattr(self, f.name, _plain(getattr(self, f.name)))
        try:  # malformed values are left as they are for validate() to name
            self.pyramid = tuple(tuple(_plain(v) for v in stage) for stage in (self.pyramid or ()))
        except (TypeError, RecursionError):
            pass
        if self.style_blend is not None:
            try:
                self.style_blend = tuple(_plain(w) for w in self.style_blend)
            except (TypeError, RecursionError):
                pass

    # ---------------------------------------------------------------- checks
    def validate(self) -> Config:
        """Raise ConfigError (one line: what is wrong, how to fix) or return self."""
        try:
            return self._validate()
        except RecursionError:  # a value nested thousands of levels deep (a hostile config file)
            raise ConfigError(
                "a config value is nested too deeply: give plain numbers, strings and short lists"
            ) from None

    def _validate(self) -> Config:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}: use one of {TASKS}")
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("init", self.init, INITS)
        _choice("preserve_color", self.preserve_color, COLOR_MODES)
        _choice("style_mix", self.style_mix, STYLE_MIXES)
        if self.style_mix == "scale" and self.style_blend is not None:
            raise ConfigError(
                "style_blend weighs styles that are blended; style_mix='scale' assigns them to scales "
                "instead: drop one of the two"
            )
        _choice("pooling", self.pooling, POOLINGS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("precision", self.precision, PRECISIONS)
        for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "lr_decay"):
            _nonnegative(name, getattr(self, name))
        if self.style_scale <= 0:
            raise ConfigError("style_scale must be > 0 (1.0 = style image as large as the content)")
        if self.learning_rate is not None:
            _nonnegative("learning_rate", self.learning_rate)
        for name, limit in (
            ("learning_rate", MAX_RATE),
            ("lr_decay", MAX_RATE),
            ("style_scale", MAX_STYLE_SCALE),
        ):
            value = getattr(self, name)
            if value is not None and float(value) > limit:
                raise ConfigError(f"{name} must be at most {limit:g}, got {_show(value)}")
        for group in ("content_layers", "style_layers"):
            layers = getattr(self, group)
            if not isinstance(layers, dict):
                raise ConfigError(
                    f"{group} must be a dict of layer name -> weight, e.g. {{'block4_conv2': 1.0}}, "
                    f"got {type(layers).__name__} {layers!r:.60}"
                )
            if layers:
                check_layers(layers)
                for name, w in layers.items():
                    _nonnegative(f"{group}[{name!r}]", w)
        if self.task != "texture" and self.content_weight > 0 and not self.content_layers:
            raise ConfigError("content_weight > 0 but no content_layers: name one, e.g. block4_conv2")
        if self.task != "reconstruct" and self.style_weight > 0 and not self.style_layers:
            raise ConfigError("style_weight > 0 but no style_layers: name some, e.g. block1_conv1")
        if not _is_int(self.steps) or not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps must be an integer from 1 to {MAX_STEPS:,}, got {_show(self.steps)}")
        if not isinstance(self.pyramid, tuple) or len(self.pyramid) > MAX_STAGES:
            raise ConfigError(
                f"pyramid must be a list of at most {MAX_STAGES} (scale, steps) pairs, e.g. ((0.5, 20),), "
                f"got {_show(self.pyramid)}"
            )
        for stage in self.pyramid:
            if not _good_stage(stage):
                raise ConfigError(
                    f"bad pyramid stage {_show(stage)}: use (scale, steps) with 0 < scale < 1, "
                    f"0 <= steps <= {MAX_STEPS:,}"
                )
        if not _is_int(self.size) or not 16 <= self.size <= MAX_SIZE:
            raise ConfigError(
                f"size must be an integer from 16 to {MAX_SIZE:,} pixels, got {_show(self.size)}"
            )
        if not _is_int(self.frame_every) or not 0 <= self.frame_every <= MAX_STEPS:
            raise ConfigError(
                f"frame_every must be an integer from 0 (no frames) to {MAX_STEPS:,}, got {_show(self.frame_every)}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be an integer from 0 to 2**32 - 1, got {_show(self.seed)}")
        if self.style_blend is not None:
            if not isinstance(self.style_blend, tuple):
                raise ConfigError(
                    f"style_blend must be a list of weights, one per style, got {self.style_blend!r}"
                )
            for w in self.style_blend:
                _nonnegative("style_blend", w)
            if sum(self.style_blend) <= 0:
                raise ConfigError("style_blend weights sum to 0: give at least one positive weight")
        if self.weights is not None and self.weights != "random":
            fix = "pass a VGG19 .h5 file, 'random' (untrained control), or nothing (resolved automatically)"
            if not isinstance(self.weights, (str, os.PathLike)) or not os.path.lexists(
                os.path.expanduser(self.weights)
            ):
                raise ConfigError(f"weights file {_show(self.weights)} does not exist: {fix}")
            # a device, FIFO or folder: say what it is (checked without reading or blocking)
            files.check_input(files.user_path(self.weights), what="weights file", error=ConfigError, fix=fix)
        return self

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """Plain dict (JSON-ready) of every field."""
        out = dataclasses.asdict(self)
        out["pyramid"] = [list(stage) for stage in self.pyramid]
        if self.style_blend is not None:
            out["style_blend"] = list(self.style_blend)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """Inverse of ``to_dict``; unknown keys raise ConfigError naming them."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"a config must be a JSON object of settings, got {type(data).__name__}: "
                "pass a sidecar .json written by nst_tf"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}: valid keys are {sorted(names)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"bad value in config ({err}): fix it or re-create the file with nst_tf"
            ) from None

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), indent=2, **kw)

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            data = json.loads(text)
        except RecursionError:  # json recurses once per nesting level
            raise ConfigError("the config JSON is nested too deeply to be a config") from None
        except ValueError as err:
            raise ConfigError(
                f"the config is not valid JSON ({err}): pass a sidecar written by nst_tf"
            ) from None
        return cls.from_dict(data)

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (``dataclasses.replace``); unknown names raise ConfigError."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as err:
            raise ConfigError(f"{err}: see nst_tf.Config for the valid settings") from None

    @classmethod
    def for_task(cls, task: str, **overrides) -> Config:
        """The settings for ``task``: Config's defaults, then ``TASK_DEFAULTS[task]``, then ``overrides``."""
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}: use one of {TASKS}")
        return cls(task=task).replace(**TASK_DEFAULTS[task]).replace(**overrides)

    def changes(self) -> dict:
        """The fields that differ from the defaults of this config's task."""
        defaults = Config.for_task(self.task) if self.task in TASKS else Config()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        }

    def as_task(self, task: str) -> Config:
        """These settings for ``task``: this config if it was made for ``task``, else what it changed
        from its own task's defaults applied to ``task``'s (a transfer config given to
        ``reconstruct_content`` keeps its size and seed but starts from noise, as reconstruction does)."""
        if self.task == task:
            return self
        return Config.for_task(task, **{k: v for k, v in self.changes().items() if k != "task"})

    def stages(self) -> list[tuple[float, int]]:
        """The (scale, steps) stages actually run: the pyramid, then full size."""
        return [(float(s), int(n)) for s, n in self.pyramid if int(n) > 0] + [(1.0, self.steps)]


def _choice(name, value, options):
    if value not in options:
        raise ConfigError(f"unknown {name} {value!r}: use one of {', '.join(options)}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _plain(value):
    """A NumPy integer or float scalar as the Python number (JSON-ready); anything else unchanged."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (int, bool)):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
        return float(value)
    return value


def _show(value) -> str:
    """A short repr for messages: a huge or deeply nested value must not flood the one line."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _good_stage(stage) -> bool:
    try:
        scale, steps = stage
        if isinstance(scale, (str, bytes)) or isinstance(steps, (str, bytes, bool)):
            return False
        return 0 < float(scale) < 1 and float(steps) == int(steps) and 0 <= steps <= MAX_STEPS
    except (TypeError, ValueError, OverflowError):
        return False


def _nonnegative(name, value):
    try:
        ok = not isinstance(value, (str, bytes)) and math.isfinite(float(value)) and float(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
