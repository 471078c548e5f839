"""The VGG19 feature extractor (introduced in notebook 01).

``build_extractor(layers)`` returns a Keras model that maps a *preprocessed*
batch (BGR, ImageNet mean subtracted, see ``nst_tf.images.preprocess``) to a
dict ``{layer_name: features}`` keyed by Keras VGG19 layer names
(``block4_conv2``...). The network stops at the deepest layer asked for, so no
time is spent on layers the loss never reads.

Keras's own VGG19 fuses the ReLU into each ``Conv2D``; here every convolution is
followed by a separate ``ReLU`` layer so that either the raw convolution
(``activation="conv"``) or its ReLU (``activation="relu"``, the Keras and
Gatys et al. convention) can be used as a feature.

The layer table (``CONV_LAYERS``, ``CHANNELS``, ``STRIDE``...) lives in
``nst_tf.vgg19`` and is re-exported here, where the notebooks meet it.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

import keras
import numpy as np

from nst_tf import weights as weights_files
from nst_tf.errors import ConfigError
from nst_tf.vgg19 import (
    ACTIVATIONS,
    CHANNELS,
    CONV_LAYERS,
    POOLINGS,
    STRIDE,
    check_layers,
    deepest,
    min_input_side,
    receptive_field,
)

__all__ = [
    "ACTIVATIONS", "CHANNELS", "CONV_LAYERS", "POOLINGS", "STRIDE", "build_extractor", "check_layers",
    "deepest", "get_weights", "min_input_side", "random_weights", "receptive_field",
]  # fmt: skip


def random_weights(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """He-normal random VGG19 weights: the 'no pre-training' control of notebook 04."""
    rng = np.random.default_rng(seed)
    weights, channels_in = {}, 3
    for name in CONV_LAYERS:
        c = CHANNELS[name]
        std = np.sqrt(2.0 / (9 * channels_in))
        weights[name] = (
            rng.normal(0, std, (3, 3, channels_in, c)).astype("float32"),
            np.zeros(c, "float32"),
        )
        channels_in = c
    return weights


# ----------------------------------------------------------------------------- the weights cache
@dataclass
class _Loaded:
    """One set of weights: its arrays, what to record about it, and the trunks built from it."""

    arrays: dict
    info: dict
    trunks: OrderedDict = field(default_factory=OrderedDict)  # (depth, pooling, dtype) -> (inputs, tensors)


#: The one weights cache, keyed by the weights' identity: (path, size, mtime) for a file, a content
#: hash for a dict, ("random", 0) for the control. A replaced or touched file, or NST_VGG19_WEIGHTS
#: pointing elsewhere, gives a new identity; least recently used identities beyond MAX_CACHED are
#: dropped, so passing new weights dicts does not grow memory without bound.
_CACHE: OrderedDict[tuple, _Loaded] = OrderedDict()
MAX_CACHED = 2
#: Built trunks kept per identity (each holds its own copy of the weights as Keras variables).
MAX_TRUNKS = 4


def _digest(arrays: dict) -> str:
    """Full sha256 of the weight arrays (``nst_tf.weights.digest_arrays``): their identity's source."""
    return weights_files.digest_arrays(arrays)


def _loaded(weights) -> _Loaded:
    """The cache entry for ``weights`` (None, a path, "random" or a dict), loading it on a miss.

    Every entry's ``info`` holds ``weights_id`` (the arrays' hash, computed once per entry; for a
    dict it is the cache key's), ``file_sha256`` (None without a file) and ``source``.
    """
    source = None
    if isinstance(weights, dict):
        key = ("dict", _digest(weights))
    elif weights == "random":
        key = ("random", 0)
    else:
        path, source = weights_files.find_vgg19_weights(None if weights is None else os.fspath(weights))
        key = weights_files.file_identity(path)
    entry = _CACHE.get(key)
    if entry is None:
        if isinstance(weights, dict):
            info = {"source": "in-memory dict", "weights_id": key[1][:12], "file_sha256": None}
            entry = _Loaded(weights, info)
        elif weights == "random":
            arrays = random_weights(0)
            info = {"source": "random (He normal, seed 0)", "weights_id": weights_files.weights_id(arrays),
                    "file_sha256": None}  # fmt: skip
            entry = _Loaded(arrays, info)
        else:
            arrays = weights_files.read_keras_h5(path)
            info = weights_files.WeightsInfo.of(path, source, arrays=arrays)
            print(info.describe(), file=sys.stderr)  # once per file: the run's log says which weights
            entry = _Loaded(arrays, info.to_dict())
        _CACHE[key] = entry
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    if source is not None:
        entry.info["source"] = source  # the same file may be found another way (explicit, env...)
    return entry


