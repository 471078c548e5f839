"""nst_tf.gan (notebook 07): the networks' shapes, the losses, DiffAugment, the history pool, one
step of each trainer lowering each network's own loss, training end to end with resume, the
``translate`` command and a step under MirroredStrategy equal to one on one device."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nst_tf import gan
from nst_tf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SEED = tf.constant([3, 4], tf.int64)


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size", [32, 64])
def test_dcgan_generator_makes_pictures_of_its_size_in_pixel_range(size):
    g = gan.build_dcgan_generator(size, z_dim=8, width=4)
    out = g(np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)).numpy()
    assert out.shape == (3, size, size, 3)
    assert 0 <= out.min() and out.max() <= 255 and out.std() > 0


@pytest.mark.parametrize("size, patches", [(32, 8), (64, 8)])
def test_dc_discriminator_scores_each_picture_once_patch_discriminator_each_patch(size, patches):
    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    dc = gan.build_discriminator("dc", size, width=4)(images).numpy()
    patch = gan.build_discriminator("patch", size, width=4)(images).numpy()
    assert dc.shape == (2, 1, 1, 1)
    assert patch.shape == (2, patches, patches, 1)


def test_cyclegan_generators_keep_any_photo_size():
    model = gan.build_cyclegan(gan.CycleGANConfig(width=4, res_blocks=1, precision="float32"))
    g, f, d_x, d_y = gan._nets(model)
    photo = np.random.default_rng(3).uniform(0, 255, (1, 40, 56, 3)).astype(np.float32)
    assert g(photo).shape == f(photo).shape == (1, 40, 56, 3)
    assert d_x.output.shape[1:] == d_y.output.shape[1:] == (8, 8, 1)
    assert [layer.name for layer in model.layers[2:]] == ["G_x2y", "F_y2x", "D_x", "D_y"]


def test_bad_settings_give_one_line_errors():
    with pytest.raises(ConfigError, match="discriminator must be one of dc, patch"):
        gan.build_discriminator("wgan")
    with pytest.raises(ConfigError, match="power of two"):
        gan.build_dcgan_generator(48)
    with pytest.raises(ConfigError, match="unknown DiffAugment"):
        gan.CycleGANConfig(diff_augment=("colour",)).validate()
    with pytest.raises(ConfigError, match="photo_side"):
        gan.CycleGANConfig(size=64, photo_side=(32, 64)).validate()
    with pytest.raises(ConfigError, match="augmentation must be one of basic, deluxe"):
        gan.DCGANConfig(augmentation="fancy").validate()


# ----------------------------------------------------------------------------- the losses
def test_lsgan_losses_per_picture():
    real, fake = tf.constant([[1.0], [0.0]]), tf.constant([[0.0], [1.0]])
    # a perfect discriminator on picture 0, a perfectly wrong one on picture 1
    np.testing.assert_allclose(gan.lsgan_d_loss(real, fake).numpy(), [0.0, 1.0])
    np.testing.assert_allclose(gan.lsgan_g_loss(fake).numpy(), [1.0, 0.0])
    scores = tf.fill([2, 4, 4, 1], 0.5)  # a patch map is averaged per picture
    np.testing.assert_allclose(gan.lsgan_g_loss(scores).numpy(), [0.25, 0.25])


def test_cycle_loss_is_mean_absolute_error_in_unit_range():
    a = tf.zeros([2, 4, 4, 3])
    b = tf.concat([tf.zeros([1, 4, 4, 3]), tf.fill([1, 4, 4, 3], 127.5)], 0)
    np.testing.assert_allclose(gan.cycle_loss(a, b).numpy(), [0.0, 1.0])
    np.testing.assert_allclose(gan.identity_loss(b, a).numpy(), [0.0, 1.0])


# ----------------------------------------------------------------------------- DiffAugment
def _pictures(n=3, h=24, w=40):
    return tf.constant(np.random.default_rng(4).uniform(0, 255, (n, h, w, 3)).astype(np.float32))


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), gan.DIFF_AUGMENT])
def test_diff_augment_keeps_shape_is_differentiable_and_seeded(policy):
    x = _pictures()
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = gan.diff_augment(x, SEED, policy)
        loss = tf.reduce_sum(out * tf.random.stateless_normal(tf.shape(out), [0, 1]))
    grad = tape.gradient(loss, x)
    assert out.shape == x.shape
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and float(tf.reduce_max(tf.abs(grad))) > 0
    assert not np.allclose(out.numpy(), x.numpy())  # it did something
    np.testing.assert_array_equal(out.numpy(), gan.diff_augment(x, SEED, policy).numpy())  # seeded
    assert not np.allclose(out.numpy(), gan.diff_augment(x, SEED + 1, policy).numpy())


def test_translation_shifts_each_picture_whole_pixels_with_grey_shifted_in():
    x = _pictures(4, 32, 32)
    out = gan.diff_augment(x, SEED, ("translation",)).numpy()
    grey = 127.5
    for i in range(4):
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                shifted = np.full_like(out[i], grey)
                src = x.numpy()[i]
                ys, xs = slice(max(dy, 0), 32 + min(dy, 0)), slice(max(dx, 0), 32 + min(dx, 0))
                yd, xd = slice(max(-dy, 0), 32 + min(-dy, 0)), slice(max(-dx, 0), 32 + min(-dx, 0))
                shifted[yd, xd] = src[ys, xs]
                found |= np.allclose(shifted, out[i], atol=1e-3)
        assert found, f"picture {i} is not a shift of at most 1/8 of its side"


def test_cutout_greys_a_square_of_half_the_side():
    x = tf.zeros([5, 32, 32, 3])  # black pictures: the cut-out square is grey
    out = gan.diff_augment(x, SEED, ("cutout",)).numpy()
    for img in out:
        grey = np.isclose(img[..., 0], 127.5)
        rows, cols = np.where(grey.any(1))[0], np.where(grey.any(0))[0]
        assert grey.sum() <= 16 * 16 and rows.size <= 16 and cols.size <= 16
        assert grey.sum() >= 8 * 8  # at least a quarter of the square stays inside the picture


def test_diff_augment_refuses_unknown_transforms():
    with pytest.raises(ConfigError, match="unknown DiffAugment"):
        gan.diff_augment(_pictures(), SEED, ("flip",))


# ----------------------------------------------------------------------------- the history pool
def test_history_pool_fills_then_mixes_old_fakes_in():
    pool = gan.HistoryPool(4, (2, 2, 3))
    first = tf.fill([4, 2, 2, 3], 1.0)
    np.testing.assert_array_equal(pool(first, SEED).numpy(), first.numpy())  # filling: the new ones
    assert int(pool.count) == 4
    old = 0
    for k in range(10):
        new = tf.fill([4, 2, 2, 3], 2.0 + k)
        out = pool(new, SEED + k).numpy()
        values = out[:, 0, 0, 0]
        assert set(values) <= set(np.arange(1.0, 3.0 + k)), values
        old += int(np.sum(values != 2.0 + k))
    assert 10 <= old <= 30  # about half of the 40 came from the buffer
    assert int(pool.count) == 4
    assert gan.HistoryPool(0, (2, 2, 3))(first, SEED) is not None


# ----------------------------------------------------------------------------- one step
def _set(nets, weights):
    for net, w in zip(nets, weights):
        net.set_weights(w)


def _cyclegan_losses(model, x, y, config):
    g, f, d_x, d_y = gan._nets(model)
    fake_y, fake_x = g(x), f(y)
    gen = (gan.lsgan_g_loss(d_y(fake_y)) + gan.lsgan_g_loss(d_x(fake_x))
           + config.cycle_weight * (gan.cycle_loss(x, f(fake_y)) + gan.cycle_loss(y, g(fake_x)))
           + config.cycle_weight * config.identity_weight * (gan.identity_loss(y, g(y)) + gan.identity_loss(x, f(x))))  # fmt: skip
    disc = gan.lsgan_d_loss(d_y(y), d_y(fake_y)) + gan.lsgan_d_loss(d_x(x), d_x(fake_x))
    return float(tf.reduce_mean(gen)), float(tf.reduce_mean(disc))


def test_one_cyclegan_step_lowers_each_networks_own_loss():
    config = gan.CycleGANConfig(batch_size=2, width=4, res_blocks=1, d_width=8, pool_size=0,
                                learning_rate=1e-4, precision="float32")  # fmt: skip
    strategy = tf.distribute.get_strategy()
    model = gan.build_cyclegan(config)
    nets = gan._nets(model)
    opt_g, opt_d = gan._adam(config.learning_rate), gan._adam(config.learning_rate)
    pools = (gan.HistoryPool(0, (32, 32, 3)), gan.HistoryPool(0, (32, 32, 3)))
    rng = np.random.default_rng(5)
    x = tf.constant(rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    y = tf.constant(np.clip(rng.normal(60, 20, (2, 32, 32, 3)), 0, 255).astype(np.float32))
    before = [n.get_weights() for n in nets]
    gen0, disc0 = _cyclegan_losses(model, x, y, config)
    step = gan.make_cyclegan_step(model, (opt_g, opt_d), pools, config, strategy)
    loss, terms = step((x, y), SEED)
    np.testing.assert_allclose(float(loss), gen0, rtol=1e-4)  # the step's loss is the written-out one
    after = [n.get_weights() for n in nets]
    _set(nets, after[:2] + before[2:])  # new generators against the old discriminators
    assert _cyclegan_losses(model, x, y, config)[0] < gen0
    _set(nets, before[:2] + after[2:])  # new discriminators against the old generators
    assert _cyclegan_losses(model, x, y, config)[1] < disc0
    assert set(terms) == set(gan.CYCLEGAN_TERMS)


def test_one_dcgan_step_lowers_each_networks_own_loss():
    config = gan.DCGANConfig(
        batch_size=4, z_dim=8, width=8, d_width=8, learning_rate=1e-4, precision="float32"
    )
    model = gan.build_dcgan(config)
    g, d = model.get_layer("G"), model.get_layer("D")
    z = tf.random.stateless_normal([4, 8], gan._seeds(SEED, 3)[0])
    real = tf.constant(np.random.default_rng(6).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32))

    def losses():
        fake = g(z, training=True)
        return (float(tf.reduce_mean(gan.lsgan_g_loss(d(fake, training=True)))),
                float(tf.reduce_mean(gan.lsgan_d_loss(d(real, training=True), d(fake, training=True)))))  # fmt: skip

    g0, d0 = losses()
    w_g, w_d = g.get_weights(), d.get_weights()
    opts = (gan._adam(1e-4), gan._adam(1e-4))
    gan.make_dcgan_step(model, opts, config, tf.distribute.get_strategy())(real, SEED)
    new_g, new_d = g.get_weights(), d.get_weights()
    g.set_weights(new_g), d.set_weights(w_d)
    assert losses()[0] < g0
    g.set_weights(w_g), d.set_weights(new_d)
    assert losses()[1] < d0


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """Two small photos as the pool (one for X, one painted for Y), gravel as the style."""
    folder = tmp_path_factory.mktemp("pool")
    from nst_tf.images import load_image, resize_image, save_image

    for name in ("astronaut", "chelsea"):
        save_image(
            resize_image(load_image(ROOT / f"data/src/content/{name}.jpg"), 96), folder / f"{name}.png"
        )
    return gan.CycleGANConfig(
        size=32, photo_side=(48, 64), batch_size=2, steps=2, width=4, res_blocks=1, d_width=8, pool_size=4,
        diff_augment=gan.DIFF_AUGMENT, data=(str(folder),), style="gravel", paint_side=64,
        checkpoint_every=1, validate_every=2, precision="float32",
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("cyclegan") / "tiny.keras"
    result = gan.train_cyclegan(tiny_config, output=out, progress=False)
    return out, result


def test_train_cyclegan_writes_model_sidecar_manifest_grid_and_checkpoint(trained):
    out, result = trained
    assert result.steps_done == 2 and result.stopped == "completed"
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["config"]["discriminator"] == "patch" and side["steps_done"] == 2
    assert len(side["domains"]["x"]) == 1 and side["domains"]["y"][0].startswith("painted/")
    assert len(side["domains"]["truth"]) == 2  # the held-out photos, painted: the ground truth
    assert set(side["loss"]) == {"loss", *gan.CYCLEGAN_TERMS}
    assert side["weights"]["weights_id"]
    manifest = json.loads(out.with_name("tiny.data.json").read_text())
    assert manifest["count"] == 2 and "domains" in manifest
    assert (out.parent / "tiny.val" / "step-000002.jpg").is_file()
    assert out.with_name("tiny.ckpt.npz").is_file()


def test_resume_continues_the_cyclegan_from_its_checkpoint(trained, tiny_config, tmp_path):
    out, result = trained
    copy = tmp_path / "tiny.keras"
    for f in out.parent.glob("tiny.*"):
        if f.is_file():
            copy.with_name(f.name).write_bytes(f.read_bytes())
    again = gan.train_cyclegan(tiny_config.replace(steps=3), output=copy, resume=True, progress=False)
    assert again.steps_done == 3
    assert [row[0] for row in again.history] == [1, 2, 3]
    assert again.history[:2] == [list(r) for r in result.history]


def test_load_generator_and_evaluate(trained, tiny_config):
    out, _ = trained
    g = gan.load_generator(out, "x2y", precision="float32")
    photo = np.full((20, 28, 3), 100.0, np.float32)
    from nst_tf.networks import stylize

    assert stylize(g, photo).shape == (20, 28, 3)
    with pytest.raises(ConfigError, match="direction must be x2y"):
        gan.load_generator(out, "sideways")
    doms = gan.domains(tiny_config, progress=False)  # cached: no transfer runs again
    report = gan.evaluate_cyclegan(keras.saving.load_model(out, compile=False), doms, tiny_config)
    assert [r["photo"] for r in report["photos"]] == ["coffee", "rocket"]
    assert {"ssim", "edge", "reconstruction", "style", "to_truth"} <= set(report["mean"])


def test_load_generator_refuses_a_fast_network(tmp_path):
    from nst_tf.networks import build_transformer, save_model

    path = save_model(build_transformer(4, 1), tmp_path / "fast.keras")
    with pytest.raises(ConfigError, match="is not a CycleGAN"):
        gan.load_generator(path)


def test_translate_command_writes_an_image_and_sidecar(trained, tmp_path, capsys):
    from nst_tf.cli import main

    out, _ = trained
    dest = tmp_path / "painted"
    photo = ROOT / "data/src/content/chelsea.jpg"
    code = main(
        ["translate", str(photo), "--model", str(out), "--size", "48", "--output", str(dest), "--quiet"]
    )
    assert code == 0
    assert (dest / "chelsea.png").is_file()
    side = json.loads((dest / "chelsea.json").read_text())
    assert side["model"]["direction"] == "x2y" and side["model"]["path"].endswith("tiny.keras")
    assert side["image_size"] == [32, 48]
    assert main(["translate", str(photo), "--model", str(tmp_path / "missing.keras")]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_train_dcgan_basic_and_deluxe(tmp_path, tiny_config):
    for aug in gan.AUGMENTATIONS:
        config = gan.DCGANConfig(
            size=32, photo_side=(32, 48), batch_size=2, steps=2, z_dim=8, width=4, d_width=4,
            augmentation=aug, diff_augment=("translation",), data=tiny_config.data, style="gravel",
            paint_side=64, checkpoint_every=1, validate_every=2, precision="float32",
        )  # fmt: skip
        out = tmp_path / f"{aug}.keras"
        result = gan.train_dcgan(config, output=out, progress=False)
        assert result.steps_done == 2
        assert (tmp_path / f"{aug}.val" / "step-000002.png").is_file()
        report = gan.evaluate_dcgan(result.model, {"y": result.domains["y"]}, config, n=8)
        assert report["diversity"] > 0 and report["memorised"] > 0 and report["style"] > 0


# ----------------------------------------------------------------------------- tf.distribute
DISTRIBUTED = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from nst_tf import gan

    config = gan.CycleGANConfig(batch_size=4, width=4, res_blocks=1, d_width=8, pool_size=0,
                                precision="float32")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    y = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    seed = tf.constant([0, 0], tf.int64)

    def one_step(strategy):
        with strategy.scope():
            model = gan.build_cyclegan(config)
            opts = (tf.keras.optimizers.SGD(0.1), tf.keras.optimizers.SGD(0.1))
            for opt, nets in zip(opts, (gan._nets(model)[:2], gan._nets(model)[2:])):
                opt.build([v for n in nets for v in n.trainable_variables])
            pools = (gan.HistoryPool(0, (32, 32, 3)), gan.HistoryPool(0, (32, 32, 3)))
        step = gan.make_cyclegan_step(model, opts, pools, config, strategy)
        batch = next(iter(strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(4))))
        loss = float(step(batch, seed)[0])
        return loss, model.get_weights()

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    loss_1, w_1 = one_step(tf.distribute.get_strategy())
    loss_2, w_2 = one_step(tf.distribute.MirroredStrategy(devices))
    fresh = gan.build_cyclegan(config).get_weights()
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w_1, w_2))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(w_1, fresh))
    print(json.dumps({"loss": [loss_1, loss_2], "diff": diff, "moved": moved}))
    """
)


