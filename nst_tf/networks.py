"""The fast networks (notebook 05): Johnson et al.'s image transformation network, Ulyanov et
al.'s texture generator, their precision, saving, loading and the networks that ship trained.

* ``build_transformer``: 9x9 conv, two stride-2 convs, residual blocks, two resize-then-convolve
  upsamplings (nearest neighbour, then a 3x3 conv: no transposed convolutions, so no checkerboard
  artefacts), a 9x9 conv to RGB; instance normalisation throughout (Ulyanov et al. 2016); the
  border mirrored before every convolution (``ReflectPad``, format 2). Fully convolutional: any
  input size gives an output of the same size.
* ``build_texture_generator``: the same body on a noise input.
* ``stylize``: the compiled forward pass; ``save_model`` / ``load_model`` with the sidecar and the
  signature check; ``shipped_model`` finds a network that ships trained (``data/models``).
"""

from __future__ import annotations

import contextlib
import json
import weakref
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nst_tf import data as nst_data
from nst_tf import precision as precisions
from nst_tf.errors import ConfigError, NSTError
from nst_tf.files import (
    printable,
    user_path,
    write_files,
)

__all__ = [
    "CropLike",
    "FLOAT32_LAYERS",
    "FORMAT",
    "PADDINGS",
    "ReflectPad",
    "SHIPPED_DIR",
    "build_texture_generator",
    "build_transformer",
    "check_signature",
    "load_model",
    "model_precision",
    "network_width",
    "save_model",
    "shipped_model",
    "shipped_models",
    "stylize",
    "with_precision",
]


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


def read_keras(path: Path, what: str, fix: str) -> keras.Model:
    """The Keras model in the ``.keras`` file ``path`` (uncompiled); a one-line ConfigError naming
    it as ``what`` ("model", "decoder") with ``fix`` if it is missing or will not load."""
    if not path.is_file():
        raise ConfigError(f"{what} '{printable(path)}' does not exist or is not a file — {fix}")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile errors...
        raise ConfigError(f"cannot load {what} '{printable(path)}': {_reason(err)} — {fix}") from None


def load_model(path, precision: str | None = "auto") -> keras.Model:
    """A network saved by ``train``/``save_model``; one-line ConfigError if it is not one.

    ``precision`` ("auto", "float32", "bfloat16"; ``nst_tf.precision``): what it computes in,
    whatever it was trained in (its weights are float32 either way); None keeps the saved one."""
    path = user_path(path)
    fix = "pass a .keras file written by `python -m nst_tf train`"
    model = read_keras(path, "model", fix)
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
    ``enc1`` layer), for memory estimates; a network that says its own (``nst_width``: the
    stylizers of :mod:`nst_tf.arbitrary`, whose VGG19 has 64 channels at full resolution); for
    another network, its widest convolution."""
    if getattr(model, "nst_width", None):
        return int(model.nst_width)
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

        def forward(x):
            return ref()(x, training=False)

        # no Python control flow to convert: without autograph=False, AutoGraph prints a
        # "could not transform" warning into every notebook cell that stylises
        runner = _RUNNERS[model] = tf.function(
            forward, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)], autograph=False
        )
    arr = np.asarray(images, np.float32)
    single = arr.ndim == 3
    out = runner(arr[None] if single else arr).numpy()
    return out[0] if single else out
