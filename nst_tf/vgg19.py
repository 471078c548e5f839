"""The VGG19 layer table: conv layer names, channels, strides (no TensorFlow).

``config`` validates layer names, ``resources`` estimates memory and
``weights`` reads weights files from this table; ``models`` builds the Keras
network from it. It sits below all of them, so none has to import another
(or TensorFlow) just to know the layer names.
"""

from __future__ import annotations

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
