"""Learning a painter from unpaired pictures (notebook 07): a DCGAN, then CycleGAN.

Optimisation (03) and the fast networks (05) need the painting itself; a GAN learns a *domain* of
pictures from examples, and CycleGAN learns to translate between two domains from pictures that
were never paired.

* ``build_dcgan_generator`` (Radford et al. 2016): noise (N, z) -> (N, size, size, 3) pixels:
  a dense 4 x 4 start, then resize-and-convolve upsamplings with batch normalisation and ReLU.
* ``build_discriminator``: strided 4 x 4 convolutions with leaky ReLU and instance normalisation
  (``GroupNormalization(groups=-1)``); ``kind="dc"`` ends in one score per picture (a 4 x 4
  "valid" convolution), ``kind="patch"`` (pix2pix, Isola et al. 2017) in a map of scores, one per
  overlapping patch.
* CycleGAN's generators (Zhu et al. 2017) are Johnson et al.'s ResNet of notebook 05
  (:func:`nst_tf.networks.build_transformer`, which CycleGAN's authors adapted): instance norm,
  residual blocks, pixels in and out, so ``stylize`` and ``translate`` apply them to any size.
* Losses: least squares (LSGAN, Mao et al. 2017) for both nets; the cycle-consistency loss
  ``|F(G(x)) - x| + |G(F(y)) - y|`` and the identity loss ``|G(y) - y| + |F(x) - x|``.
* ``diff_augment`` (Zhao et al. 2020): colour, translation and cutout, differentiable, applied to
  real *and* fake pictures before the discriminator sees them.
* ``HistoryPool`` (Shrivastava et al. 2017): the discriminators see a mix of new fakes and fakes
  from earlier steps.
* ``train_dcgan`` / ``train_cyclegan``: the steps written out with ``tf.GradientTape`` under a
  ``tf.distribute`` strategy, in the loop every trainer shares (:func:`nst_tf.training.fit`:
  checkpoints, resume, progress bar, sidecar, data manifest, sample grids while training).
* Data: domain X is photos of the training pool; domain Y is, offline, *other* photos of the pool
  painted by the project's own transfer (03), or, online, a painter's work from the CycleGAN
  authors' archives (:func:`nst_tf.datasets.download_cyclegan`). Offline, the transfer of a
  held-out X photo is a ground truth that ``evaluate_cyclegan`` scores ``G(x)`` against.

Pixels are RGB in [0, 255] outside the networks; inside, [-1, 1] (the ``from_pixels`` layers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nst_tf import data as nst_data
from nst_tf import datasets
from nst_tf import precision as precisions
from nst_tf.errors import ConfigError
from nst_tf.files import printable, user_path
from nst_tf.images import load_image, resize_image, save_image, save_with_sidecar
from nst_tf.networks import _dtype_policy, build_transformer, read_keras, stylize

__all__ = [
    "AUGMENTATIONS",
    "CycleGANConfig",
    "DCGANConfig",
    "DIFF_AUGMENT",
    "DISCRIMINATORS",
    "HistoryPool",
    "basic_dataset",
    "build_cyclegan",
    "build_dcgan",
    "build_dcgan_generator",
    "build_discriminator",
    "centre_crops",
    "cycle_loss",
    "cyclegan_grid",
    "diff_augment",
    "domains",
    "eval_photo",
    "eval_side",
    "evaluate_cyclegan",
    "evaluate_dcgan",
    "fixed_noise",
    "identity_loss",
    "load_generator",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "make_cyclegan_step",
    "make_dcgan_step",
    "painted_photos",
    "sample_grid",
    "shipped_cyclegan",
    "train_cyclegan",
    "train_dcgan",
]

DISCRIMINATORS = ("dc", "patch")
#: The DCGAN's data: "basic" (each picture once, scaled and centre-cropped: as many distinct
#: examples as pictures) or "deluxe" (fresh random crops at several scales with flips every step).
AUGMENTATIONS = ("basic", "deluxe")
#: DiffAugment's three transforms (Zhao et al. 2020), in the order they are applied.
DIFF_AUGMENT = ("color", "translation", "cutout")
#: Version of the layout of a CycleGAN / DCGAN file (its sidecar's "format").
GAN_FORMAT = 1


# ----------------------------------------------------------------------------- the networks
def _from_pixels(x):
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="from_pixels")(x)


def _to_pixels(x):
    x = keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels", dtype="float32")(x)


def _leaky(x, name: str):
    """Leaky ReLU (slope 0.2) as max(x, 0.2 x): the same function as ``LeakyReLU``, without the
    fused BiasAdd + LeakyRelu kernel whose gradient TensorFlow's graph optimiser fails to rewrite
    (it prints a "remapper failed" error line in every training cell)."""
    return keras.layers.Maximum(name=name)([x, keras.layers.Rescaling(0.2, name=f"{name}_0.2x")(x)])


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 16 or size & (size - 1):
        raise ConfigError(f"size must be a power of two from 16 (32 or 64), got {size!r}")
    return size


def build_dcgan_generator(
    size: int = 32, z_dim: int = 64, width: int = 32, seed: int = 0, precision: str = "float32"
) -> keras.Model:
    """DCGAN's generator: noise (N, ``z_dim``) -> pixels (N, ``size``, ``size``, 3) in [0, 255].

    A dense layer to 4 x 4 x (``width`` x 2^k) features, then k = log2(size/4) upsamplings
    (nearest-neighbour resize, 3 x 3 convolution, batch normalisation, ReLU), halving the channels
    each time down to ``width``; a 3 x 3 convolution to RGB and a tanh scaled to pixels."""
    _check_size(size)
    keras.utils.set_random_seed(int(seed))
    ups = int(math.log2(size // 4))
    with _dtype_policy(precisions.keras_policy(precision)):
        z = keras.Input((z_dim,), name="z")
        x = keras.layers.Dense(4 * 4 * width * 2**ups, name="project")(z)
        x = keras.layers.Reshape((4, 4, width * 2**ups), name="to_4x4")(x)
        x = keras.layers.BatchNormalization(name="project_bn")(x)
        x = keras.layers.ReLU(name="project_relu")(x)
        for i in range(ups):
            channels = width * 2 ** (ups - 1 - i)
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i + 1}_resize")(x)
            x = keras.layers.Conv2D(channels, 3, padding="same", name=f"up{i + 1}")(x)
            x = keras.layers.BatchNormalization(name=f"up{i + 1}_bn")(x)
            x = keras.layers.ReLU(name=f"up{i + 1}_relu")(x)
        x = keras.layers.Conv2D(3, 3, padding="same", name="to_rgb")(x)
        out = _to_pixels(x)
    return keras.Model(z, out, name=f"dcgan_generator_{size}")


def build_discriminator(
    kind: str = "patch", size: int = 32, width: int = 32, seed: int = 0, precision: str = "float32",
    name: str | None = None,
) -> keras.Model:  # fmt: skip
    """A discriminator: pixels (N, ``size``, ``size``, 3) -> scores (N, h, w, 1), real ~ 1, fake ~ 0.

    4 x 4 convolutions of stride 2 with leaky ReLU (0.2), instance normalisation after all but the
    first, doubling the channels from ``width``. ``"dc"``: down to 4 x 4, then a 4 x 4 "valid"
    convolution: one score per picture (h = w = 1). ``"patch"``: down to 8 x 8, a 3 x 3
    convolution and a 1 x 1 one to a score per patch (8 x 8 scores; the convolutions of each see
    an 18 x 18 patch of a 32 px picture, 38 x 38 of a 64 px one; instance norm still shares each
    picture's statistics among them)."""
    if kind not in DISCRIMINATORS:
        raise ConfigError(f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {kind!r}")
    _check_size(size)
    keras.utils.set_random_seed(int(seed))
    downs = int(math.log2(size // 4)) if kind == "dc" else int(math.log2(size // 8))  # 8 x 8 patches
    with _dtype_policy(precisions.keras_policy(precision)):
        image = keras.Input((size, size, 3), name="image")
        x = _from_pixels(image)
        for i in range(downs):
            x = keras.layers.Conv2D(width * 2**i, 4, strides=2, padding="same", name=f"down{i + 1}")(x)
            if i:
                x = keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, name=f"down{i + 1}_in")(x)
            x = _leaky(x, f"down{i + 1}_lrelu")
        if kind == "dc":
            x = keras.layers.Conv2D(1, 4, padding="valid", name="score")(x)
        else:
            x = keras.layers.Conv2D(width * 2**downs, 3, padding="same", name="patch")(x)
            x = keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, name="patch_in")(x)
            x = _leaky(x, "patch_lrelu")
            x = keras.layers.Conv2D(1, 1, name="score")(x)
        out = keras.layers.Activation("linear", name="scores", dtype="float32")(x)
    return keras.Model(image, out, name=name or f"{kind}_discriminator_{size}")


# ----------------------------------------------------------------------------- the losses
def _per_image(x):
    """Mean over every axis but the batch: one value per picture (N,)."""
    x = tf.cast(x, tf.float32)
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def lsgan_d_loss(real_scores, fake_scores):
    """The least-squares discriminator loss per picture: ``((D(real) - 1)^2 + D(fake)^2) / 2``."""
    return 0.5 * (_per_image(tf.square(real_scores - 1.0)) + _per_image(tf.square(fake_scores)))


def lsgan_g_loss(fake_scores):
    """The least-squares generator loss per picture: ``(D(G(.)) - 1)^2``: fool the discriminator."""
    return _per_image(tf.square(fake_scores - 1.0))


def cycle_loss(real, cycled):
    """Cycle consistency per picture, mean absolute difference in [-1, 1] units: ``|F(G(x)) - x|``."""
    return _per_image(tf.abs(tf.cast(cycled, tf.float32) - tf.cast(real, tf.float32))) / 127.5


def identity_loss(real, same):
    """The identity loss per picture: a generator given a picture of its own target domain should
    leave it alone, ``|G(y) - y|`` (keeps colours; Zhu et al. use it for paintings <-> photos)."""
    return cycle_loss(real, same)


# ----------------------------------------------------------------------------- DiffAugment
def _seeds(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def diff_augment(images, seed, policy=DIFF_AUGMENT):
    """DiffAugment (Zhao et al. 2020) of pixels (N, H, W, 3) in [0, 255], with a stateless ``seed``
    (shape (2,)); same shape out, differentiable in ``images``. Each picture gets its own draw of:
    ``color`` (brightness +-0.5, saturation x0-2, contrast x0.5-1.5, in [-1, 1] units),
    ``translation`` (shifted by up to 1/8 of its side, zeros (grey) shifted in) and ``cutout`` (a
    grey square of half its side at a random place). Apply it to real and fake alike, every time
    the discriminator sees a picture, so that D cannot tell them apart by the augmentation."""
    policy = tuple(policy or ())
    unknown = sorted(set(policy) - set(DIFF_AUGMENT))
    if unknown:
        raise ConfigError(f"unknown DiffAugment transform(s) {unknown}: choose from {list(DIFF_AUGMENT)}")
    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    s = _seeds(seed, 6)
    if "color" in policy:
        x = x + (tf.random.stateless_uniform([n, 1, 1, 1], s[0]) - 0.5)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * (tf.random.stateless_uniform([n, 1, 1, 1], s[1]) * 2.0) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * (tf.random.stateless_uniform([n, 1, 1, 1], s[2]) + 0.5) + mean
    if "translation" in policy:
        x = _translate(x, s[3], 0.125)
    if "cutout" in policy:
        x = _cutout(x, s[4], 0.5)
    del h, w
    return (x + 1.0) * 127.5


def _translate(x, seed, ratio: float):
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    dh = tf.cast(tf.cast(h, tf.float32) * ratio + 0.5, tf.int32)
    dw = tf.cast(tf.cast(w, tf.float32) * ratio + 0.5, tf.int32)
    s = _seeds(seed, 2)
    ty = tf.random.stateless_uniform([n, 1], s[0], -dh, dh + 1, dtype=tf.int32)
    tx = tf.random.stateless_uniform([n, 1], s[1], -dw, dw + 1, dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])  # a border of zeros to shift in
    rows = tf.clip_by_value(tf.range(h)[None] + ty + 1, 0, h + 1)  # (N, H) into the padded picture
    cols = tf.clip_by_value(tf.range(w)[None] + tx + 1, 0, w + 1)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def _cutout(x, seed, ratio: float):
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    ch = tf.cast(tf.cast(h, tf.float32) * ratio + 0.5, tf.int32)
    cw = tf.cast(tf.cast(w, tf.float32) * ratio + 0.5, tf.int32)
    s = _seeds(seed, 2)
    cy = tf.random.stateless_uniform([n, 1, 1], s[0], 0, h + (1 - ch % 2), dtype=tf.int32)
    cx = tf.random.stateless_uniform([n, 1, 1], s[1], 0, w + (1 - cw % 2), dtype=tf.int32)
    ys = tf.range(h)[None, :, None] - cy + ch // 2  # inside the square where 0 <= ys < ch
    xs = tf.range(w)[None, None, :] - cx + cw // 2
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * tf.cast(~inside, x.dtype)[..., None]


# ----------------------------------------------------------------------------- the history pool
class HistoryPool:
    """A buffer of ``size`` generated pictures (Shrivastava et al. 2017; CycleGAN keeps 50): each
    new fake is stored while the buffer fills; after that, with probability 1/2 the discriminator
    gets a fake from an earlier step instead (and the new one takes its place), so that it does
    not forget what the generator used to do and chase only its latest trick. In the graph, with
    stateless draws; its variables go into the training checkpoint (``variables``)."""

    def __init__(self, size: int, shape):
        self.size = int(size)
        self.images = tf.Variable(tf.zeros((max(self.size, 1), *shape), tf.float32), trainable=False,
                                  name="history_images")  # fmt: skip
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="history_count")

    @property
    def variables(self) -> list:
        return [self.images, self.count]

    def __call__(self, fakes, seed):
        fakes = tf.cast(fakes, tf.float32)
        if self.size == 0:
            return fakes
        n = tf.shape(fakes, out_type=tf.int64)[0]
        s = _seeds(seed, 2)
        slot = self.count + tf.range(n)  # where each new fake goes while the buffer fills
        filling = slot < self.size
        swap = (tf.random.stateless_uniform([n], s[0]) < 0.5) & ~filling
        pick = tf.random.stateless_uniform([n], s[1], 0, self.size, dtype=tf.int64)
        old = tf.gather(self.images, pick)
        out = tf.where(swap[:, None, None, None], old, fakes)
        where = tf.where(filling, slot, pick)
        keep = filling | swap  # fakes that enter the buffer
        index = tf.boolean_mask(where, keep)[:, None]
        self.images.assign(tf.tensor_scatter_nd_update(self.images, index, tf.boolean_mask(fakes, keep)))
        self.count.assign(tf.minimum(self.count + n, self.size))
        return tf.stop_gradient(out)


class _Optimizers:
    """Several optimizers (and the history pools) as one, for the shared checkpoint code: their
    ``variables`` in order."""

    def __init__(self, *parts):
        self.parts = parts

    @property
    def variables(self) -> list:
        return [v for part in self.parts for v in part.variables]


# ----------------------------------------------------------------------------- configs
@dataclasses.dataclass
class _GANConfig:
    """What both GAN configs share: the data (``data``: the training pool's sources for X;
    ``domain``, ``style``, ``paint_side``: domain Y, see :func:`domains`), checkpoints, validation
    grids, seed, VGG19 weights (for painting and scoring) and precision."""

    data: tuple = ("offline", "bundled")
    domain: str = "painted"
    style: str = "hubble_deep_field"
    paint_side: int = 192
    checkpoint_every: int = 200
    validate_every: int = 500
    seed: int = 0
    weights: str | None = None
    precision: str = "auto"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} setting(s) {unknown}: valid keys are {sorted(names)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(fields[k].default, tuple) else v for k, v in data.items()})

    def _check_common(self):
        precisions.check(self.precision)
        if self.discriminator not in DISCRIMINATORS:
            raise ConfigError(
                f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {self.discriminator!r}"
            )
        _check_size(self.size)
        for name in ("batch_size", "steps", "checkpoint_every", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        if not float(self.learning_rate) > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        lo, hi = self.photo_side
        if not self.size <= lo <= hi:
            raise ConfigError(
                f"photo_side must be (low, high) with {self.size} <= low <= high, got {self.photo_side!r}"
            )
        unknown = sorted(set(self.diff_augment) - set(DIFF_AUGMENT))
        if unknown:
            raise ConfigError(f"unknown DiffAugment transform(s) {unknown}: choose from {list(DIFF_AUGMENT)}")

    def scales(self) -> tuple:
        """The crop stream's scales: short side of each picture before the crop, over ``size``."""
        return (self.photo_side[0] / self.size, self.photo_side[1] / self.size)


@dataclasses.dataclass
class CycleGANConfig(_GANConfig):
    """How a CycleGAN is trained: ``size`` px crops of pictures scaled to a short side of
    ``photo_side`` px, X from ``data`` (the training pool), Y from ``domain`` ("painted": other
    photos of the pool painted by the transfer with ``style``; or a CycleGAN archive name such as
    "monet2photo"; or a folder of pictures). Adam (``learning_rate``, beta_1 0.5) for all four
    networks; generator loss ``gan + cycle_weight x cycle + identity_weight x cycle_weight x
    identity``; a history pool of ``pool_size`` fakes; ``diff_augment`` (() for none) on everything
    the discriminators see."""

    size: int = 32
    photo_side: tuple = (96, 160)
    batch_size: int = 8
    steps: int = 2000
    learning_rate: float = 2e-4
    width: int = 16
    res_blocks: int = 3
    discriminator: str = "patch"
    d_width: int = 32
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50
    diff_augment: tuple = ()

    def validate(self) -> CycleGANConfig:
        self._check_common()
        for name in ("cycle_weight", "identity_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.pool_size, int) or self.pool_size < 0:
            raise ConfigError(f"pool_size must be a whole number >= 0, got {self.pool_size!r}")
        if not self.data:
            raise ConfigError(
                "data needs at least one source of photos (offline, bundled, coco, a folder...)"
            )
        return self


@dataclasses.dataclass
class DCGANConfig(_GANConfig):
    """How a DCGAN is trained: pictures of ``domain`` (as :class:`CycleGANConfig`'s Y), ``size`` px,
    "basic" (each picture scaled to ``photo_side[0]`` and centre-cropped, the same few examples
    every epoch) or "deluxe" ``augmentation`` (random crops at ``photo_side`` scales, flips);
    ``diff_augment`` on what the discriminator sees; Adam (``learning_rate``, beta_1 0.5)."""

    size: int = 32
    photo_side: tuple = (32, 64)
    batch_size: int = 16
    steps: int = 1500
    learning_rate: float = 2e-4
    z_dim: int = 64
    width: int = 32
    d_width: int = 32
    discriminator: str = "dc"
    augmentation: str = "deluxe"
    diff_augment: tuple = ()

    def validate(self) -> DCGANConfig:
        self._check_common()
        if self.augmentation not in AUGMENTATIONS:
            raise ConfigError(
                f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {self.augmentation!r}"
            )
        return self


# ----------------------------------------------------------------------------- the data
#: Where painted domain-Y pictures are kept between runs (under the download cache).
def painted_dir() -> Path:
    return nst_data.cache_dir() / "painted"


def painted_photos(
    photos, style: str, side: int = 192, *, weights=None, progress: bool | None = None
) -> list:
    """Each photo (:class:`nst_tf.datasets.Photo` or path) painted in ``style`` by the transfer of
    notebook 03 (its default settings, long side ``side``), cached under :func:`painted_dir` by
    (photo, style, side, VGG19 weights): a list of :class:`nst_tf.datasets.Photo` whose ``source``
    says how it was made. Each picture has a JSON sidecar (the transfer's)."""
    from nst_tf.files import progress_bar
    from nst_tf.models import get_weights
    from nst_tf.transfer import transfer_style

    style_path = Path(nst_data.resolve_image(style, "style"))
    style_sha = datasets.sha256_file(style_path, 12)
    weights_id = get_weights(weights)[1].get("weights_id", "")
    out = []
    bar = progress_bar(len(photos), desc=f"painting domain Y ({style_path.stem})", enabled=progress)
    for photo in photos:
        key = hashlib.sha256(
            f"{photo.sha256 or datasets.sha256_file(photo.path)}|{style_sha}|{side}|{weights_id}".encode()
        )
        path = painted_dir() / f"{photo.name}-{style_path.stem}-{side}-{key.hexdigest()[:12]}.png"
        if not path.is_file():
            result = transfer_style(
                str(photo.path), str(style_path), size=side, weights=weights, progress=False
            )
            meta = {**result.metadata(), "photo": photo.file, "style": style_path.name}
            save_with_sidecar(result.image, path, meta, overwrite=True)
        bar.update(1)
        out.append(datasets.Photo(
            path, f"painted by nst_tf transfer ({style_path.stem})",
            f"{photo.licence}; painting: see {style_path.name}'s credit", f"painted/{path.name}",
            credit=photo.credit, sha256=datasets.sha256_file(path),
        ))  # fmt: skip
    bar.close()
    return out


def domains(config, progress: bool | None = None) -> dict:
    """The pictures of both domains for ``config`` (:class:`CycleGANConfig` or :class:`DCGANConfig`):
    ``{"x": [Photo], "y": [Photo], "pool": Pool, "held_out": [Photo], "truth": [Photo] | None}``.

    X: photos of the training pool at even places; Y with ``domain="painted"``: the pool's photos at
    odd places, painted in ``config.style`` (so no X photo is ever seen painted: unpaired), and
    "truth", the held-out photos painted the same way; with a CycleGAN archive name, its ``trainA``
    (the painter's work: downloaded once) and no truth; with a folder, the pictures in it."""
    pool = datasets.training_pool(config.data, crop_size=config.photo_side[0], progress=progress)
    held_out = [datasets._with_size(p) for p in datasets.bundled_photos(include_held_out=True)
                if p.name in datasets.HELD_OUT]  # fmt: skip
    domain = str(config.domain)
    if domain == "painted":
        if len(pool) < 2:
            raise ConfigError(
                "domain 'painted' needs at least two photos in the pool (one for X, one for Y): add --data"
            )
        x, y_photos = pool.photos[0::2], pool.photos[1::2]
        y = painted_photos(
            y_photos, config.style, config.paint_side, weights=config.weights, progress=progress
        )
        truth = painted_photos(
            held_out, config.style, config.paint_side, weights=config.weights, progress=progress
        )
        return {"x": x, "y": y, "pool": pool, "held_out": held_out, "truth": truth}
    if domain in datasets.CYCLEGAN_ARCHIVES:
        y = datasets.cyclegan_photos(domain, "trainA", progress=progress)
    else:
        y = datasets.folder_photos(domain)
    return {"x": pool.photos, "y": y, "pool": pool, "held_out": held_out, "truth": None}


def _to_short_side(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` resized so that its short side is ``side`` px (the other rounded)."""
    h, w = img.shape[:2]
    return resize_image(img, size=(round(h * side / min(h, w)), round(w * side / min(h, w))))


def centre_crops(paths, size: int, side: int) -> np.ndarray:
    """Each picture scaled to short side ``side`` and centre-cropped to ``size``: (N, size, size, 3)."""
    out = []
    for path in paths:
        img = _to_short_side(load_image(path), side)
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        out.append(img[top : top + size, left : left + size])
    return np.stack(out).astype(np.float32)


def basic_dataset(paths, size: int, side: int, batch_size: int, seed: int, start: int):
    """The "basic" data: the same centre crops, reshuffled each epoch (stateless, by seed)."""
    pictures = centre_crops(paths, size, side)
    n = len(pictures)

    def batches():
        i = start
        while True:
            epoch, k = divmod(i, n)
            yield pictures[np.random.default_rng([seed, epoch]).permutation(n)[k]]
            i += 1

    ds = tf.data.Dataset.from_generator(batches, output_signature=tf.TensorSpec((size, size, 3), tf.float32))
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


# ----------------------------------------------------------------------------- CycleGAN
def build_cyclegan(config: CycleGANConfig) -> keras.Model:
    """The four networks as one Keras model (what is saved and checkpointed): inputs x and y,
    outputs G(x) (X -> Y), F(y) (Y -> X), D_X(x) and D_Y(y). ``load_generator`` takes G or F out."""
    p, s = config.precision, config.seed
    g = build_transformer(config.width, config.res_blocks, seed=s, precision=p)
    g.name = "G_x2y"
    f = build_transformer(config.width, config.res_blocks, seed=s + 1, precision=p)
    f.name = "F_y2x"
    d_x = build_discriminator(config.discriminator, config.size, config.d_width, s + 2, p, name="D_x")
    d_y = build_discriminator(config.discriminator, config.size, config.d_width, s + 3, p, name="D_y")
    x = keras.Input((config.size, config.size, 3), name="x")
    y = keras.Input((config.size, config.size, 3), name="y")
    return keras.Model([x, y], [g(x), f(y), d_x(x), d_y(y)], name="cyclegan")


def _nets(model: keras.Model):
    return tuple(model.get_layer(name) for name in ("G_x2y", "F_y2x", "D_x", "D_y"))


def make_cyclegan_step(model, optimizers, pools, config: CycleGANConfig, strategy):
    """The four-network step, written out (notebook 07 writes the same): generators G: X -> Y and
    F: Y -> X, discriminators D_X and D_Y; one tape for all four losses, then each network steps on
    its own loss. Returns ``step((x, y), seed) -> (G+F loss, terms)``, averaged over the global
    batch as :func:`nst_tf.training.make_train_step`."""
    g, f, d_x, d_y = _nets(model)
    opt_g, opt_d = optimizers
    pool_x, pool_y = pools
    gen_vars = g.trainable_variables + f.trainable_variables
    disc_vars = d_x.trainable_variables + d_y.trainable_variables
    batch, cycle_w, ident_w = config.batch_size, float(config.cycle_weight), float(config.identity_weight)
    policy = tuple(config.diff_augment)

    def aug(images, seed):
        return diff_augment(images, seed, policy) if policy else images

    def replica_step(batch_xy, seed):
        x, y = batch_xy
        s = _seeds(seed, 6)
        with tf.GradientTape(persistent=True) as tape:
            fake_y, fake_x = g(x, training=True), f(y, training=True)
            cycled_x, cycled_y = f(fake_y, training=True), g(fake_x, training=True)
            gan_g = lsgan_g_loss(d_y(aug(fake_y, s[0]), training=True))
            gan_f = lsgan_g_loss(d_x(aug(fake_x, s[1]), training=True))
            cycle = cycle_loss(x, cycled_x) + cycle_loss(y, cycled_y)
            per_image = gan_g + gan_f + cycle_w * cycle
            identity = tf.zeros_like(cycle)
            if ident_w * cycle_w > 0:
                identity = identity_loss(y, g(y, training=True)) + identity_loss(x, f(x, training=True))
                per_image += ident_w * cycle_w * identity
            gen_loss = tf.nn.compute_average_loss(per_image, global_batch_size=batch)
            old_y, old_x = pool_y(fake_y, s[2]), pool_x(fake_x, s[3])
            loss_dy = lsgan_d_loss(d_y(aug(y, s[4]), training=True), d_y(aug(old_y, s[4] + 1), training=True))
            loss_dx = lsgan_d_loss(d_x(aug(x, s[5]), training=True), d_x(aug(old_x, s[5] + 1), training=True))
            disc_loss = tf.nn.compute_average_loss(loss_dx + loss_dy, global_batch_size=batch)
        opt_g.apply_gradients(zip(tape.gradient(gen_loss, gen_vars), gen_vars))
        opt_d.apply_gradients(zip(tape.gradient(disc_loss, disc_vars), disc_vars))
        del tape
        terms = {
            "d_x": loss_dx,
            "d_y": loss_dy,
            "gan_g": gan_g,
            "gan_f": gan_f,
            "cycle": cycle,
            "identity": identity,
        }
        means = {k: tf.nn.compute_average_loss(v, global_batch_size=batch) for k, v in terms.items()}
        return gen_loss, means

    from nst_tf.training import distributed_step

    return distributed_step(replica_step, strategy)


class _GANResult:
    """Mixed into :class:`nst_tf.training.TrainResult`: the sidecar of a GAN."""

    kind = ""
    domains: dict = {}

    def metadata(self) -> dict:
        from nst_tf import datasets as ds

        doms = self.domains or {}
        return {
            "kind": self.kind,
            "format": GAN_FORMAT,
            "config": self.config.to_dict(),
            "data_manifest": ds.manifest_path(self.path).name if self.path else None,
            "domains": _manifest(doms),
            "validation": {
                "folder": _val_dir(self.path).name if self.path else None,
                "grids": self.validation,
            },
            **self.run_metadata(),
        }


def _val_dir(model_path) -> Path:
    from nst_tf.training import validation_dir

    return validation_dir(model_path)


def _result_class(terms, kind):
    from nst_tf.training import TrainResult

    return type("GANResult", (_GANResult, TrainResult), {"TERMS": terms, "kind": kind})


CYCLEGAN_TERMS = ("d_x", "d_y", "gan_g", "gan_f", "cycle", "identity")
DCGAN_TERMS = ("d_real", "d_fake", "g")


def _start(output, config, config_type, resume):
    from nst_tf import training

    start, history, arrays = 0, [], None
    if resume:
        config, start, history, arrays = training.resume_state(output, config, config_type, "output=M.keras")
    return (config or config_type()).validate(), start, history, arrays


def _adam(lr):
    return keras.optimizers.Adam(lr, beta_1=0.5)


def train_cyclegan(
    config: CycleGANConfig | None = None, *, output=None, resume: bool = False, progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None, callback=None,
):  # fmt: skip
    """Train a CycleGAN (X photos <-> Y paintings) and save it to ``output`` (``.keras`` with the
    four networks, sidecar, data manifest of both domains, loss curves, ``M.val/`` grids of the
    held-out photos x, G(x), F(G(x)) every ``validate_every`` steps). The loop of every trainer
    (:func:`nst_tf.training.fit`): checkpoints, Ctrl-C, ``resume=True``."""
    from nst_tf import training
    from nst_tf.models import get_weights

    config, start, history, arrays = _start(output, config, CycleGANConfig, resume)
    strategy = strategy or training.default_strategy()
    doms = domains(config, progress)
    shape = (config.size, config.size, 3)
    with strategy.scope():
        model = build_cyclegan(config)
        opt_g, opt_d = _adam(config.learning_rate), _adam(config.learning_rate)
        g, f, d_x, d_y = _nets(model)
        opt_g.build(g.trainable_variables + f.trainable_variables)
        opt_d.build(d_x.trainable_variables + d_y.trainable_variables)
        pools = (HistoryPool(config.pool_size, shape), HistoryPool(config.pool_size, shape))
    state = _Optimizers(opt_g, opt_d, *pools)
    if arrays is not None:
        training._restore(model, state, arrays)
    result = _result_class(CYCLEGAN_TERMS, "nst_tf CycleGAN (Zhu et al. 2017), notebook 07")(
        model, config, history, start, pool=datasets.Pool([*doms["x"], *doms["y"]], config.size),
        weights=get_weights(config.weights)[1], precision=precisions.describe(config.precision),
        strategy={"name": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync},
    )  # fmt: skip
    result.domains = doms
    step_fn = make_cyclegan_step(model, (opt_g, opt_d), pools, config, strategy)
    first = start * config.batch_size
    ds_x = datasets.crops(
        [p.path for p in doms["x"]], config.size, config.batch_size, config.seed, first, config.scales()
    )
    ds_y = datasets.crops(
        [p.path for p in doms["y"]], config.size, config.batch_size, config.seed + 1, first, config.scales()
    )
    validate = None
    if output is not None and config.validate_every:
        photos = [eval_photo(p.path, config) for p in doms["held_out"]]

        def validate(model, step):
            path = _val_dir(output) / f"step-{step:06d}.jpg"
            return save_image(cyclegan_grid(model, photos), path).name

    return training.fit(
        result, step_fn, tf.data.Dataset.zip((ds_x, ds_y)), state, strategy=strategy, output=output,
        progress=progress, callback=callback, validate=validate, manifest={"domains": _manifest(doms)},
    )  # fmt: skip


def _manifest(doms) -> dict:
    return {k: [p.file for p in doms.get(k) or []] for k in ("x", "y", "truth")}


#: The long side, relative to the middle of ``photo_side``, at which whole photos are translated
#: and scored: the scale the generators saw their crops at.
def eval_side(config) -> int:
    return int(round(sum(config.photo_side) / 2 / 8) * 8)


def eval_photo(path, config) -> np.ndarray:
    """The photo at ``path`` with its short side :func:`eval_side` px: how it is translated and scored."""
    return _to_short_side(load_image(path), eval_side(config))


def cyclegan_grid(model, photos) -> np.ndarray:
    """Rows x, G(x), F(G(x)) for each photo side by side (the sample grid of training)."""
    g, f, _, _ = _nets(model)
    cols = []
    for photo in photos:
        fake = stylize(g, photo)
        cols.append(np.concatenate([photo, fake, stylize(f, fake)], axis=0))
    h = max(c.shape[0] for c in cols)
    cols = [np.pad(c, ((0, h - c.shape[0]), (0, 4), (0, 0)), constant_values=255) for c in cols]
    return np.clip(np.concatenate(cols, axis=1), 0, 255)


def load_generator(path, direction: str = "x2y", precision: str | None = "auto") -> keras.Model:
    """Generator G (``"x2y"``: photo -> painting) or F (``"y2x"``) of a CycleGAN saved by
    :func:`train_cyclegan`; one-line ConfigError if the file is not one."""
    from nst_tf.networks import with_precision

    names = {"x2y": "G_x2y", "y2x": "F_y2x"}
    if direction not in names:
        raise ConfigError(f"direction must be x2y (photo -> painting) or y2x, got {direction!r}")
    fix = "pass a .keras file written by nst_tf.gan.train_cyclegan (python -m benchmarks.cyclegan)"
    model = read_keras(user_path(path), "CycleGAN", fix)
    try:
        gen = model.get_layer(names[direction])
    except ValueError:
        raise ConfigError(
            f"'{printable(path)}' is not a CycleGAN (no generator {names[direction]}) — {fix}"
        ) from None
    return gen if precision is None else with_precision(gen, precision)


#: Where the CycleGANs that ship trained live (``data/models/cyclegan/<name>.keras``).
CYCLEGAN_DIR = nst_data.SHIPPED_DIR / "cyclegan"


def shipped_cyclegan(name: str | None = None) -> Path:
    """The CycleGAN that ships trained as ``name`` (default: the first by name); one-line
    ConfigError naming those there are if there is none such."""
    found = {p.stem: p for p in sorted(CYCLEGAN_DIR.glob("*.keras"))} if CYCLEGAN_DIR.is_dir() else {}
    if name is None and found:
        return next(iter(found.values()))
    key = str(name or "").strip().lower().replace(" ", "_").replace("-", "_")
    if key in found:
        return found[key]
    have = ", ".join(found) or "none"
    raise ConfigError(
        f"no CycleGAN ships trained as {printable(name)!r} (shipped: {have}) — pass --model M.keras "
        "(trained by nst_tf.gan.train_cyclegan or python -m benchmarks.cyclegan)"
    )


def evaluate_cyclegan(model, doms: dict, config: CycleGANConfig) -> dict:
    """How well G translates the held-out photos (whole photos, long side :func:`eval_side`):
    per photo and as means, correspondence to the photo (``ssim``, ``edge`` correlation), the
    reconstruction error ``|F(G(x)) - x|`` (mean absolute, in grey levels), ``to_truth`` (mean
    absolute difference to the transfer of x, when domain Y was painted by it), ``style``
    distance to the painting (or, online, to the first Y picture)."""
    from nst_tf import metrics

    g, f, _, _ = _nets(model)
    style = (
        load_image(nst_data.resolve_image(config.style, "style"))
        if doms.get("truth")
        else load_image(doms["y"][0].path)
    )
    rows = []
    for i, photo in enumerate(doms["held_out"]):
        x = eval_photo(photo.path, config)
        fake = np.clip(stylize(g, x), 0, 255)
        back = np.clip(stylize(f, fake), 0, 255)
        row = {
            "photo": photo.name,
            "ssim": metrics.ssim(fake, x),
            "edge": metrics.edge_correlation(fake, x),
            "reconstruction": float(np.mean(np.abs(back - x))),
            "style": metrics.style_distance(fake, style, weights=config.weights),
        }
        if doms.get("truth"):
            truth = resize_image(load_image(doms["truth"][i].path), size=x.shape[:2])
            row["to_truth"] = float(np.mean(np.abs(fake - truth)))
            row["truth_ssim"] = metrics.ssim(fake, truth)
        rows.append(row)
    keys = [k for k in rows[0] if k != "photo"]
    return {"photos": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}}


# ----------------------------------------------------------------------------- DCGAN
def build_dcgan(config: DCGANConfig) -> keras.Model:
    """Generator and discriminator as one Keras model (saved and checkpointed): inputs z and a
    picture, outputs G(z) and D(picture)."""
    p, s = config.precision, config.seed
    g = build_dcgan_generator(config.size, config.z_dim, config.width, s, p)
    g.name = "G"
    d = build_discriminator(config.discriminator, config.size, config.d_width, s + 1, p, name="D")
    z = keras.Input((config.z_dim,), name="z")
    image = keras.Input((config.size, config.size, 3), name="image")
    return keras.Model([z, image], [g(z), d(image)], name="dcgan")


def make_dcgan_step(model, optimizers, config: DCGANConfig, strategy):
    """The DCGAN step, written out: noise -> G -> fakes; D scores DiffAugment-ed reals and fakes;
    D steps on the LSGAN discriminator loss, G on the generator loss (one tape)."""
    g, d = model.get_layer("G"), model.get_layer("D")
    opt_g, opt_d = optimizers
    batch, policy = config.batch_size, tuple(config.diff_augment)

    def aug(images, seed):
        return diff_augment(images, seed, policy) if policy else images

    def replica_step(real, seed):
        s = _seeds(seed, 3)
        n = tf.shape(real)[0]
        z = tf.random.stateless_normal([n, config.z_dim], s[0])
        with tf.GradientTape(persistent=True) as tape:
            fake = g(z, training=True)
            real_scores, fake_scores = d(aug(real, s[1]), training=True), d(aug(fake, s[2]), training=True)
            d_real = 0.5 * _per_image(tf.square(real_scores - 1.0))
            d_fake = 0.5 * _per_image(tf.square(fake_scores))
            g_loss = lsgan_g_loss(fake_scores)
            d_total = tf.nn.compute_average_loss(d_real + d_fake, global_batch_size=batch)
            g_total = tf.nn.compute_average_loss(g_loss, global_batch_size=batch)
        opt_d.apply_gradients(zip(tape.gradient(d_total, d.trainable_variables), d.trainable_variables))
        opt_g.apply_gradients(zip(tape.gradient(g_total, g.trainable_variables), g.trainable_variables))
        del tape
        terms = {"d_real": d_real, "d_fake": d_fake, "g": g_loss}
        return g_total, {k: tf.nn.compute_average_loss(v, global_batch_size=batch) for k, v in terms.items()}

    from nst_tf.training import distributed_step

    return distributed_step(replica_step, strategy)


def sample_grid(generator, z) -> np.ndarray:
    """The generator's pictures for the noise rows ``z`` (N, z_dim), tiled in a near-square grid."""
    images = np.clip(generator(np.asarray(z, np.float32), training=False).numpy(), 0, 255)
    n, size = len(images), images.shape[1]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (size + 2), cols * (size + 2), 3), 255.0, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (size + 2) : r * (size + 2) + size, c * (size + 2) : c * (size + 2) + size] = img
    return grid


def fixed_noise(config: DCGANConfig, n: int = 16) -> np.ndarray:
    """The same ``n`` noise vectors for every grid of one training (seeded by ``config.seed``)."""
    return np.random.default_rng([config.seed, 7]).standard_normal((n, config.z_dim)).astype(np.float32)


def train_dcgan(
    config: DCGANConfig | None = None, *, output=None, resume: bool = False, progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None, callback=None,
):  # fmt: skip
    """Train a DCGAN on the pictures of domain Y (:func:`domains`) and save it to ``output``
    (``.keras``, sidecar, data manifest, loss curves, ``M.val/`` grids of 16 fixed noise vectors
    every ``validate_every`` steps), in the loop of every trainer (:func:`nst_tf.training.fit`)."""
    from nst_tf import training
    from nst_tf.models import get_weights

    config, start, history, arrays = _start(output, config, DCGANConfig, resume)
    strategy = strategy or training.default_strategy()
    doms = domains(config, progress)
    with strategy.scope():
        model = build_dcgan(config)
        opt_g, opt_d = _adam(config.learning_rate), _adam(config.learning_rate)
        opt_g.build(model.get_layer("G").trainable_variables)
        opt_d.build(model.get_layer("D").trainable_variables)
    state = _Optimizers(opt_g, opt_d)
    if arrays is not None:
        training._restore(model, state, arrays)
    result = _result_class(DCGAN_TERMS, "nst_tf DCGAN (Radford et al. 2016), notebook 07")(
        model, config, history, start, pool=datasets.Pool(list(doms["y"]), config.size),
        weights=get_weights(config.weights)[1], precision=precisions.describe(config.precision),
        strategy={"name": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync},
    )  # fmt: skip
    result.domains = {"y": doms["y"]}
    paths, first = [p.path for p in doms["y"]], start * config.batch_size
    if config.augmentation == "basic":
        ds = basic_dataset(paths, config.size, config.photo_side[0], config.batch_size, config.seed, first)
    else:
        ds = datasets.crops(paths, config.size, config.batch_size, config.seed, first, config.scales())
    step_fn = make_dcgan_step(model, (opt_g, opt_d), config, strategy)
    validate = None
    if output is not None and config.validate_every:
        z = fixed_noise(config)

        def validate(model, step):
            return save_image(
                sample_grid(model.get_layer("G"), z), _val_dir(output) / f"step-{step:06d}.png"
            ).name

    return training.fit(
        result, step_fn, ds, state, strategy=strategy, output=output, progress=progress,
        callback=callback, validate=validate, manifest={"domains": {"y": [p.file for p in doms["y"]]}},
    )  # fmt: skip


def evaluate_dcgan(model, doms: dict, config: DCGANConfig, n: int = 64) -> dict:
    """The DCGAN's ``n`` samples against ``n`` real crops of domain Y (deluxe crops, a fixed seed):
    ``style`` distance of the sample grid to the real crops' grid (Gram statistics), ``diversity``
    (mean pairwise distance between samples over the same between real crops: 0 is one picture
    repeated, mode collapse) and ``memorised`` (mean distance from each sample to its nearest real
    centre crop, the "basic" data, in grey levels: near 0 copies the training pictures)."""
    from nst_tf import metrics

    g = model.get_layer("G")
    z = np.random.default_rng([config.seed, 11]).standard_normal((n, config.z_dim)).astype(np.float32)
    fakes = np.clip(g(z, training=False).numpy(), 0, 255)
    paths = [p.path for p in doms["y"]]
    reals = next(iter(datasets.crops(paths, config.size, n, seed=12345, scales=config.scales()))).numpy()
    basic = centre_crops(paths, config.size, config.photo_side[0])

    def spread(a):
        flat = a.reshape(len(a), -1) / 255.0
        d = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1))
        return float(d[np.triu_indices(len(a), 1)].mean())

    nearest = np.abs(fakes[:, None] - basic[None]).mean(axis=(2, 3, 4)).min(axis=1)

    def grid(imgs):
        return np.concatenate(
            [np.concatenate(list(imgs[r * 8 : r * 8 + 8]), 1) for r in range(len(imgs) // 8)], 0
        )  # noqa: E731

    return {
        "style": metrics.style_distance(grid(fakes), grid(reals), weights=config.weights),
        "diversity": spread(fakes) / max(spread(reals), 1e-9),
        "memorised": float(nearest.mean()),
    }
