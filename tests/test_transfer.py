"""End-to-end optimisation on 64-px images with the real VGG19 weights."""

import json

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import Config, losses, models, reconstruct_content, synthesize_texture, transfer_style
from nst_tf.images import load_image, preprocess, scaled_size
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
    assert meta["weights"]["source"] and meta["weights"]["weights_id"]
    assert meta["versions"]["tensorflow"] == tf.__version__
    assert meta["timings"]["total_s"] > 0 and meta["seed"] == 0
    assert (tmp_path / "out.gif").stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_same_seed_gives_the_same_image(content_small, style_small):
    a = transfer_style(content_small, style_small, size=32, steps=5, pyramid=(), init="noise", seed=3)
    b = transfer_style(content_small, style_small, size=32, steps=5, pyramid=(), init="noise", seed=3)
    np.testing.assert_array_equal(a.image, b.image)


# ----------------------------------------------------------------------------- the pipeline's steps (#12.1)
def test_one_scaled_size_for_every_path_that_scales_to_a_long_side():
    """Issue #12.1: a 1024x513 photo at size 512 was 257x512 through load_image but 256x512
    through transfer_style (round-half-even). Now every path agrees with images.scaled_size."""
    from nst_tf import images, resources, transfer

    assert images.scaled_size((513, 1024), 512) == (257, 512)  # 256.5 rounds up
    assert images.scaled_size((1024, 513, 3), 512) == (512, 257)
    assert images.scaled_size((300, 300), 64) == (64, 64) and images.scaled_size((4, 400), 50) == (1, 50)
    assert transfer.scaled_size is images.scaled_size and resources.scaled_size is images.scaled_size
    tiny = dict(content_layers={"block1_conv1": 1.0}, style_layers={"block1_conv1": 1.0}, pyramid=((0.5, 1),))
    rng = np.random.default_rng(0)
    for h, w, side in [(513, 1024, 512), (1024, 513, 512), (333, 500, 129), (77, 45, 31), (99, 100, 50)]:
        expected = images.scaled_size((h, w), side)
        photo = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
        assert load_image(photo, long_side=side).shape[:2] == expected
        assert images.resize_image(photo, side).shape[:2] == expected
        config = Config(size=side, **tiny)
        plan = transfer.plan_run(config, transfer.load_inputs(config, photo, [photo]))
        assert plan.full_hw == expected
        assert plan.stages[0][0] == images.scaled_size((h, w), round(side * 0.5))
        assert transfer._style_hw((h, w), side, 1) == expected


def test_a_1024x513_photo_at_size_512_is_257x512_through_load_image_and_transfer_style():
    photo = np.random.default_rng(1).uniform(0, 255, (513, 1024, 3)).astype(np.float32)
    result = transfer_style(
        photo, photo[:100, :100], size=512, steps=1, pyramid=(), weights="random", progress=False,
        content_layers={"block1_conv1": 1.0}, style_layers={"block1_conv1": 1.0},
    )  # fmt: skip
    assert result.image.shape[:2] == load_image(photo, long_side=512).shape[:2] == (257, 512)
    assert result.timings["stages"][0]["size"] == [512, 257]


def test_the_pipeline_steps_can_be_called_on_their_own(content_small, style_small):
    """run() is load_inputs -> plan_run -> prepare_colors -> optimize_stages -> make_result."""
    from nst_tf import transfer

    config = Config(size=48, steps=2, pyramid=((0.5, 2),), weights="random", preserve_color="luminance")
    inputs = transfer.load_inputs(config, content_small, [style_small, style_small])
    np.testing.assert_allclose(inputs.blend, [0.5, 0.5])
    assert inputs.described["content"]["array"] == list(content_small.shape)
    plan = transfer.plan_run(config, inputs)
    half, full = scaled_size(content_small.shape, 24), scaled_size(content_small.shape, 48)
    assert plan.stages == [(half, 2), (full, 2)] and full[1] == 48 and plan.min_side == 16
    assert plan.layers == ["block4_conv2"] + [
        f"block{b}_conv1" for b in range(1, 6)
    ]  # content first, no repeats
    coloured = transfer.prepare_colors(config, inputs)
    assert coloured.content_colour is inputs.content and coloured.content.std(axis=2).max() < 1e-3  # grey
    extractor = models.build_extractor(plan.layers, weights="random")
    objective = transfer.stage_objective(config, plan, coloured, extractor, half)
    total, terms = objective(tf.zeros((1, *half, 3)))
    assert set(terms) == {"content", "style", "tv"} and float(total[0]) > 0
    done = transfer.optimize_stages(config, plan, coloured, extractor, progress=False)
    assert [s["size"] for s in done.stages] == [[24, half[0]], [48, full[0]]] and done.steps == 4
    result = transfer.make_result(config, coloured, done, {"source": "test"}, started=0.0)
    assert result.image.shape == (*full, 3) and result.image.dtype == np.uint8
    assert result.weights == {"source": "test"} and result.history.step == [1, 2, 3, 4]
    assert result.image.std(axis=2).max() > 0  # the content's colours were put back


def test_no_function_in_transfer_is_longer_than_50_lines():
    import ast
    from pathlib import Path

    from nst_tf import transfer

    tree = ast.parse(Path(transfer.__file__).read_text())
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }
    assert max(lengths.values()) < 50, sorted(lengths.items(), key=lambda kv: -kv[1])[:3]


def test_old_spellings_still_work_and_say_they_are_deprecated():
    from nst_tf import transfer

    assert transfer.prepare_colours.__wrapped__ is transfer.prepare_colors
    assert transfer.optimise_stages.__wrapped__ is transfer.optimize_stages
    config = Config(preserve_color="none")
    with pytest.warns(DeprecationWarning, match="use prepare_colors"):
        inputs = transfer.prepare_colours(
            config, transfer.Inputs(np.zeros((8, 8, 3), np.float32), [], np.ones(0), {}, "content")
        )
    assert inputs.content.shape == (8, 8, 3)


def test_a_run_that_stops_at_its_start_still_reports_each_term():
    """Started at the answer (init="content", no TV), L-BFGS takes no step: final_losses must still
    name the content term (notebook 01 prints it; on a bfloat16 CPU it stopped at the start too)."""
    run = reconstruct_content("chelsea", "block4_conv2", steps=5, init="content", size=48, tv_weight=0.0)
    assert len(run.history.loss) == 0  # no step was needed
    assert run.final_losses == {"content": 0.0, "total": 0.0}
    assert run.metadata()["final_losses"]["content"] == 0.0
