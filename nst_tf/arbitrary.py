"""Any style in one pass (notebook 06): AdaIN, WCT and a decoder that inverts VGG19.

Optimisation (notebook 03) fits one image to one style in minutes; a fast network (05) learns one
style. Both feature transforms here take *any* style image at inference, with one network that
never saw a painting:

* ``adain`` (Huang & Belongie 2017): each channel of the photo's features re-normalised to the
  style's channel mean and standard deviation, ``std_s * (f_c - mean_c) / std_c + mean_s``.
* ``wct`` (Li et al. 2017): the photo's features whitened (their covariance made the identity, by
  an eigendecomposition) and coloured with the style's covariance: the features then have exactly
  the style's mean and covariance. The covariance of centred features is the Gram matrix of 02
  (up to the mean and a normalisation): WCT matches the style's Gram statistics in closed form,
  where 03 and 05 approach them by gradient descent.
* ``build_decoder``: the mirror of VGG19 up to ``block4_conv1`` (relu4_1): reflect padding, 3x3
  convolutions, nearest-neighbour upsampling where VGG19 pools. Trained from photos alone to
  invert the encoder (``train_decoder``: pixel + feature reconstruction, WCT's recipe), so that
  ``decode(transform(encode(photo), encode(style)))`` paints the photo in that style.
* ``stylizer``: one Keras model photo -> painted photo for a given style (or a mix of styles),
  with the content-style trade-off ``alpha`` and colour preservation; ``nst_tf.fast``'s image,
  folder and video code applies it like any fast network (``stylize --method adain``).

Features are float32 whatever the encoder computes in (``nst_tf.precision``); the transforms'
statistics and eigendecompositions are taken in float32 and float64 respectively.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nst_tf import data as nst_data
from nst_tf import precision as precisions
from nst_tf.errors import ConfigError
from nst_tf.files import printable, user_path
from nst_tf.images import load_image, preprocess, resize_image
from nst_tf.models import build_extractor
from nst_tf.networks import CropLike, ReflectPad, _dtype_policy, read_keras, with_precision
from nst_tf.training import TrainResult, validation_dir
from nst_tf.vgg19 import CHANNELS, CONV_LAYERS, check_layers

__all__ = [
    "DECODER_FORMAT",
    "ENCODER_LAYER",
    "EPS",
    "METHODS",
    "VGGPreprocess",
    "adain",
    "build_decoder",
    "channel_stats",
    "decoder_layer",
    "feature_covariance",
    "load_decoder",
    "style_statistics",
    "stylizer",
    "transform",
    "wct",
]

#: The encoder's output: relu4_1, as AdaIN and single-level WCT use.
ENCODER_LAYER = "block4_conv1"
METHODS = ("adain", "wct")
#: Added to variances (AdaIN) and the floor of the eigenvalues kept (WCT).
EPS = 1e-5
#: Version of the decoder's layout (its sidecar's "format").
DECODER_FORMAT = 1


# ----------------------------------------------------------------------------- the transforms
def channel_stats(features, eps: float = EPS):
    """Per image and channel, the mean and standard deviation over the H x W positions of
    ``features`` (N, H, W, C): two (N, 1, 1, C) tensors. ``eps`` is added to the variance, so a
    constant channel has standard deviation sqrt(eps), not 0."""
    x = tf.cast(features, tf.float32)
    mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return mean, tf.sqrt(var + eps)


def adain(content, style, eps: float = EPS):
    """AdaIN: ``content`` features (N, H, W, C) with each channel's mean and standard deviation
    replaced by those of ``style`` (N or 1, H', W', C; any size). Float32."""
    c_mean, c_std = channel_stats(content, eps)
    s_mean, s_std = channel_stats(style, eps)
    return (tf.cast(content, tf.float32) - c_mean) / c_std * s_std + s_mean


def _flat(features):
    x = tf.cast(features, tf.float32)
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1] * shape[2], shape[3]]), shape


def feature_covariance(features):
    """(mean (N, C), covariance (N, C, C)) of each image's features over its positions: the Gram
    matrix of 02 of the *centred* features, divided by (positions - 1) instead of positions."""
    flat, _ = _flat(features)
    mean = tf.reduce_mean(flat, axis=1)
    centred = flat - mean[:, None]
    n = tf.cast(tf.shape(flat)[1], tf.float32)
    cov = tf.matmul(centred, centred, transpose_a=True) / tf.maximum(n - 1.0, 1.0)
    return mean, cov


def _matrix_power(cov, power: float, eps: float):
    """``cov ** power`` of symmetric positive semi-definite matrices (N, C, C), by eigendecomposition
    in float64. Directions with an eigenvalue below ``max(eps, 1e-6 * largest)`` are dropped (Li et
    al.): whitening would otherwise blow up the noise of the features' null space."""
    values, vectors = tf.linalg.eigh(tf.cast(cov, tf.float64))
    floor = tf.maximum(tf.cast(eps, tf.float64), 1e-6 * values[:, -1:])
    kept = values > floor
    scaled = tf.where(kept, tf.pow(tf.maximum(values, floor), power), tf.zeros_like(values))
    out = tf.matmul(vectors * scaled[:, None, :], vectors, transpose_b=True)
    return tf.cast(out, tf.float32)


