"""Fast style transfer (nst_tf.fast, issue #14): the network, its training step, saving, the CLI.

Everything runs on tiny real inputs (32-64 px crops of the bundled photos, the real VGG19
weights): a few seconds per training step on a 2-core CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def _config(**kw):
    from nst_tf.fast_config import TrainConfig

    defaults = dict(style="gravel", size=32, batch_size=2, steps=2, width=4, res_blocks=1, checkpoint_every=1)
    return TrainConfig(**{**defaults, **kw}).validate()


def _photos(n=2, size=32, seed=0):
    from nst_tf import fast

    ds = fast.photo_dataset(fast.training_photos(), size, n, seed)
    return next(iter(ds)).numpy()


# ----------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (61, 18), (64, 96)])
def test_transformer_is_fully_convolutional(hw):
    from nst_tf import fast

    model = fast.build_transformer(width=4, res_blocks=1)
    x = np.random.default_rng(0).uniform(0, 255, (2, *hw, 3)).astype("float32")
    y = fast.stylize(model, x)
    assert y.shape == x.shape
    assert np.isfinite(y).all() and 0 <= y.min() and y.max() <= 255
    # each image of a batch is stylised on its own (instance normalisation, no batch statistics)
    assert np.allclose(fast.stylize(model, x[1]), y[1], atol=1e-3)


def test_a_format_1_network_still_loads_and_gives_what_it_gave_when_saved():
    """tests/fixtures/fast_format1.keras: zero padding, saved before ReflectPad (format 2) existed."""
    from nst_tf import fast

    model = fast.load_model(ROOT / "tests/fixtures/fast_format1.keras", "float32")
    assert not any(isinstance(layer, fast.ReflectPad) for layer in model.layers)
    x = np.linspace(0, 255, 24 * 32 * 3, dtype="float32").reshape(24, 32, 3)
    expected = np.load(ROOT / "tests/fixtures/fast_format1_output.npz")["output"]
    np.testing.assert_allclose(fast.stylize(model, x), expected, atol=1e-3)


def test_reflect_padding_keeps_the_border_from_going_dark():
    """Format 2 mirrors the border: an untrained network's output on a flat grey photo is flat
    (each convolution sees the same values everywhere), while zero padding darkens the frame."""
    from nst_tf import fast

    grey = np.full((40, 48, 3), 128.0, np.float32)
    outs = {}
    for padding in fast.PADDINGS:
        model = fast.build_transformer(4, 1, seed=0, padding=padding)
        outs[padding] = fast.stylize(model, grey)
    assert outs["reflect"].shape == grey.shape
    assert np.ptp(outs["reflect"]) < 1e-2  # flat in, flat out
    assert np.ptp(outs["zero"]) > 1.0  # the frame differs from the middle
    assert sum(isinstance(layer, fast.ReflectPad) for layer in model.layers) == 0  # the zero one
    with pytest.raises(Exception, match="padding must be one of"):
        fast.build_transformer(4, 1, padding="wrap")


def test_texture_generator_maps_noise_to_rgb_of_the_same_size():
    from nst_tf import fast

    gen = fast.build_texture_generator(width=4, res_blocks=1, noise_channels=8)
    noise = np.random.default_rng(0).normal(size=(1, 37, 29, 8)).astype("float32")
    out = gen(noise).numpy()
    assert out.shape == (1, 37, 29, 3) and 0 <= out.min() and out.max() <= 255


def test_training_photos_exclude_the_held_out_ones():
    from nst_tf import fast

    stems = {p.stem for p in fast.training_photos()}
    assert {"astronaut", "chelsea", "camera", "coins", "retina"} <= stems
    assert not stems & set(fast.HELD_OUT)


def test_photo_dataset_crops_are_deterministic_per_index():
    from nst_tf import fast

    paths = fast.training_photos()
    a = next(iter(fast.photo_dataset(paths, 32, 4, seed=1))).numpy()
    b = next(iter(fast.photo_dataset(paths, 32, 2, seed=1, start=2))).numpy()
    assert a.shape == (4, 32, 32, 3) and 0 <= a.min() and a.max() <= 255
    np.testing.assert_array_equal(a[2:], b)  # resuming at crop 2 sees crops 2 and 3
    assert not np.array_equal(a[0], a[1])


# ----------------------------------------------------------------------------- the loss
def test_perceptual_loss_is_the_transfer_objective():
    """Per image, the training loss equals make_objective's with that photo as content target."""
    import tensorflow as tf

    from nst_tf import fast
    from nst_tf.images import load_image, preprocess, resize_image
    from nst_tf.losses import gram_matrix
    from nst_tf.optimize import make_objective

    config = _config()
    style = load_image(ROOT / "data/src/style/gravel.png")
    loss = fast.PerceptualLoss(config, style)
    photos = _photos(2)
    outputs = np.random.default_rng(0).uniform(0, 255, photos.shape).astype("float32")
    total, terms = loss(tf.constant(photos), tf.constant(outputs))
    feats = loss.extractor(preprocess(resize_image(style, 32)))
    for i in range(2):
        content = loss.extractor(preprocess(photos[i]))
        objective = make_objective(
            loss.extractor,
            content_targets={k: content[k].numpy() for k in config.content_layers},
            style_targets={k: gram_matrix(feats[k]).numpy() for k in config.style_layers},
            content_layers=config.content_layers,
            style_layers=config.style_layers,
            content_weight=config.content_weight,
            style_weight=config.style_weight,
            tv_weight=config.tv_weight,
        )
        want, want_terms = objective(preprocess(outputs[i]))
        np.testing.assert_allclose(float(total[i]), float(want[0]), rtol=2e-4)
        for k in ("content", "style", "tv"):
            np.testing.assert_allclose(float(terms[k][i]), float(want_terms[k][0]), rtol=2e-4)


