"""The VGG19 feature extractor: names, shapes, truncation, pooling, activations, the weights cache."""

import gc
import os
import weakref

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import models
from nst_tf.errors import ConfigError
from nst_tf.images import preprocess


def test_extractor_returns_requested_layers_with_vgg_shapes(vgg_weights):
    layers = ["block1_conv1", "block3_conv2", "block5_conv1"]
    extractor = models.build_extractor(layers, weights=vgg_weights)
    feats = extractor(tf.zeros((2, 64, 48, 3)))
    assert list(feats) == layers
    assert feats["block1_conv1"].shape == (2, 64, 48, 64)
    assert feats["block3_conv2"].shape == (2, 16, 12, 256)
    assert feats["block5_conv1"].shape == (2, 4, 3, 512)


def test_extractor_stops_at_the_deepest_layer_asked_for(vgg_weights):
    extractor = models.build_extractor(["block2_conv1"], weights=vgg_weights)
    names = [layer.name for layer in extractor.layers]
    assert "block2_conv1" in names and "block2_conv2" not in names and "block5_conv1" not in names


def test_relu_and_conv_outputs_differ_only_by_relu(vgg_weights, content_small):
    x = preprocess(content_small)
    relu = models.build_extractor(["block2_conv1"], weights=vgg_weights)(x)["block2_conv1"]
    conv = models.build_extractor(["block2_conv1"], activation="conv", weights=vgg_weights)(x)["block2_conv1"]
    assert float(tf.reduce_min(conv)) < 0 <= float(tf.reduce_min(relu))
    np.testing.assert_allclose(relu.numpy(), np.maximum(conv.numpy(), 0), atol=1e-4)


def test_our_graph_matches_keras_vgg19(vgg_weights, content_small):
    """Same weights in keras.applications.VGG19 give the same block4_conv2 features."""
    import keras

    reference = keras.applications.VGG19(include_top=False, weights=None)
    for name in models.CONV_LAYERS:
        reference.get_layer(name).set_weights(list(vgg_weights[name]))
    probe = keras.Model(reference.input, reference.get_layer("block4_conv2").output)
    x = preprocess(content_small)
    ours = models.build_extractor(["block4_conv2"], weights=vgg_weights)(x)["block4_conv2"]
    np.testing.assert_allclose(ours.numpy(), probe(x).numpy(), rtol=1e-4, atol=1e-3)


def test_average_pooling_changes_deep_features(vgg_weights, content_small):
    x = preprocess(content_small)
    a = models.build_extractor(["block3_conv1"], weights=vgg_weights)(x)["block3_conv1"]
    b = models.build_extractor(["block3_conv1"], pooling="avg", weights=vgg_weights)(x)["block3_conv1"]
    assert a.shape == b.shape and not np.allclose(a, b)


def test_pretrained_features_respond_to_image_content(vgg_weights, content_small):
    """ImageNet weights give sparse, structured relu features; a flat grey image gives little."""
    extractor = models.build_extractor(["block4_conv2"], weights=vgg_weights)
    photo = extractor(preprocess(content_small))["block4_conv2"].numpy()
    grey = extractor(preprocess(np.full_like(content_small, 128)))["block4_conv2"].numpy()
    assert 0.05 < np.mean(photo > 0) < 0.9
    assert photo.std() > 2 * grey.std()


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(ConfigError, match="block4_conv2") as err:
        models.build_extractor(["conv4_2"], weights="random")
    assert "\n" not in str(err.value)


def test_min_input_side_and_receptive_field():
    assert models.min_input_side(["block1_conv1"]) == 1
    assert models.min_input_side(["block5_conv1", "block1_conv1"]) == 16
    assert models.receptive_field("block1_conv1") == 3
    assert models.receptive_field("block1_conv2") == 5
    assert models.receptive_field("block2_conv1") == 10
    assert models.receptive_field("block5_conv4") == 252


# ----------------------------------------------------------------------------- the weights cache (#12.3)
def _first_filter(model, x):
    return model(x)["block1_conv1"].numpy()


