"""Loss terms of neural style transfer (notebooks 01-03 write each one out).

All terms are *means*, not sums, so their size does not depend on the image
size and the same weights and learning rates work at 64 px and at 1024 px.
That is the one place we depart from Gatys et al. (2016), whose sums make the
right style weight change with resolution.

With ``F`` the (N, H, W, C) features of the generated image at one layer and
``P`` those of the content image, ``M = H * W`` the number of positions:

* content loss   ``L_c = mean((F - P)**2)``  (Gatys: ``1/2 * sum``)
* Gram matrix    ``G = F^T F / M``, a (C, C) matrix of channel co-activations
  averaged over positions (Gatys: no ``1/M``)
* style loss     ``E_l = mean((G - A)**2)`` over the C*C entries, where ``A``
  is the Gram matrix of the style image; ``L_s = sum_l w_l * E_l``. With our
  normalised Gram this equals 4x Gatys's ``E_l = sum((G-A)**2) / (4 N^2 M^2)``.
* total variation ``L_tv = mean(dx**2) + mean(dy**2)`` of neighbouring pixel
  differences of the preprocessed image (Mahendran & Vedaldi, beta = 2).

Layer balance: VGG19's ReLU activations (on 0-255 caffe inputs) differ in
size by orders of magnitude between layers; the raw style loss of
block4_conv1 is ~1e5 times that of block1_conv1. ``nst_tf.optimize`` therefore
divides each layer's loss by ``mean_square`` of its target (content features
or Gram matrix), so every layer's loss is a *relative* error, about 1 for an
unrelated image, and equal layer weights really mean equal say. Gatys et al.
balanced layers through their ``1/(4 N^2 M^2)`` factor and hand-tuned weights.
"""

from __future__ import annotations

import tensorflow as tf


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """(N, H, W, C) features -> (N, C, C) Gram matrices, averaged over the H*W positions.

    Mathematically ``einsum("nhwc,nhwd->ncd", F, F) / (H*W)`` (notebook 02
    writes it that way). The gradient is written by hand: ``dF = F (dG + dG^T)
    / (H*W)`` is one matrix product, where automatic differentiation of
    ``F^T F`` does two (one per factor). That halves the Gram matrices' share
    of each step (measured: 0.053 s -> 0.027 s per step at 256x192).
    """
    return _gram(tf.convert_to_tensor(features, tf.float32))


@tf.custom_gradient
def _gram(features):
    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    flat = tf.reshape(features, (shape[0], -1, shape[3]))  # (N, H*W, C)
    gram = tf.matmul(flat, flat, transpose_a=True) / positions

    def grad(upstream):
        sym = upstream + tf.transpose(upstream, (0, 2, 1))
        return tf.reshape(tf.matmul(flat, sym) / positions, shape)

    return gram, grad


def guided_gram_matrix(features: tf.Tensor, mask) -> tf.Tensor:
    """Gram matrices of the features weighted by a mask (Gatys et al. 2017, notebook 04): (N, C, C).

    ``mask`` is (H, W) or (N, H, W), the region at this layer's resolution in [0, 1]
    (``nst_tf.masks.layer_masks``). With ``m`` the mask at each position p::

        G = sum_p m_p^2 F_p F_p^T / sum_p m_p^2

    the Gram matrix of the masked features ``m * F``, averaged over the region instead of the
    whole image, so a region's Gram matrix compares with a whole style image's, whatever the
    region's size. An all-white mask gives exactly ``gram_matrix(features)``, its gradient too:
    this is ``_gram`` (and its hand-written gradient) of ``m * F``, times ``H*W / sum(m^2)``.
    """
    features = tf.convert_to_tensor(features, tf.float32)
    mask = tf.convert_to_tensor(mask, tf.float32)
    if mask.shape.rank == 2:
        mask = mask[tf.newaxis]
    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    weight = tf.maximum(tf.reduce_sum(tf.square(mask), axis=[1, 2]), 1e-8)  # (N,) or (1,)
    return _gram(features * mask[..., tf.newaxis]) * (positions / weight)[:, tf.newaxis, tf.newaxis]


def content_loss(features: tf.Tensor, target: tf.Tensor, weight=None) -> tf.Tensor:
    """Mean squared difference between generated and content features, one value per image (N,).

    ``weight``: optional (H, W) map multiplying each position's squared difference
    (``--content-mask`` weighs the region to keep more; ``nst_tf.masks``).
    """
    square = tf.square(features - target)
    if weight is not None:
        square = square * tf.convert_to_tensor(weight, tf.float32)[..., tf.newaxis]
    return tf.reduce_mean(square, axis=[1, 2, 3])


def style_layer_loss(features: tf.Tensor, target_gram: tf.Tensor, mask=None) -> tf.Tensor:
    """Mean squared difference of Gram matrices at one layer, one value per image (N,).

    With ``mask`` (this layer's region, see ``guided_gram_matrix``) the generated image's Gram
    matrix is the guided one of that region.
    """
    gram = gram_matrix(features) if mask is None else guided_gram_matrix(features, mask)
    return tf.reduce_mean(tf.square(gram - target_gram), axis=[1, 2])


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between neighbouring pixels, one value per image (N,)."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dx), axis=[1, 2, 3]) + tf.reduce_mean(tf.square(dy), axis=[1, 2, 3])


def mean_square(target: tf.Tensor) -> tf.Tensor:
    """Mean of ``target**2`` per image, shape (N,) (or () for one target): a layer's scale."""
    target = tf.convert_to_tensor(target, tf.float32)
    axes = list(range(1, len(target.shape)))
    return tf.maximum(tf.reduce_mean(tf.square(target), axis=axes), 1e-8)