# ----------------------------------------------------------------------------- training
def test_a_few_train_steps_lower_the_loss():
    import keras
    import tensorflow as tf

    from nst_tf import fast
    from nst_tf.images import load_image

    config = _config(width=8)
    loss_fn = fast.PerceptualLoss(config, load_image(ROOT / "data/src/style/gravel.png"))
    model = fast.build_transformer(config.width, config.res_blocks)
    optimizer = keras.optimizers.Adam(3e-3)  # 1e-2 overshoots on the first step (either padding)
    strategy = tf.distribute.get_strategy()
    step = fast.make_train_step(model, optimizer, loss_fn, strategy, 2)
    photos = tf.constant(_photos(2))
    seed = tf.constant([0, 0], tf.int64)
    losses = [float(step(photos, seed)[0]) for _ in range(4)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    from nst_tf import fast

    model = fast.build_transformer(width=4, res_blocks=1, seed=3)
    path = fast.save_model(model, tmp_path / "m.keras", {"note": "test"})
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"
    loaded = fast.load_model(path)
    x = np.random.default_rng(1).uniform(0, 255, (1, 40, 24, 3)).astype("float32")
    np.testing.assert_array_equal(fast.stylize(model, x), fast.stylize(loaded, x))


def test_load_model_refuses_a_non_model_in_one_line(tmp_path):
    from nst_tf import fast
    from nst_tf.errors import ConfigError

    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot load model") as err:
        fast.load_model(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        fast.load_model(tmp_path / "missing.keras")


def test_interrupted_training_keeps_its_checkpoint_and_resume_continues_exactly(tmp_path):
    """Ctrl-C at step 2 of 3 saves model + checkpoint; --resume's step 3 equals an unbroken run's."""
    from nst_tf import fast

    config = _config(steps=3)
    straight = fast.train(config, output=tmp_path / "a.keras", progress=False)

    def interrupt(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    stopped = fast.train(config, output=tmp_path / "b.keras", progress=False, callback=interrupt)
    assert stopped.stopped == "interrupted" and stopped.steps_done == 2
    side = json.loads((tmp_path / "b.json").read_text())
    assert side["stopped"] == "interrupted" and side["steps_done"] == 2
    assert len(side["data"]) >= 5 and all(len(d["sha256"]) == 12 for d in side["data"])
    assert fast.read_checkpoint(fast.checkpoint_path(tmp_path / "b.keras"))[0]["step"] == 2
    resumed = fast.train(None, output=tmp_path / "b.keras", resume=True, progress=False)
    assert resumed.steps_done == 3 and [r[0] for r in resumed.history] == [1, 2, 3]
    times = [r[-1] for r in resumed.history]  # one clock across both runs
    assert times == sorted(times) and resumed.seconds >= times[-1] >= stopped.seconds
    np.testing.assert_allclose(resumed.history[-1][1], straight.history[-1][1], rtol=1e-4)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- distribution
DISTRIBUTED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from nst_tf import fast
    from nst_tf.fast_config import TrainConfig
    from nst_tf.images import load_image

    config = TrainConfig(style="gravel", size=32, batch_size=4, width=4, res_blocks=1)
    loss_fn = fast.PerceptualLoss(config, load_image(sys.argv[1]))
    photos = next(iter(fast.photo_dataset(fast.training_photos(), 32, 4, 0))).numpy()
    seed = tf.constant([0, 0], tf.int64)

    def one_step(strategy):
        with strategy.scope():
            model = fast.build_transformer(4, 1, seed=5)
            opt = keras.optimizers.SGD(1.0)  # Adam's first step is lr * sign(g): ill-posed for g ~ 0
            opt.build(model.trainable_variables)
        step = fast.make_train_step(model, opt, loss_fn, strategy, 4)
        batch = tf.constant(photos)
        if strategy.num_replicas_in_sync > 1:
            batch = next(iter(strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices(photos).batch(4))))
        loss = float(step(batch, seed)[0])
        return loss, [w for w in model.get_weights()]

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    mirrored = tf.distribute.MirroredStrategy(devices)
    loss_1, w_1 = one_step(tf.distribute.get_strategy())
    loss_2, w_2 = one_step(mirrored)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w_1, w_2))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(w_1, fast.build_transformer(4, 1, seed=5).get_weights()))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "loss": [loss_1, loss_2], "diff": diff, "moved": moved}))
    """
)


def test_one_step_under_mirrored_strategy_equals_one_step_on_one_device(tmp_path):
    script = tmp_path / "distributed.py"
    script.write_text(DISTRIBUTED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(script), str(ROOT / "data/src/style/gravel.png")],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["replicas"] == 2
    np.testing.assert_allclose(got["loss"][0], got["loss"][1], rtol=1e-5)
    assert got["moved"] > 1e-3  # the step changed the weights...
    assert got["diff"] < 1e-3 * got["moved"]  # ...identically on one and two devices


# ----------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained through the CLI (2 steps on 32 px crops of gravel)."""
    from nst_tf.cli import main

    out = tmp_path_factory.mktemp("model") / "gravel.keras"
    code = main(
        ["train", "--style", "gravel", "--size", "32", "--batch-size", "2", "--steps", "2", "--width", "4",
         "--res-blocks", "1", "--output", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    return out


def test_cli_train_writes_model_sidecar_and_checkpoint(trained):
    side = json.loads(trained.with_suffix(".json").read_text())
    assert side["steps_done"] == 2 and side["stopped"] == "completed"
    assert side["config"]["style"] == "gravel" and side["config"]["size"] == 32
    assert side["style"]["sha256"] and side["versions"]["tensorflow"]
    assert side["timings"]["images_per_s"] > 0
    assert trained.with_name("gravel.ckpt.npz").is_file()


def test_cli_train_ends_with_the_check_against_the_default_transfer(trained):
    side = json.loads(trained.with_suffix(".json").read_text())
    check = side["check"]
    assert set(check) == {"coffee", "rocket"}  # the held-out photos
    for row in check.values():
        assert row["size"] == 64  # 32 px crops: at least 64
        for key in ("network", "transfer"):
            assert {"ssim", "edge_correlation", "style_distance", "loss"} <= set(row[key])
        assert row["ratio"]["ssim"] == pytest.approx(row["network"]["ssim"] / row["transfer"]["ssim"])
        # two steps of training cannot reach the transfer's style: the bar is not met
        assert row["meets_bar"] is False and row["ratio"]["style_distance"] > 1.5


def test_training_writes_validation_strips_and_a_loss_curve(tmp_path):
    from nst_tf import fast
    from nst_tf.images import load_image

    out = tmp_path / "m.keras"
    result = fast.train(_config(steps=2, validate_every=1), output=out, progress=False)
    assert result.validation == ["step-000001.jpg", "step-000002.jpg"]
    strip = load_image(tmp_path / "m.val" / "step-000002.jpg")
    photos = fast._validation_photos()
    h = max(p.shape[0] for p in photos)
    assert max(max(p.shape[:2]) for p in photos) == fast.VALIDATION_SIDE
    assert strip.shape[:2] == (2 * h, sum(p.shape[1] + 2 for p in photos))  # photos above, outputs below
    first = load_image(tmp_path / "m.val" / "step-000001.jpg")
    assert np.abs(strip[h:] - first[h:]).mean() > 0.5  # the outputs change as it learns
    assert np.abs(strip[:h] - first[:h]).mean() < 1  # the photos do not
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["validation"]["strips"] == result.validation and side["validation"]["photos"] == [
        "coffee",
        "rocket",
    ]
    assert side["loss_curve"] == "m.loss.png" and (tmp_path / "m.loss.png").stat().st_size > 5000


def test_cli_train_refuses_an_existing_model_in_one_line(trained, capsys):
    code, _, err = run_cli(capsys, "train", "--style", "gravel", "--steps", "1", "--output", str(trained))
    assert code == 2 and "already exists" in err and err.count("\n") == 1


def test_cli_stylize_an_image(trained, tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "stylize", "--model", str(trained), str(ROOT / "data/src/content/coffee.jpg"),
        "--size", "48", "--output", str(tmp_path / "out"), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    from nst_tf.images import load_image

    img = load_image(tmp_path / "out" / "coffee.png")
    assert max(img.shape[:2]) == 48
    side = json.loads((tmp_path / "out" / "coffee.json").read_text())
    assert side["model"]["path"] == str(trained) and side["input"]["sha256"]


def test_cli_stylize_a_folder_with_one_corrupt_file(trained, tmp_path, capsys):
    from nst_tf.images import load_image, save_image

    folder = tmp_path / "photos"
    for name in ("chelsea", "astronaut"):
        save_image(load_image(ROOT / f"data/src/content/{name}.jpg", 40), folder / f"{name}.png")
    save_image(load_image(ROOT / "data/src/content/coffee.jpg", 24), folder / "sub" / "coffee.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, out, err = run_cli(
        capsys, "stylize", "--model", str(trained), str(folder), "--output", str(tmp_path / "out"), "--quiet"
    )
    assert code == 1
    assert "stylised 3 of 4 images" in out and "1 failed: broken.jpg" in out
    assert "broken.jpg" in err
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert made == ["photos/astronaut.png", "photos/chelsea.png", "photos/sub/coffee.png"]
    assert load_image(tmp_path / "out/photos/chelsea.png").shape == load_image(folder / "chelsea.png").shape


def test_cli_stylize_a_short_video_keeps_the_frame_rate(trained, tmp_path, capsys):
    import imageio.v2 as iio

    from nst_tf.images import load_image

    photo = load_image(ROOT / "data/src/content/chelsea.jpg", 96).astype(np.uint8)
    video = tmp_path / "clip.mp4"
    with iio.get_writer(video, format="FFMPEG", fps=12, macro_block_size=1) as w:
        for i in range(6):  # a slow pan across the photo
            w.append_data(np.ascontiguousarray(photo[:48, 2 * i : 2 * i + 64]))
    code, out, err = run_cli(
        capsys, "stylize", "--model", str(trained), str(video), "--output", str(tmp_path / "out"), "--quiet"
    )
    assert code == 0, err
    made = tmp_path / "out" / "clip.mp4"
    reader = iio.get_reader(made, format="FFMPEG")
    assert reader.get_meta_data()["fps"] == 12
    frames = list(reader.iter_data())  # len(reader) is inf for ffmpeg: list(reader) would not end
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    side = json.loads(made.with_suffix(".json").read_text())
    assert side["fps"] == 12 and side["frames"] == 6
    assert side["flicker_input"] > 0 and side["flicker_output"] > 0


def test_video_blend_lowers_flicker(trained, tmp_path):
    import imageio.v2 as iio

    from nst_tf import fast

    rng = np.random.default_rng(0)
    video = tmp_path / "noisy.mp4"
    base = rng.uniform(0, 255, (32, 32, 3))
    with iio.get_writer(video, format="FFMPEG", fps=8, macro_block_size=1) as w:
        for _ in range(6):  # a still scene with sensor-like noise
            w.append_data(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    model = fast.load_model(trained)
    plain = fast.stylize_video(model, video, tmp_path / "plain.mp4")
    blended = fast.stylize_video(model, video, tmp_path / "blend.mp4", blend=0.6)
    assert blended["flicker_output"] < plain["flicker_output"]


def test_cli_stylize_by_style_name_finds_the_shipped_network(trained, tmp_path, capsys, monkeypatch):
    import shutil

    from nst_tf import data

    shipped = tmp_path / "models"
    shipped.mkdir()
    shutil.copyfile(trained, shipped / "starry_night.keras")
    monkeypatch.setattr(data, "SHIPPED_DIR", shipped)
    code, out, err = run_cli(
        capsys, "stylize", str(ROOT / "data/src/content/coffee.jpg"), "--style", "Starry Night",
        "--size", "40", "--output", str(tmp_path / "out"), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    side = json.loads((tmp_path / "out" / "coffee.json").read_text())
    assert side["model"]["path"] == str(shipped / "starry_night.keras")
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "starry_night" in out.split("ship trained")[1]
    # a style with no shipped network, and --model with --style: one line each, exit 2
    code, _, err = run_cli(capsys, "stylize", "x.png", "--style", "mona_lisa")
    assert code == 2 and "no shipped network for style 'mona_lisa': choose starry_night" in err
    assert err.count("\n") == 1
    code, _, err = run_cli(capsys, "stylize", "x.png", "--style", "starry_night", "--model", str(trained))
    assert code == 2 and "not allowed with" in err and err.count("\n") == 1


def test_stylize_unknown_model_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "stylize", "--model", str(tmp_path / "none.keras"), "x.png")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_train_and_stylize_help_do_not_import_tensorflow():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from nst_tf.cli import build_parser; "
         "p = build_parser(); p.parse_args(['stylize', '--model', 'm.keras', 'x.png']); "
         "print('tensorflow' in sys.modules)"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr


def test_real_ctrl_c_keeps_the_checkpoint_and_resume_finishes(tmp_path):
    """A real SIGINT to `python -m nst_tf train`: exit 130, model + sidecar + checkpoint saved;
    `--resume` continues from the checkpoint's step (not from 0) to the new --steps."""
    import signal
    import time

    out = tmp_path / "m.keras"
    ckpt = tmp_path / "m.ckpt.npz"
    env = {**os.environ, "NST_OFFLINE": "1", "NST_PROGRESS": "0"}
    common = ["--output", str(out), "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", "train", "--style", "gravel", "--size", "32", "--batch-size", "1",
         "--width", "4", "--res-blocks", "1", "--steps", "100000", "--checkpoint-every", "1", *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
        # Ctrl-C as a terminal delivers it: a test runner started in the background (`make test &`)
        # ignores SIGINT, and a child would inherit that and never see the signal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ckpt.exists(), (
            proc.stderr.read1(4000).decode(errors="replace") if proc.poll() is not None else ""
        )
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode(errors="replace")[-2000:]
    assert b"--resume continues" in stderr
    side = json.loads(out.with_suffix(".json").read_text())
    done = side["steps_done"]
    assert side["stopped"] == "interrupted" and done >= 1
    code = subprocess.run(
        [sys.executable, "-m", "nst_tf", "train", "--resume", "--steps", str(done + 1), *common],
        capture_output=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr.decode(errors="replace")[-2000:]
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["steps_done"] == done + 1 and side["stopped"] == "completed"
    assert [row[0] for row in side["history"]] == list(range(1, done + 2))