def test_weights_cache_follows_nst_vgg19_weights_and_the_file(tmp_path, monkeypatch, capsys):
    """Changing NST_VGG19_WEIGHTS, or rewriting the file it names, takes effect in a running process."""
    from nst_tf import weights as W

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    W.write_keras_h5(models.random_weights(1), a)
    W.write_keras_h5(models.random_weights(2), b)
    x = tf.random.uniform((1, 8, 8, 3), -100, 100, seed=0)
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(a))
    arrays, info = models.get_weights(None)
    assert (info["source"], info["path"]) == ("env", str(a.resolve()))
    np.testing.assert_array_equal(arrays["block1_conv1"][0], models.random_weights(1)["block1_conv1"][0])
    from_a = _first_filter(models.build_extractor(["block1_conv1"]), x)
    assert models.get_weights(None)[1] == info  # cached: found again, not read again ...
    assert capsys.readouterr().err.count("VGG19 weights: env") == 1  # ... so said once

    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(b))
    assert models.get_weights(None)[1]["path"] == str(b.resolve())
    from_b = _first_filter(models.build_extractor(["block1_conv1"]), x)
    assert not np.allclose(from_a, from_b)

    # the same path rewritten with b's weights (same size), its mtime moved on: read again
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(a))
    before = os.stat(a)
    W.write_keras_h5(models.random_weights(2), a)
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    assert os.stat(a).st_size == before.st_size
    np.testing.assert_array_equal(_first_filter(models.build_extractor(["block1_conv1"]), x), from_b)
    assert len(models._CACHE) <= models.MAX_CACHED


def test_weights_dicts_do_not_grow_memory():
    """Each new weights dict has its own identity (a content hash); old ones are dropped, not kept."""
    first = models.random_weights(3)
    kernel = weakref.ref(first["block1_conv1"][0])
    x = tf.random.uniform((1, 8, 8, 3), -100, 100, seed=0)
    out = _first_filter(models.build_extractor(["block1_conv1"], weights=first), x)
    same = {k: (w.copy(), b.copy()) for k, (w, b) in first.items()}  # equal content: the same entry
    entries = len(models._CACHE)
    np.testing.assert_array_equal(
        _first_filter(models.build_extractor(["block1_conv1"], weights=same), x), out
    )
    assert len(models._CACHE) == entries
    del first, same
    for seed in (4, 5, 6):
        models.build_extractor(["block1_conv1"], weights=models.random_weights(seed))
    gc.collect()
    assert len(models._CACHE) == models.MAX_CACHED
    assert kernel() is None  # the first dict's arrays were freed


# ----------------------------------------------------------------------------- the weights' identity (#24.2)
def test_weights_id_is_the_hash_of_the_values_whatever_the_file(tmp_path, monkeypatch):
    """Two files holding the same values (one rewritten, so its bytes and mtime differ) have the same
    ``weights_id``; a dict of the same values too; other values another one. The file's own hash is
    kept apart as ``file_sha256``."""
    from nst_tf import weights as W

    arrays = models.random_weights(7)
    a, b = W.write_keras_h5(arrays, tmp_path / "a.h5"), W.write_keras_h5(arrays, tmp_path / "b.h5")
    infos = [models.get_weights(path)[1] for path in (a, b)]
    expected = W.weights_id(arrays)
    assert [info["weights_id"] for info in infos] == [expected, expected]
    assert all(len(info["file_sha256"]) == 12 and "sha256" not in info for info in infos)
    assert models.get_weights(arrays)[1]["weights_id"] == expected
    assert models.get_weights(arrays)[1]["file_sha256"] is None
    assert models.get_weights(models.random_weights(8))[1]["weights_id"] != expected
    random_info = models.get_weights("random")[1]
    assert random_info["weights_id"] == W.weights_id(models.random_weights(0))


def test_weights_id_is_computed_once_per_loaded_weights(tmp_path, monkeypatch):
    from nst_tf import weights as W

    path = W.write_keras_h5(models.random_weights(9), tmp_path / "w.h5")
    calls = []
    digest = W.digest_arrays
    monkeypatch.setattr(W, "digest_arrays", lambda arrays: calls.append(1) or digest(arrays))
    monkeypatch.setenv("NST_VGG19_WEIGHTS", str(path))
    first = models.get_weights(None)[1]["weights_id"]
    for _ in range(3):
        assert models.get_weights(None)[1]["weights_id"] == first
        models.build_extractor(["block1_conv1"])
    assert len(calls) == 1  # hashed when read, not on every look-up