def style_statistics(style_features, method: str, eps: float = EPS) -> dict:
    """What a transform needs of a style, from its features (1, H, W, C): for "adain" the channel
    ``mean`` and ``std``; for "wct" the ``mean`` and the colouring matrix ``color`` (the square root
    of the style's feature covariance). NumPy arrays, so that a stylizer keeps them as constants."""
    _check_method(method)
    if method == "adain":
        mean, std = channel_stats(style_features, eps)
        return {"mean": mean.numpy()[0, 0, 0], "std": std.numpy()[0, 0, 0]}
    mean, cov = feature_covariance(style_features)
    return {"mean": mean.numpy()[0], "color": _matrix_power(cov, 0.5, eps).numpy()[0]}


def transform(content, stats: dict, method: str, eps: float = EPS):
    """``content`` features (N, H, W, C) given a style's ``style_statistics``: AdaIN or WCT."""
    _check_method(method)
    if method == "adain":
        c_mean, c_std = channel_stats(content, eps)
        return (tf.cast(content, tf.float32) - c_mean) / c_std * stats["std"] + stats["mean"]
    flat, shape = _flat(content)
    mean, cov = feature_covariance(content)
    whiten = _matrix_power(cov, -0.5, eps)
    white = tf.matmul(flat - mean[:, None], whiten)
    colored = tf.matmul(white, tf.cast(stats["color"], tf.float32)[None]) + stats["mean"]
    return tf.reshape(colored, shape)


def wct(content, style, eps: float = EPS):
    """WCT: ``content`` features (N, H, W, C) whitened and coloured with the covariance and mean of
    ``style``'s features (1, H', W', C): the result has the style's feature mean and covariance
    (in the directions where the content's features vary)."""
    return transform(content, style_statistics(style, "wct", eps), "wct", eps)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


# ----------------------------------------------------------------------------- the decoder
def _block(layer: str) -> int:
    return int(layer[5])


def build_decoder(
    layer: str = ENCODER_LAYER, width: float = 1.0, seed: int = 0, precision: str = "float32"
) -> keras.Model:
    """The mirror of VGG19 up to ``layer``: features (N, h, w, C) -> RGB pixels (N, H, W, 3).

    Each VGG19 convolution becomes a reflect-padded 3x3 convolution back to the channels it came
    from (times ``width``: 0.5 has about a quarter of the arithmetic), with a ReLU, and each pooling
    a nearest-neighbour upsampling (resize, then convolve: no checkerboard). The last convolution
    is linear and scaled to pixels (127.5 + 127.5 x), in float32 under any ``precision``; the
    features come in divided by 255 (they are the features of 0-255 pixels)."""
    (layer,) = check_layers([layer])
    if not 0.05 <= float(width) <= 1.0:
        raise ConfigError(f"decoder width must be from 0.05 to 1, got {width!r}")
    keras.utils.set_random_seed(int(seed))
    encoder = CONV_LAYERS[: CONV_LAYERS.index(layer) + 1]
    with _dtype_policy(precisions.keras_policy(precision)):
        features = keras.Input((None, None, CHANNELS[layer]), name="features")
        # VGG19 features of caffe-preprocessed pixels (0-255 scale) run into the hundreds: bring
        # them to order 1, so that the He-initialised decoder starts near mid-grey
        x = keras.layers.Rescaling(1 / 255, name="dec_scale")(features)
        for i in range(len(encoder) - 1, -1, -1):
            name, before = encoder[i], encoder[i - 1] if i else None
            channels = 3 if before is None else max(1, round(CHANNELS[before] * width))
            x = ReflectPad(1, name=f"dec_{name}_pad")(x)
            x = keras.layers.Conv2D(channels, 3, padding="valid", name=f"dec_{name}")(x)
            if before is None:
                break
            x = keras.layers.ReLU(name=f"dec_{name}_relu")(x)
            if _block(before) < _block(name):  # VGG19 pooled here: double the resolution back
                x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"dec_{name}_up")(x)
        out = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels", dtype="float32")(x)
    return keras.Model(features, out, name=f"decoder_{layer}_w{width:g}")


