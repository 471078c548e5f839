"""End-to-end optimisation on 64-px images with the real VGG19 weights."""

import json

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import Config, losses, models, reconstruct_content, synthesize_texture, transfer_style
from nst_tf.images import load_image, preprocess
from nst_tf.optimize import make_objective

pytestmark = pytest.mark.slow


def _losses_of(image, content, style, cfg, weights):
    """Content and style loss of ``image`` measured independently of the run's own history."""
    layers = list(cfg.content_layers) + list(cfg.style_layers)
    ext = models.build_extractor(layers, weights=weights)
    img = load_image(image, size=content.shape[:2]) if image.shape[:2] != content.shape[:2] else image
    gen, con = ext(preprocess(img)), ext(preprocess(content))
    sty = ext(preprocess(load_image(style, long_side=max(content.shape[:2]))))
    c = sum(losses.content_loss(gen[k], con[k]).numpy()[0] for k in cfg.content_layers)
    s = sum(losses.style_layer_loss(gen[k], losses.gram_matrix(sty[k])).numpy()[0] for k in cfg.style_layers)
    return c, s


def test_transfer_lowers_style_loss_and_keeps_content(vgg_weights, content_small, style_small):
    cfg = Config(size=64, steps=40, pyramid=(), init="noise", seed=1, style_weight=1.0)
    result = transfer_style(content_small, style_small, cfg, weights=None)
    noise = np.random.default_rng(1).uniform(0, 255, content_small.shape).astype("float32")
    c0, s0 = _losses_of(noise, content_small, style_small, cfg, vgg_weights)
    c1, s1 = _losses_of(result.image.astype("float32"), content_small, style_small, cfg, vgg_weights)
    print(f"content {c0:.4g} -> {c1:.4g}, style {s0:.4g} -> {s1:.4g}")
    assert c1 < 0.8 * c0 and s1 < 0.5 * s0
    assert result.stopped == "completed"
    assert result.history.loss[-1] < result.history.loss[0]
    assert result.image.dtype == np.uint8 and result.image.shape == content_small.shape


def test_gradients_are_finite_and_nonzero(vgg_weights, content_small, style_small):
    cfg = Config()
    ext = models.build_extractor(list(cfg.content_layers) + list(cfg.style_layers), weights=vgg_weights)
    c_feats = ext(preprocess(content_small))
    s_feats = ext(preprocess(style_small))
    objective = make_objective(
        ext,
        content_targets={k: c_feats[k] for k in cfg.content_layers},
        style_targets={k: losses.gram_matrix(s_feats[k]) for k in cfg.style_layers},
        content_layers=cfg.content_layers,
        style_layers=cfg.style_layers,
        content_weight=1.0,
        style_weight=cfg.style_weight,
        tv_weight=cfg.tv_weight,
    )
    x = tf.Variable(preprocess(np.random.default_rng(0).uniform(0, 255, content_small.shape)))
    with tf.GradientTape() as tape:
        total, terms = objective(x)
    grad = tape.gradient(total, x).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    assert set(terms) == {"content", "style", "tv"}


def test_reconstruction_from_shallow_layer_recovers_the_photo(content_small):
    result = reconstruct_content(content_small, "block1_conv2", size=64, steps=40)
    error = np.abs(result.image.astype(float) - content_small).mean()
    noise_error = np.abs(np.random.default_rng(0).uniform(0, 255, content_small.shape) - content_small).mean()
    assert error < 0.1 * noise_error


def test_texture_synthesis_matches_gram_statistics(style_small):
    result = synthesize_texture(
        style_small, size=64, steps=30, style_layers={"block1_conv1": 1, "block2_conv1": 1}
    )
    assert result.history.terms["style"][-1] < 0.2 * result.history.terms["style"][0]
    assert "content" not in result.history.terms


def test_result_saves_image_and_sidecar(tmp_path, content_small, style_small):
    result = transfer_style(content_small, style_small, size=32, steps=3, pyramid=(), frame_every=1)
    path = result.save(tmp_path / "out.png", animation=tmp_path / "out.gif")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert Config.from_dict(meta["config"]) == result.config
    assert meta["weights"]["source"] and meta["weights"]["sha256"]
    assert meta["versions"]["tensorflow"] == tf.__version__
    assert meta["timings"]["total_s"] > 0 and meta["seed"] == 0
    assert (tmp_path / "out.gif").stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_same_seed_gives_the_same_image(content_small, style_small):
    a = transfer_style(content_small, style_small, size=32, steps=5, pyramid=(), init="noise", seed=3)
    b = transfer_style(content_small, style_small, size=32, steps=5, pyramid=(), init="noise", seed=3)
    np.testing.assert_array_equal(a.image, b.image)
