"""Settings of a fast-style-transfer training run (``python -m nst_tf train``, notebook 05).

Kept apart from :mod:`nst_tf.fast` because it must not import TensorFlow: the
command line builds ``train``'s flags, choices and shown defaults from these
fields (as it does for ``Config``), and ``--help`` answers at once.

The loss settings (layers, the three weights, pooling, weights file) mean
exactly what they mean in :class:`nst_tf.config.Config`, so a trained network
and an L-BFGS run can be compared on the same objective.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from nst_tf.config import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    MAX_STEPS,
    MAX_STYLE_SCALE,
    _choice,
    _is_int,
    _nonnegative,
    _setting,
    _show,
)
from nst_tf.errors import ConfigError
from nst_tf.precision import PRECISIONS
from nst_tf.vgg19 import POOLINGS, check_layers

#: Largest training crop and batch: far past anything a CPU trains, low enough to fail early.
MAX_CROP = 1024
MAX_BATCH = 256
MAX_WIDTH = 128
MAX_BLOCKS = 16

_CLI = ("train",)


@dataclass
class TrainConfig:
    """All knobs of training one feed-forward style network (Johnson et al. 2016).

    ``size`` is the side of the square training crops; the style image is resized
    so that its long side is ``size * style_scale`` before its Gram matrices are
    taken, as ``Config`` does for the generated image. ``width`` is the number of
    channels of the first layer (Johnson et al. use 32; the default 16 costs a
    quarter of the arithmetic). ``noise`` adds Gaussian noise of that many grey
    levels to each training input while keeping the clean photo as the content
    target: a network trained so reacts less to frame-to-frame noise in videos.
    """

    style: str = _setting("hubble_deep_field", "style image: a bundled name or a path", cli=())
    content_layers: dict[str, float] = _setting(
        DEFAULT_CONTENT_LAYERS, "content layer(s) and weights of the loss network", cli=_CLI
    )
    style_layers: dict[str, float] = _setting(
        DEFAULT_STYLE_LAYERS, "style layers and weights, e.g. block1_conv1,block2_conv1:0.5", cli=_CLI
    )
    content_weight: float = _setting(1.0, "weight of the content loss", cli=_CLI)
    style_weight: float = _setting(10.0, "weight of the style loss (higher = more stylised)", cli=_CLI)
    tv_weight: float = _setting(1e-4, "total-variation weight of the output", cli=_CLI)
    size: int = _setting(256, "side of the square training crops in pixels", cli=_CLI)
    style_scale: float = _setting(1.0, "style image long side relative to the crop side", cli=_CLI)
    batch_size: int = _setting(
        4, "global batch size (split across devices under a distribution strategy)", cli=_CLI
    )
    steps: int = _setting(2000, "training steps (batches)", cli=_CLI)
    learning_rate: float = _setting(1e-3, "Adam learning rate", cli=_CLI, flag="--lr")
    width: int = _setting(16, "channels of the network's first layer (Johnson et al.: 32)", cli=_CLI)
    res_blocks: int = _setting(5, "residual blocks at quarter resolution", cli=_CLI)
    noise: float = _setting(
        0.0, "std of noise added to training inputs, grey levels (steadier videos)", cli=_CLI
    )
    pooling: str = _setting("max", "VGG19 pooling of the loss network", choices=POOLINGS, cli=_CLI)
    checkpoint_every: int = _setting(100, "save a checkpoint every N steps (and on Ctrl-C)", cli=_CLI)
    validate_every: int = _setting(
        100, "save the held-out photos stylised every N steps, M.val/step-N.jpg (0: never)", cli=_CLI
    )
    content_dir: str | None = _setting(
        None, "folder of training photos (none: the bundled and scikit-image photos)", cli=_CLI
    )
    data: tuple[str, ...] | None = _setting(
        None,
        "training pool sources, in order: offline, skimage, matplotlib, sklearn, bundled, coco, "
        "coco-train, or a folder (none: --content-dir, else bundled)",
        cli=_CLI,
    )
    seed: int = _setting(0, "random seed (weights, crops, flips)", cli=_CLI)
    weights: str | None = _setting(None, "VGG19 weights .h5 file (none: resolved automatically)", cli=_CLI)
    precision: str = _setting(
        "auto",
        "number format of the network and its loss: float32, bfloat16, or auto (bfloat16 where native and faster)",
        choices=PRECISIONS,
        cli=_CLI,
    )

    def validate(self) -> TrainConfig:
        """Raise ConfigError (one line: what is wrong, how to fix) or return self."""
        _choice("pooling", self.pooling, POOLINGS)
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.style, str) or not self.style:
            raise ConfigError(f"style must be an image name or path, got {_show(self.style)}")
        for name in ("content_weight", "style_weight", "tv_weight", "noise", "learning_rate"):
            _nonnegative(name, getattr(self, name))
        if not 0 < float(self.style_scale) <= MAX_STYLE_SCALE:
            raise ConfigError(f"style_scale must be > 0 and at most {MAX_STYLE_SCALE:g}")
        for group in ("content_layers", "style_layers"):
            layers = getattr(self, group)
            if not isinstance(layers, dict) or not layers:
                raise ConfigError(f"{group} must name at least one layer, e.g. block4_conv2")
            check_layers(layers)
            for name, w in layers.items():
                _nonnegative(f"{group}[{name!r}]", w)
        for name, low, high in (
            ("size", 32, MAX_CROP),
            ("batch_size", 1, MAX_BATCH),
            ("steps", 1, MAX_STEPS),
            ("width", 1, MAX_WIDTH),
            ("res_blocks", 0, MAX_BLOCKS),
            ("checkpoint_every", 1, MAX_STEPS),
            ("validate_every", 0, MAX_STEPS),
        ):
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer from {low} to {high:,}, got {_show(value)}")
        if self.data is not None and (
            isinstance(self.data, str)
            or not isinstance(self.data, (list, tuple))
            or not self.data
            or not all(isinstance(d, str) and d for d in self.data)
        ):
            raise ConfigError(
                f'data must be a list of sources (e.g. ["offline", "photos/"]), got {_show(self.data)}'
            )
        if self.data is not None and self.content_dir is not None:
            raise ConfigError("give the training photos once: --data DIR or --content-dir DIR, not both")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be an integer from 0 to 2**32 - 1, got {_show(self.seed)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys raise ConfigError naming them."""
        if not isinstance(data, dict):
            raise ConfigError(f"a training config must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}: valid keys are {sorted(names)}")
        if isinstance(data.get("data"), list):  # JSON has no tuples
            data = {**data, "data": tuple(data["data"])}
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def sources(self) -> tuple:
        """The training pool's sources (:func:`nst_tf.datasets.training_pool`): ``data``, else
        ``content_dir``, else the bundled set."""
        if self.data is not None:
            return tuple(self.data)
        return (self.content_dir,) if self.content_dir is not None else ("bundled",)

    def replace(self, **changes) -> TrainConfig:
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as err:
            raise ConfigError(f"{err}: see nst_tf.fast_config.TrainConfig for the valid settings") from None