def decoder_layer(decoder: keras.Model) -> str:
    """The VGG19 layer whose features ``decoder`` inverts, from its input's channels and the
    layer names ``build_decoder`` gives; one-line ConfigError for another network."""
    first = next((lay.name for lay in decoder.layers if lay.name.startswith("dec_block")), "")
    name = first[4:].removesuffix("_pad")
    if name not in CONV_LAYERS or decoder.inputs[0].shape[-1] != CHANNELS[name]:
        raise ConfigError(
            f"'{printable(decoder.name)}' is not a decoder made by nst_tf.arbitrary.build_decoder — "
            "pass a decoder .keras file written by train_decoder"
        )
    return name


def load_decoder(path, precision: str | None = "auto") -> keras.Model:
    """A decoder saved by ``train_decoder``; one-line ConfigError if it is not one."""
    fix = "pass a decoder .keras file written by nst_tf.arbitrary.train_decoder"
    model = read_keras(user_path(path), "decoder", fix)
    decoder_layer(model)
    return model if precision is None else with_precision(model, precision)


# ----------------------------------------------------------------------------- one model per style
@keras.saving.register_keras_serializable(package="nst_tf")
class PadToMultiple(keras.layers.Layer):
    """Height and width mirrored out to the next multiple of ``multiple`` (VGG19's pooling floors
    odd sides; the output is cut back with ``CropLike``)."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        shape, m = tf.shape(x), self.multiple
        ph, pw = (-shape[1]) % m, (-shape[2]) % m
        return tf.pad(x, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="SYMMETRIC")

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


def _stride(layer: str) -> int:
    return 2 ** (_block(layer) - 1)


@keras.saving.register_keras_serializable(package="nst_tf")
class VGGPreprocess(keras.layers.Layer):
    """RGB pixels [0, 255] -> VGG19's input (``nst_tf.images.preprocess``), as a layer."""

    def call(self, x):
        return preprocess(x)


class StyleTransform(keras.layers.Layer):
    """The features of the photo transformed towards one style or a weighted mix of styles
    (``stats``: ``style_statistics`` of each; ``mix``: their weights, summing to 1), then blended
    with the photo's own features: ``alpha * T(f) + (1 - alpha) * f``. ``masks`` (one (H, W) array
    in [0, 1] per style, or None): each style only where its mask is (one style per region)."""

    def __init__(self, method, stats, mix, alpha, masks=None, eps=EPS, **kw):
        super().__init__(**kw)
        self.method, self.alpha, self.eps = method, float(alpha), eps
        self.stats = [{k: tf.constant(v, tf.float32) for k, v in s.items()} for s in stats]
        self.mix = [float(m) for m in mix]
        self.masks = None if masks is None else [tf.constant(np.asarray(m, np.float32)) for m in masks]

    def call(self, features):
        f = tf.cast(features, tf.float32)
        if self.masks is None:
            styled = tf.add_n(
                [w * transform(f, s, self.method, self.eps) for s, w in zip(self.stats, self.mix)]
            )
        else:
            hw = tf.shape(f)[1:3]
            weights = [tf.image.resize(m[None, :, :, None], hw, method="area") for m in self.masks]
            total = tf.add_n(weights) + 1e-6
            styled = tf.add_n(
                [w / total * transform(f, s, self.method, self.eps) for s, w in zip(self.stats, weights)]
            )
        return self.alpha * styled + (1.0 - self.alpha) * f


