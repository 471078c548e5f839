"""Any style in one pass (nst_tf.arbitrary, issue #26): AdaIN, WCT, the decoder, its training, the CLI.

The transforms are checked on real VGG19 feature maps of bundled images; the decoder and its
training on 64 px crops (a few seconds per step on a 2-core CPU).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def _features(name: str, kind: str, layer: str, side: int):
    from nst_tf.data import resolve_image
    from nst_tf.images import load_image, preprocess
    from nst_tf.models import build_extractor

    image = load_image(resolve_image(name, kind), side)
    return build_extractor([layer], precision="float32")(preprocess(image))[layer].numpy()


@pytest.fixture(scope="module")
def relu4():
    """relu4_1 features of a photo (two crops: a batch of two, not square) and of a painting."""
    photo = _features("chelsea", "content", "block4_conv1", 160)
    batch = np.concatenate([photo[:, :12, :16], photo[:, 1:13, 2:18]], 0)
    return batch, _features("hubble_deep_field", "style", "block4_conv1", 128)


def test_adain_gives_each_image_the_styles_channel_means_and_deviations(relu4):
    from nst_tf import arbitrary

    content, style = relu4
    out = arbitrary.adain(content, style).numpy()
    assert out.shape == content.shape
    s_mean, s_std = style.mean((0, 1, 2)), style.std((0, 1, 2))
    for image, source in zip(out, content):  # per image, not over the batch: each on its own
        np.testing.assert_allclose(image.mean((0, 1)), s_mean, atol=1e-3 * s_std.max())
        live = source.std((0, 1)) > 1e-2  # a channel the photo leaves at 0 stays constant
        assert live.mean() > 0.9
        np.testing.assert_allclose(image.std((0, 1))[live], s_std[live], rtol=1e-3, atol=1e-2)
    # the spatial pattern of each channel is the photo's (an affine map of it, per channel)
    c = content[0].reshape(-1, content.shape[-1])
    o = out[0].reshape(-1, out.shape[-1])
    varied = c.std(0) > 1e-2
    corr = [np.corrcoef(c[:, k], o[:, k])[0, 1] for k in np.flatnonzero(varied)[:50]]
    assert min(corr) > 0.999


def test_wct_gives_the_styles_feature_covariance(tmp_path):
    """relu2_1 (128 channels) at 48 x 48 positions: full rank, so the covariance is matched whole."""
    from nst_tf import arbitrary

    content = _features("chelsea", "content", "block2_conv1", 96)
    style = _features("hubble_deep_field", "style", "block2_conv1", 112)
    out = arbitrary.wct(content, style)
    mean, cov = (t.numpy()[0] for t in arbitrary.feature_covariance(out))
    s_mean, s_cov = (t.numpy()[0] for t in arbitrary.feature_covariance(style))
    c_cov = arbitrary.feature_covariance(content)[1].numpy()[0]
    scale = np.abs(s_cov).max()
    assert np.abs(c_cov - s_cov).max() > 0.1 * scale  # the two really differ to begin with
    np.testing.assert_allclose(mean, s_mean, atol=1e-3 * scale**0.5)
    assert np.abs(cov - s_cov).max() < 1e-3 * scale
    # AdaIN matches only the diagonal (the variances), not the off-diagonal covariances
    a_cov = arbitrary.feature_covariance(arbitrary.adain(content, style))[1].numpy()[0]
    off = ~np.eye(len(s_cov), dtype=bool)
    assert np.abs(a_cov - s_cov)[off].max() > 0.05 * scale


def test_wct_on_too_few_positions_stays_finite_and_bounded(relu4):
    """relu4_1 of a 12 x 16 crop: 192 positions for 512 channels. Whitening drops the null space
    (eigenvalues below the floor) instead of multiplying its noise by 1/sqrt(eps)."""
    from nst_tf import arbitrary

    content, style = relu4
    out = arbitrary.wct(content, style).numpy()
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 20 * np.abs(style).max()


def test_transform_with_style_statistics_is_the_same_as_the_direct_call(relu4):
    from nst_tf import arbitrary

    content, style = relu4
    for method, direct in (("adain", arbitrary.adain), ("wct", arbitrary.wct)):
        stats = arbitrary.style_statistics(style, method)
        np.testing.assert_allclose(
            arbitrary.transform(content, stats, method).numpy(), direct(content, style).numpy(), atol=1e-3
        )
    with pytest.raises(Exception, match="unknown method 'gatys'"):
        arbitrary.transform(content, {}, "gatys")


# ----------------------------------------------------------------------------- the decoder
@pytest.mark.parametrize(
    "layer, upsamplings", [("block4_conv1", 3), ("block3_conv1", 2), ("block1_conv1", 0)]
)
def test_the_decoder_mirrors_vgg19(layer, upsamplings):
    import keras

    from nst_tf import arbitrary
    from nst_tf.vgg19 import CHANNELS, CONV_LAYERS

    decoder = arbitrary.build_decoder(layer, width=0.25)
    convs = [lay for lay in decoder.layers if isinstance(lay, keras.layers.Conv2D)]
    assert len(convs) == CONV_LAYERS.index(layer) + 1  # one convolution per VGG19 convolution
    assert convs[-1].filters == 3 and decoder.inputs[0].shape[-1] == CHANNELS[layer]
    ups = [lay for lay in decoder.layers if isinstance(lay, keras.layers.UpSampling2D)]
    assert len(ups) == upsamplings
    feats = np.zeros((2, 5, 7, CHANNELS[layer]), "float32")
    assert decoder(feats).shape == (2, 5 * 2**upsamplings, 7 * 2**upsamplings, 3)
    assert arbitrary.decoder_layer(decoder) == layer


def test_half_width_has_about_a_quarter_of_the_weights():
    from nst_tf import arbitrary

    full, half = arbitrary.build_decoder().count_params(), arbitrary.build_decoder(width=0.5).count_params()
    assert 0.25 <= half / full <= 0.4  # the first convolution keeps its 512 inputs


def _tiny(tmp_path, steps=2, **kw):
    from nst_tf import arbitrary

    config = arbitrary.DecoderConfig(
        layer="block2_conv1", width=0.25, size=32, batch_size=2, steps=steps, checkpoint_every=1,
        validate_every=1, data=("bundled",), precision="float32", **kw,
    )  # fmt: skip
    return arbitrary.train_decoder(config, output=tmp_path / "dec.keras", progress=False)


def test_decoder_training_writes_model_sidecar_manifest_and_resumes_where_it_stopped(tmp_path):
    from nst_tf import arbitrary, training

    first = _tiny(tmp_path, steps=2)
    assert first.steps_done == 2 and len(first.history) == 2
    for name in ("dec.keras", "dec.json", "dec.data.json", "dec.ckpt.npz", "dec.loss.png"):
        assert (tmp_path / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "dec.val").iterdir()) == ["step-000001.jpg", "step-000002.jpg"]
    side = json.loads((tmp_path / "dec.json").read_text())
    assert side["layer"] == "block2_conv1" and side["format"] == arbitrary.DECODER_FORMAT
    assert side["feature_layers"] == ["block1_conv1", "block2_conv1"]
    assert side["weights"]["weights_id"] and side["photos"] >= 1
    assert set(side["loss"]) == {"loss", "pixel", "feature"}
    manifest = json.loads((tmp_path / "dec.data.json").read_text())
    assert manifest["layer"] == "block2_conv1"
    resumed = arbitrary.train_decoder(
        arbitrary.DecoderConfig(steps=4), output=tmp_path / "dec.keras", resume=True, progress=False
    )
    assert resumed.steps_done == 4 and [row[0] for row in resumed.history] == [1, 2, 3, 4]
    assert training.read_checkpoint(tmp_path / "dec.ckpt.npz")[0]["step"] == 4
    # the same four steps in one go give the same decoder (the data stream resumes exactly)
    straight = _tiny(tmp_path / "straight", steps=4)
    np.testing.assert_allclose(resumed.history[-1][1], straight.history[-1][1], rtol=1e-4)


def test_a_few_steps_lower_the_reconstruction_loss(tmp_path):
    result = _tiny(tmp_path, steps=12, learning_rate=2e-3)
    losses = [row[1] for row in result.history]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_load_decoder_refuses_a_style_network(tmp_path):
    from nst_tf import arbitrary, fast

    path = fast.save_model(fast.build_transformer(width=4, res_blocks=1), tmp_path / "net.keras")
    with pytest.raises(Exception, match="not a decoder made by nst_tf.arbitrary.build_decoder"):
        arbitrary.load_decoder(path)
    with pytest.raises(Exception, match="does not exist"):
        arbitrary.load_decoder(tmp_path / "missing.keras")


# ----------------------------------------------------------------------------- the stylizer
@pytest.fixture(scope="module")
def decoder():
    from nst_tf import arbitrary

    return arbitrary.build_decoder("block3_conv1", width=0.25, seed=1)


@pytest.fixture(scope="module")
def photo():
    from nst_tf.data import resolve_image
    from nst_tf.images import load_image

    return load_image(resolve_image("coffee", "content"), 61)  # 61 x 41: sides no multiple of 4


def test_stylizer_alpha_0_is_the_reconstruction_and_the_output_has_the_photos_size(decoder, photo):
    from nst_tf import arbitrary
    from nst_tf.networks import check_signature, stylize

    model = arbitrary.stylizer(decoder, "hubble_deep_field", alpha=0.0, precision="float32")
    check_signature(model)  # fast.stylize_image/folder/video take it like a trained network
    out = stylize(model, photo)
    assert out.shape == photo.shape
    np.testing.assert_allclose(out, arbitrary.reconstruct(decoder, photo), atol=1e-2)
    full = stylize(arbitrary.stylizer(decoder, "hubble_deep_field", precision="float32"), photo)
    assert np.abs(full - out).mean() > 1.0


def test_stylizer_mix_and_masks_reduce_to_one_style(decoder, photo):
    from nst_tf import arbitrary
    from nst_tf.networks import stylize

    def run(**kw):
        return stylize(arbitrary.stylizer(decoder, precision="float32", **kw), photo)

    one = run(styles="hubble_deep_field", method="wct")
    np.testing.assert_allclose(
        run(styles=["hubble_deep_field", "gravel"], mix=[1, 0], method="wct"), one, atol=1e-2
    )
    ones, zeros = np.ones(photo.shape[:2]), np.zeros(photo.shape[:2])
    masked = run(styles=["hubble_deep_field", "gravel"], masks=[ones, zeros], method="wct")
    np.testing.assert_allclose(masked, one, atol=0.05)
    half = run(styles=["hubble_deep_field", "gravel"], method="wct")
    assert np.abs(half - one).mean() > 0.5
    with pytest.raises(Exception, match="one non-negative weight per style"):
        run(styles=["hubble_deep_field", "gravel"], mix=[1.0])
    with pytest.raises(Exception, match="alpha must be from 0 to 1"):
        run(styles="gravel", alpha=1.5)


def test_preserve_color_keeps_the_photos_chroma(decoder, photo):
    from nst_tf import arbitrary
    from nst_tf.color import rgb_to_yiq
    from nst_tf.networks import stylize

    out = stylize(
        arbitrary.stylizer(decoder, "hubble_deep_field", preserve_color=True, precision="float32"), photo
    )
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 1:], rgb_to_yiq(photo)[..., 1:], atol=0.05)


def test_cli_stylizes_a_folder_with_adain(tmp_path, capsys):
    import shutil

    from nst_tf import arbitrary

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "rocket"):
        shutil.copy(ROOT / f"data/src/content/{name}.jpg", folder / f"{name}.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    path = tmp_path / "dec.keras"
    arbitrary.build_decoder("block3_conv1", width=0.25).save(path)
    code, out, err = run_cli(
        capsys, "stylize", str(folder), "--method", "adain", "--style", "gravel", "--decoder", str(path),
        "--alpha", "0.7", "--size", "48", "--output", str(tmp_path / "out"), "--quiet",
    )  # fmt: skip
    assert code == 1 and "broken.jpg" in err  # the bad file is named; the others are written
    for name in ("coffee", "rocket"):
        side = json.loads((tmp_path / "out/photos" / f"{name}.json").read_text())
        assert side["model"]["method"] == "adain" and side["model"]["alpha"] == 0.7
        assert side["model"]["decoder"]["path"] == str(path)
        assert side["model"]["style"]["path"].endswith(("gravel.jpg", "gravel.png"))
    code, out, err = run_cli(
        capsys, "stylize", str(folder / "coffee.jpg"), "--style", "gravel", "--alpha", "0.5"
    )
    assert code == 2 and "go with --method" in err
    code, out, err = run_cli(
        capsys, "stylize", str(folder / "coffee.jpg"), "--method", "wct", "--model", str(path)
    )  # fmt: skip
    assert code == 2 and "--method needs --style" in err


# ----------------------------------------------------------------------------- notebook 06 == package
def _notebook_functions(names):
    """Notebook 06's top-level functions ``names``, compiled with its imports only (as
    tests/test_notebooks.py does for the losses): the lesson cannot drift from the package."""
    import ast

    path = ROOT / "notebooks/06_arbitrary_style.ipynb"
    imports, defs = [], []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        imports += [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        defs += [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    namespace: dict = {}
    exec(compile(ast.Module(body=imports + defs, type_ignores=[]), path.name, "exec"), namespace)  # noqa: S102
    return {name: namespace[name] for name in names}


def test_notebook_adain_and_wct_are_the_packages(relu4):
    import tensorflow as tf

    from nst_tf import arbitrary

    found = _notebook_functions(["adain", "covariance", "matrix_power", "wct"])
    content, style = relu4
    np.testing.assert_allclose(found["adain"](tf.constant(content), tf.constant(style)),
                               arbitrary.adain(content, style), rtol=1e-4, atol=1e-2)  # fmt: skip
    rng = np.random.default_rng(0)
    small = rng.normal(size=(1, 9, 14, 6)).astype("float32") * 5  # full rank: 126 positions, 6 channels
    paint = (rng.normal(size=(1, 11, 7, 6)) @ rng.normal(size=(6, 6))).astype("float32") + 3
    np.testing.assert_allclose(found["wct"](tf.constant(small), tf.constant(paint)),
                               arbitrary.wct(small, paint), rtol=1e-4, atol=1e-4)  # fmt: skip


def test_the_shipped_decoder_loads_and_rebuilds_a_held_out_photo():
    """data/models/decoders/block4_conv1.keras (benchmarks/arbitrary.py's recipe): measured SSIM
    0.53 (coffee) and 0.66 (rocket) at 256 px in float32; an untrained decoder gives about 0."""
    from nst_tf import arbitrary, data, metrics

    path = arbitrary.shipped_decoder()
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["format"] == arbitrary.DECODER_FORMAT and side["stopped"] == "completed"
    assert path.with_name(side["data_manifest"]).is_file()
    decoder = arbitrary.load_decoder(path, "float32")
    for name, bound in (("coffee", 0.45), ("rocket", 0.55)):
        photo = data.load(name, 256)
        rebuilt = np.clip(arbitrary.reconstruct(decoder, photo), 0, 255)
        assert metrics.ssim(rebuilt, photo) > bound, name


def test_the_benchmark_scores_a_peers_pictures_beside_adain_and_wct(tmp_path):
    """benchmarks/arbitrary.py --peer: the peer's picture of a pair (here the photo itself, one pixel
    off in size) is resized to the photo, scored by the same measures, and its own time is kept."""
    from PIL import Image

    from benchmarks import arbitrary as bench
    from nst_tf import data
    from nst_tf.images import load_image, resize_image, scaled_size

    style = bench._resolved(bench.STYLES, "style")[0][0]
    photo = load_image(data.resolve_image("coffee", "content"))
    photo = resize_image(photo, size=scaled_size(photo.shape, 64))
    h, w = photo.shape[:2]
    Image.fromarray(np.asarray(photo, np.uint8)).resize((w + 1, h)).save(tmp_path / f"coffee_x_{style}.png")
    timings = {"images": {f"coffee_x_{style}": {"png": f"coffee_x_{style}.png", "median_s": 0.25}}}
    (tmp_path / "timings.json").write_text(json.dumps(timings | {"package": "peer 0"}))
    res = bench.evaluate(tmp_path / "out", quick=True, peer_dir=tmp_path)
    (row,) = res["rows"]
    assert row["seconds"]["magenta"] == 0.25 and res["peer"] == {"package": "peer 0"}
    assert row["magenta"]["ssim"] > 0.9 > row["adain"]["ssim"]  # the photo back, unlike AdaIN
    assert list(res["medians"])[:3] == ["adain", "wct", "magenta"] and "transfer" in res["medians"]
    with pytest.raises(SystemExit, match="peer_fast.py pairs"):
        bench.evaluate(tmp_path / "out", quick=True, peer_dir=tmp_path / "missing")