def get_weights(weights=None):
    """Return ``(weights_dict, info_dict)`` for ``weights``.

    ``weights`` is None (resolve the ImageNet weights, see ``nst_tf.weights``),
    a path to a Keras ``.h5`` file, ``"random"`` (seeded He init, a control), or
    an already loaded dict. ``info_dict`` says which weights these are: ``weights_id``
    (the identity of the values, the same for the same weights on every machine),
    ``source``, and for a file its ``path`` and ``file_sha256``. Every run records it in
    its metadata; the notebooks' frozen exercise answers are keyed by its ``weights_id``.
    """
    entry = _loaded(weights)
    return entry.arrays, dict(entry.info)


def _trunk(entry: _Loaded, depth: int, pooling: str, dtype: str = "float32"):
    """VGG19 up to conv layer number ``depth`` (1..16) with separate ReLUs, built once per entry."""
    key = (depth, pooling, dtype)
    if key not in entry.trunks:
        entry.trunks[key] = _build_trunk(entry.arrays, depth, pooling, dtype)
        while len(entry.trunks) > MAX_TRUNKS:
            entry.trunks.popitem(last=False)
    entry.trunks.move_to_end(key)
    return entry.trunks[key]


def _build_trunk(weights: dict, depth: int, pooling: str, dtype: str = "float32"):
    """The layers, in ``dtype`` (``nst_tf.precision``): in bfloat16 the weights are stored as
    bfloat16 (the network is frozen, so it needs no float32 master copy) and the float32 image is
    cast once on the way in; ``build_extractor`` casts the features back to float32."""
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = inputs if dtype == "float32" else keras.ops.cast(inputs, dtype)
    tensors = {}
    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    previous_block = 1
    for name in CONV_LAYERS[:depth]:
        block = int(name[5])
        if block != previous_block:
            x = pool(2, 2, name=f"block{previous_block}_pool", dtype=dtype)(x)
            previous_block = block
        conv = keras.layers.Conv2D(CHANNELS[name], 3, padding="same", name=name, dtype=dtype)
        x = conv(x)
        kernel, bias = weights[name]
        conv.set_weights([kernel.astype(conv.kernel.dtype), bias.astype(conv.bias.dtype)])
        tensors[(name, "conv")] = x
        x = keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
        tensors[(name, "relu")] = x
    return inputs, tensors


def build_extractor(
    layers, *, pooling: str = "max", activation: str = "relu", weights=None, precision: str = "float32"
):
    """Keras model: preprocessed batch (N,H,W,3) -> {layer: (N,h,w,C) float32 features}.

    ``layers`` is any iterable of conv layer names (see ``CONV_LAYERS``);
    ``pooling`` is "max" (Keras/Gatys default) or "avg" (Gatys et al. suggest it
    gives smoother results); ``activation`` picks the ReLU output ("relu") or
    the raw convolution ("conv"); ``weights`` as in ``get_weights``, which also
    says which weights these are. ``precision`` (``nst_tf.precision``: "float32", "bfloat16" or
    "auto") is what the layers compute in; the features always come out as float32.
    """
    from nst_tf import precision as precisions

    dtype = precisions.resolve(precision)
    layers = check_layers(layers)
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}: use one of {POOLINGS}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}: use one of {ACTIVATIONS}")
    depth = CONV_LAYERS.index(deepest(layers)) + 1
    inputs, tensors = _trunk(_loaded(weights), depth, pooling, dtype)
    outputs = {name: tensors[(name, activation)] for name in dict.fromkeys(layers)}
    if dtype != "float32":  # Gram matrices, losses and targets stay float32
        outputs = {name: keras.ops.cast(t, "float32") for name, t in outputs.items()}
    suffix = "" if dtype == "float32" else f"_{dtype}"
    model = keras.Model(inputs, outputs, name=f"vgg19_to_{CONV_LAYERS[depth - 1]}{suffix}")
    model.trainable = False
    return model