class LuminanceOf(keras.layers.Layer):
    """The luminance (YIQ's Y) of the painted image with the photo's chroma (I, Q): colour
    preservation after the fact (Gatys et al. 2017), as :func:`nst_tf.color.combine_luminance`."""

    def call(self, painted, photo):
        from nst_tf.color import RGB_TO_YIQ, YIQ_TO_RGB

        to_yiq = tf.constant(np.asarray(RGB_TO_YIQ, np.float32).T)
        to_rgb = tf.constant(np.asarray(YIQ_TO_RGB, np.float32).T)
        y = tf.tensordot(painted, to_yiq, 1)[..., :1]
        iq = tf.tensordot(photo, to_yiq, 1)[..., 1:]
        return tf.tensordot(tf.concat([y, iq], -1), to_rgb, 1)


def _style_features(encoder, style, layer: str, size: int | None):
    img = load_image(nst_data.resolve_image(style, "style"), size) if isinstance(style, (str, Path)) else (
        np.asarray(style, np.float32) if size is None else resize_image(np.asarray(style, np.float32), size)
    )  # fmt: skip
    return encoder(preprocess(img), training=False)[layer]


def stylizer(
    decoder: keras.Model,
    styles,
    *,
    method: str = "adain",
    alpha: float = 1.0,
    mix=None,
    masks=None,
    style_size: int | None = 512,
    preserve_color: bool = False,
    weights=None,
    precision: str = "auto",
) -> keras.Model:
    """One Keras model, photo RGB [0, 255] (N, H, W, 3) -> painted RGB, for ``styles``.

    ``styles``: a style image (a bundled name, a path or an RGB array) or several; ``mix``: their
    weights (default equal; interpolation between styles), ``masks``: one (H, W) mask per style
    instead (one style per region of the photo's frame). ``alpha`` in [0, 1]: 0 gives back the
    photo (as the decoder reconstructs it), 1 the full transform. ``style_size``: the style's long
    side before its statistics are taken (None: as it is). ``preserve_color``: keep the photo's
    colours (the painting's luminance only). The encoder computes in ``precision``; the decoder
    in its own (see ``load_decoder``)."""
    _check_method(method)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha must be from 0 to 1, got {alpha!r}")
    layer = decoder_layer(decoder)
    styles = [styles] if isinstance(styles, (str, Path, np.ndarray)) else list(styles)
    if not styles:
        raise ConfigError("stylizer needs at least one style image")
    if mix is None:
        mix = [1.0 / len(styles)] * len(styles)
    mix = np.asarray(mix, np.float64)
    if mix.shape != (len(styles),) or np.any(mix < 0) or mix.sum() <= 0:
        raise ConfigError(f"mix needs one non-negative weight per style ({len(styles)}), got {mix.tolist()}")
    if masks is not None and len(masks) != len(styles):
        raise ConfigError(f"masks needs one mask per style ({len(styles)}), got {len(masks)}")
    encoder = build_extractor([layer], weights=weights, precision=precision)
    stats = [style_statistics(_style_features(encoder, s, layer, style_size), method) for s in styles]
    photo = keras.Input((None, None, 3), name="photo")
    padded = PadToMultiple(_stride(layer), name="pad")(photo)
    feats = encoder(VGGPreprocess(name="preprocess")(padded))[layer]
    feats = StyleTransform(method, stats, (mix / mix.sum()).tolist(), alpha, masks, name="transform")(feats)
    out = CropLike(name="crop", dtype="float32")(decoder(feats), photo)
    if preserve_color:
        out = LuminanceOf(name="luminance", dtype="float32")(out, photo)
    model = keras.Model(photo, out, name=f"{method}_stylizer")
    model.nst_width = 2 * CHANNELS["block1_conv1"]  # full resolution: VGG19's 64 channels, and the decoder's
    return model


def read_sidecar(path) -> dict:
    """The JSON sidecar of a decoder (or {} if it has none)."""
    side = user_path(path).with_suffix(".json")
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- training the decoder
#: Where a decoder that ships trained lives (``data/models/decoders``; not a per-style network).
DECODERS_DIR = nst_data.SHIPPED_DIR / "decoders"
#: The feature layers of the reconstruction loss (WCT's decoders: pixels + features; here the
#: relu1_1..relu4_1 features, for sharper reconstructions than relu4_1 alone).
FEATURE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")