def test_one_cyclegan_step_under_mirrored_strategy_equals_one_device(tmp_path):
    script = tmp_path / "distributed.py"
    script.write_text(DISTRIBUTED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["loss"][0], got["loss"][1], rtol=1e-5)
    assert got["moved"] > 1e-4
    assert got["diff"] < 1e-3 * got["moved"]


# ----------------------------------------------------------------------------- the CycleGAN that ships
def test_a_cyclegan_ships_and_translates_a_photo_it_never_saw():
    """data/models/cyclegan/starry_night.keras (python -m benchmarks.cyclegan's baseline row): G keeps
    the held-out photo's edges and changes its pixels; F brings it most of the way back."""
    from nst_tf import data, metrics
    from nst_tf.networks import stylize

    path = gan.shipped_cyclegan()
    assert path == gan.shipped_cyclegan("starry_night") == gan.shipped_cyclegan("Starry Night")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["steps_done"] == side["config"]["steps"] and side["stopped"] == "completed"
    assert (
        path.with_name(side["data_manifest"]).is_file() and side["data_manifest"] == "starry_night.data.json"
    )
    assert side["format"] == gan.GAN_FORMAT and side["weights"]["weights_id"]
    g, f = gan.load_generator(path, "x2y", "float32"), gan.load_generator(path, "y2x", "float32")
    photo = data.load("coffee", 192)
    painted = np.clip(stylize(g, photo), 0, 255)
    back = np.clip(stylize(f, painted), 0, 255)
    assert np.mean(np.abs(painted - photo)) > 10  # it paints...
    assert metrics.edge_correlation(painted, photo) > 0.5  # ...the photo, not something else
    assert np.mean(np.abs(back - photo)) < np.mean(np.abs(painted - photo))  # and F undoes part of it


def test_translate_with_a_shipped_name_and_an_unknown_one(tmp_path, capsys):
    from nst_tf.cli import main

    photo = ROOT / "data/src/content/coffee.jpg"
    assert main(["translate", str(photo), "--size", "64", "--output", str(tmp_path), "--quiet"]) == 0
    side = json.loads((tmp_path / "coffee.json").read_text())
    assert side["model"]["path"].endswith("cyclegan/starry_night.keras")
    assert main(["translate", str(photo), "--style", "monet", "--output", str(tmp_path / "b")]) != 0
    err = capsys.readouterr().err
    assert "no CycleGAN ships trained as 'monet'" in err and "starry_night" in err
