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
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from nst_tf.errors import ConfigError

#: The 16 convolution layers of VGG19, in forward order, by their Keras names.
CONV_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4",
)  # fmt: skip
#: Number of output channels of each conv layer.
CHANNELS = {name: 64 * 2 ** min(int(name[5]) - 1, 3) for name in CONV_LAYERS}
#: Downsampling factor (product of pooling strides) in front of each layer.
STRIDE = {name: 2 ** (int(name[5]) - 1) for name in CONV_LAYERS}
POOLINGS = ("max", "avg")
ACTIVATIONS = ("relu", "conv")


def check_layers(layers) -> list[str]:
    """Return ``layers`` as a list, or raise ConfigError naming the unknown ones."""
    layers = list(layers)
    unknown = [name for name in layers if name not in CONV_LAYERS]
    if unknown:
        raise ConfigError(
            f"unknown VGG19 layer name(s) {unknown}: use Keras conv layer names, "
            f"one of {', '.join(CONV_LAYERS)}"
        )
    if not layers:
        raise ConfigError("no layers given: name at least one VGG19 conv layer, e.g. block4_conv2")
    return layers


def deepest(layers) -> str:
    """The layer among ``layers`` that comes last in the network."""
    return max(check_layers(layers), key=CONV_LAYERS.index)


def min_input_side(layers) -> int:
    """Smallest image side (pixels) for which every layer in ``layers`` has >= 1x1 features."""
    return STRIDE[deepest(layers)]


def receptive_field(layer: str) -> int:
    """Receptive field (pixels) of one unit of ``layer`` in the input image."""
    rf, jump = 1, 1
    for name in CONV_LAYERS[: CONV_LAYERS.index(layer) + 1]:
        if STRIDE[name] > jump:  # a 2x2/2 pooling sits in front of this block
            rf += jump
            jump *= 2
        rf += 2 * jump  # 3x3 convolution
    return rf


@functools.lru_cache(maxsize=8)
def _trunk(depth: int, pooling: str, weights_key: str):
    """Build VGG19 up to conv layer number ``depth`` (1..16) with separate ReLUs."""
    weights = _WEIGHTS_BY_KEY[weights_key]
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = inputs
    tensors = {}
    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    previous_block = 1
    for name in CONV_LAYERS[:depth]:
        block = int(name[5])
        if block != previous_block:
            x = pool(2, 2, name=f"block{previous_block}_pool")(x)
            previous_block = block
        conv = keras.layers.Conv2D(CHANNELS[name], 3, padding="same", name=name)
        x = conv(x)
        kernel, bias = weights[name]
        conv.set_weights([kernel, bias])
        tensors[(name, "conv")] = x
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
        tensors[(name, "relu")] = x
    return inputs, tensors


#: Weights dicts by the key that ``_trunk``'s cache sees (dicts are unhashable).
_WEIGHTS_BY_KEY: dict[str, dict] = {}


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


@functools.lru_cache(maxsize=4)
def _pretrained(path: str | None):
    from nst_tf import weights as weights_mod

    return weights_mod.load_vgg19_weights(path)


def get_weights(weights=None):
    """Return ``(weights_dict, info_dict)`` for ``weights``.

    ``weights`` is None (resolve the ImageNet weights, see ``nst_tf.weights``),
    a path to a Keras ``.h5`` file, ``"random"`` (seeded He init, a control), or
    an already loaded dict.
    """
    if isinstance(weights, dict):
        return weights, {"source": "in-memory dict"}
    if weights == "random":
        return _cached_random(), {"source": "random (He normal, seed 0)", "sha256": None}
    loaded, info = _pretrained(None if weights is None else str(weights))
    return loaded, info.to_dict()


@functools.lru_cache(maxsize=1)
def _cached_random():
    return random_weights(0)


def build_extractor(layers, *, pooling: str = "max", activation: str = "relu", weights=None):
    """Keras model: preprocessed batch (N,H,W,3) -> {layer: (N,h,w,C) features}.

    ``layers`` is any iterable of conv layer names (see ``CONV_LAYERS``);
    ``pooling`` is "max" (Keras/Gatys default) or "avg" (Gatys et al. suggest it
    gives smoother results); ``activation`` picks the ReLU output ("relu") or
    the raw convolution ("conv"). The model carries ``.weights_info`` (which
    weights file was used) for run metadata.
    """
    layers = check_layers(layers)
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}: use one of {POOLINGS}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}: use one of {ACTIVATIONS}")
    weights_dict, info = get_weights(weights)
    key = f"dict:{id(weights)}" if isinstance(weights, dict) else repr(weights)
    _WEIGHTS_BY_KEY[key] = weights_dict
    depth = CONV_LAYERS.index(deepest(layers)) + 1
    inputs, tensors = _trunk(depth, pooling, key)
    outputs = {name: tensors[(name, activation)] for name in dict.fromkeys(layers)}
    model = keras.Model(inputs, outputs, name=f"vgg19_to_{CONV_LAYERS[depth - 1]}")
    model.weights_info = info
    model.trainable = False
    return model