@dataclasses.dataclass
class DecoderConfig:
    """How a decoder is trained: crops of ``size`` px from the training pool (``data``), Adam at
    ``learning_rate``; loss ``pixel_weight x mean((out - photo) / 255)^2 + feature_weight x sum over
    FEATURE_LAYERS of mean((f(out) - f(photo))^2) / mean(f(photo)^2)``."""

    layer: str = ENCODER_LAYER
    width: float = 1.0
    size: int = 256
    batch_size: int = 4
    steps: int = 2000
    learning_rate: float = 5e-4
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    data: tuple = ("offline", "bundled")
    checkpoint_every: int = 100
    validate_every: int = 100
    seed: int = 0
    weights: str | None = None
    precision: str = "auto"

    def validate(self) -> DecoderConfig:
        check_layers([self.layer])
        precisions.check(self.precision)
        for name in ("size", "batch_size", "steps", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        if self.size % _stride(self.layer) or self.size < 2 * _stride(self.layer):
            raise ConfigError(
                f"size must be a multiple of {_stride(self.layer)} from {2 * _stride(self.layer)}"
            )
        for name in ("learning_rate", "pixel_weight", "feature_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.data:
            raise ConfigError(
                "data needs at least one source of photos (offline, bundled, coco, a folder...)"
            )
        return self

    def sources(self) -> tuple:
        return tuple(self.data)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "data": list(self.data)}

    @classmethod
    def from_dict(cls, data: dict) -> DecoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown decoder setting(s) {unknown}: valid keys are {sorted(names)}")
        return cls(**{**data, "data": tuple(data.get("data", cls.data))})

    def replace(self, **changes) -> DecoderConfig:
        return dataclasses.replace(self, **changes)


def feature_layers(layer: str) -> list[str]:
    """The layers of :data:`FEATURE_LAYERS` up to ``layer`` (at least ``layer`` itself)."""
    deepest = CONV_LAYERS.index(layer)
    return [name for name in FEATURE_LAYERS if CONV_LAYERS.index(name) <= deepest] or [layer]


class ReconstructionLoss:
    """``loss(photos, outputs) -> (per-image total (N,), {"pixel", "feature": (N,)})``, the
    decoder's objective (see :class:`DecoderConfig`). Photos and outputs go through VGG19 in one
    batch; each layer's term is divided by the mean square of the photo's features there, as the
    transfer objective divides its content loss."""

    def __init__(self, config: DecoderConfig):
        self.layers = feature_layers(config.layer)
        self.extractor = build_extractor(self.layers, weights=config.weights, precision=config.precision)
        self.pixel_weight, self.feature_weight = float(config.pixel_weight), float(config.feature_weight)

    def __call__(self, photos, outputs):
        n = tf.shape(photos)[0]
        photos, outputs = tf.cast(photos, tf.float32), tf.cast(outputs, tf.float32)
        feats = self.extractor(preprocess(tf.concat([photos, outputs], 0)), training=False)
        pixel = tf.reduce_mean(tf.square((outputs - photos) / 255.0), axis=[1, 2, 3])
        feature = tf.zeros_like(pixel)
        for name in self.layers:
            target, out = tf.stop_gradient(feats[name][:n]), feats[name][n:]
            scale = tf.reduce_mean(tf.square(target), axis=[1, 2, 3]) + 1e-8
            feature += tf.reduce_mean(tf.square(out - target), axis=[1, 2, 3]) / scale
        terms = {"pixel": self.pixel_weight * pixel, "feature": self.feature_weight * feature}
        return terms["pixel"] + terms["feature"], terms


def autoencoder(decoder: keras.Model, weights=None, precision: str = "auto") -> keras.Model:
    """Photo -> VGG19 features at the decoder's layer (frozen) -> decoder -> photo again: what the
    decoder learns to be the identity of, and how a reconstruction is measured."""
    layer = decoder_layer(decoder)
    encoder = build_extractor([layer], weights=weights, precision=precision)
    photo = keras.Input((None, None, 3), name="photo")
    padded = PadToMultiple(_stride(layer), name="pad")(photo)
    feats = encoder(VGGPreprocess(name="preprocess")(padded))[layer]
    out = CropLike(name="crop", dtype="float32")(decoder(feats), photo)
    return keras.Model(photo, out, name=f"autoencoder_{layer}")


def reconstruct(decoder: keras.Model, image, weights=None) -> np.ndarray:
    """``image`` (H, W, 3) RGB [0, 255] through the encoder and ``decoder``: float32, same shape."""
    from nst_tf.networks import stylize

    return stylize(autoencoder(decoder, weights), image)


class DecoderResult(TrainResult):
    """A trained (or interrupted) decoder and how it was made: the fast networks' result
    (:func:`nst_tf.training.fit` fills in the loop's fields) with the decoder's loss terms and
    sidecar."""

    TERMS = ("pixel", "feature")

    def metadata(self) -> dict:
        from nst_tf import datasets

        return {
            "kind": "nst_tf decoder inverting VGG19 (AdaIN / WCT, notebook 06)",
            "format": DECODER_FORMAT,
            "layer": self.config.layer,
            "config": self.config.to_dict(),
            "feature_layers": feature_layers(self.config.layer),
            "data_manifest": datasets.manifest_path(self.path).name if self.path else None,
            "data_sources": list(self.config.sources()),
            "photos": len(self.pool.photos) if self.pool is not None else 0,
            "validation": {
                "folder": validation_dir(self.path).name if self.path else None,
                "strips": self.validation,
            },
            **self.run_metadata(),
        }


def train_decoder(
    config: DecoderConfig | None = None, *, output=None, resume: bool = False, progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None, callback=None,
) -> DecoderResult:  # fmt: skip
    """Train a decoder to invert VGG19 at ``config.layer`` on photos of the training pool; save it
    to ``output`` (``.keras``, sidecar, data manifest, loss curve, ``M.val/`` reconstructions of the
    held-out photos). The loop is the fast networks' (:func:`nst_tf.training.fit`): a
    ``tf.distribute`` strategy, checkpoints every ``checkpoint_every`` steps, Ctrl-C keeps the last
    one, ``resume=True`` continues it (``config`` None, or one whose ``steps`` sets the new total)."""
    from nst_tf import datasets, training
    from nst_tf.models import get_weights

    start, history, arrays = 0, [], None
    if resume:
        config, start, history, arrays = training.resume_state(
            output, config, DecoderConfig, "output=M.keras"
        )
    config = (config or DecoderConfig()).validate()
    strategy = strategy or training.default_strategy()
    loss_fn = ReconstructionLoss(config)
    pool = datasets.training_pool(config.sources(), crop_size=config.size, progress=progress)
    with strategy.scope():
        decoder = build_decoder(config.layer, config.width, seed=config.seed, precision=config.precision)
        model = autoencoder(decoder, config.weights, config.precision)
        optimizer = keras.optimizers.Adam(config.learning_rate)
        optimizer.build(decoder.trainable_variables)
    if arrays is not None:
        training._restore(decoder, optimizer, arrays)
    result = DecoderResult(
        decoder, config, history, start, pool=pool, weights=get_weights(config.weights)[1],
        precision=precisions.describe(config.precision),
        strategy={"name": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync},
    )  # fmt: skip
    step_fn = training.make_train_step(model, optimizer, loss_fn, strategy, config.batch_size)
    ds = datasets.crops(pool.paths(), config.size, config.batch_size, config.seed, start * config.batch_size)
    validate = None
    if output is not None and config.validate_every:
        photos, folder = training._validation_photos(), training.validation_dir(output)

        def validate(_decoder, step):
            return training._validation_strip(model, photos, folder / f"step-{step:06d}.jpg").name

    return training.fit(
        result, step_fn, ds, optimizer, strategy=strategy, output=output, progress=progress,
        callback=callback, validate=validate, manifest={"layer": config.layer},
    )  # fmt: skip


def shipped_decoder(layer: str = ENCODER_LAYER) -> Path:
    """The decoder that ships trained for ``layer`` (``data/models/decoders/<layer>.keras``);
    one-line ConfigError if there is none."""
    path = DECODERS_DIR / f"{layer}.keras"
    if not path.is_file():
        raise ConfigError(
            f"no shipped decoder for {layer} in '{printable(DECODERS_DIR)}': train one "
            "(python -m benchmarks.arbitrary train) or pass --decoder"
        )
    return path
