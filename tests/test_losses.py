"""Loss terms against hand-computed values (micrograd style)."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import losses


def test_gram_matrix_hand_computed():
    # one image, 2x1 positions, 2 channels: F = [[1, 2], [3, 4]] (rows = positions)
    feats = tf.constant([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, H=2, W=1, C=2)
    # G = F^T F / (H*W) = [[1+9, 2+12], [2+12, 4+16]] / 2
    expected = np.array([[[5.0, 7.0], [7.0, 10.0]]])
    np.testing.assert_allclose(losses.gram_matrix(feats).numpy(), expected)


def test_gram_matrix_matches_slow_loop(rng):
    feats = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    slow = np.zeros((2, 5, 5))
    for n in range(2):
        for i in range(5):
            for j in range(5):
                slow[n, i, j] = np.sum(feats[n, :, :, i] * feats[n, :, :, j]) / 12
    np.testing.assert_allclose(losses.gram_matrix(feats).numpy(), slow, rtol=1e-5)


def test_gram_matrix_does_not_depend_on_image_size(rng):
    """Tiling a feature map 2x2 leaves its normalised Gram matrix unchanged."""
    feats = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    tiled = np.tile(feats, (1, 2, 2, 1))
    np.testing.assert_allclose(losses.gram_matrix(tiled), losses.gram_matrix(feats), rtol=1e-5)


def test_content_loss_is_mean_squared_error():
    a = tf.constant(np.arange(8, dtype="float32").reshape(1, 2, 2, 2))
    b = tf.zeros_like(a)
    assert losses.content_loss(a, b).numpy() == pytest.approx([np.mean(np.arange(8) ** 2)])


def test_style_layer_loss_zero_for_own_gram_and_positive_otherwise(rng):
    feats = tf.constant(rng.normal(size=(1, 5, 5, 4)).astype("float32"))
    assert losses.style_layer_loss(feats, losses.gram_matrix(feats)).numpy()[0] == pytest.approx(0, abs=1e-6)
    assert losses.style_layer_loss(feats * 2, losses.gram_matrix(feats)).numpy()[0] > 0


def test_total_variation_hand_computed():
    img = np.zeros((1, 2, 2, 1), "float32")
    img[0, 0, 1, 0] = 2.0  # one bright pixel top right
    # dx: [[2], [0]] -> mean 2; dy: [[0, -2]] -> mean 2
    assert losses.total_variation_loss(tf.constant(img)).numpy()[0] == pytest.approx(4.0)
    assert losses.total_variation_loss(tf.ones((1, 3, 3, 3))).numpy()[0] == 0


def test_gram_matrix_hand_written_gradient_matches_autodiff(rng):
    """The custom gradient of gram_matrix equals automatic differentiation of the einsum form."""
    features = tf.constant(rng.normal(size=(2, 5, 7, 4)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(2, 4, 4)).astype(np.float32))  # non-symmetric on purpose

    def plain(f):
        return tf.einsum("nhwc,nhwd->ncd", f, f) / 35.0

    grads = []
    for gram in (losses.gram_matrix, plain):
        with tf.GradientTape() as tape:
            tape.watch(features)
            loss = tf.reduce_sum(weights * gram(features))
        grads.append(tape.gradient(loss, features).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    assert np.abs(grads[0]).max() > 0.01
