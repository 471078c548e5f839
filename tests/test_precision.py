"""Precision as a setting (issue #22): what ``auto`` picks, and bfloat16 against float32.

bfloat16 runs on any CPU (TensorFlow emulates it where the instructions are missing: slow, but
the same arithmetic), so these tests run the bfloat16 path everywhere, on tiny images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import precision
from nst_tf.config import Config
from nst_tf.errors import ConfigError
from nst_tf.fast_config import TrainConfig


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No verdict remembered in this process, an empty cache, NST_PRECISION unset."""
    monkeypatch.setattr(precision, "_verdicts", {})
    monkeypatch.setattr(precision, "_printed", set())
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NST_PRECISION", raising=False)
    return tmp_path / "cache" / precision.CACHE_NAME


def _never():
    raise AssertionError("the micro-benchmark must not run without bfloat16 hardware")


# ----------------------------------------------------------------------------- auto's verdict
@pytest.mark.parametrize("flags", [set(), {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}])
def test_auto_never_picks_bfloat16_without_the_cpu_flags(flags):
    verdict = precision.auto_verdict(flags, [], benchmark=_never)
    assert verdict["precision"] == "float32"
    assert "avx512_bf16" in verdict["why"]


@pytest.mark.parametrize("flag", precision.BF16_CPU_FLAGS)
def test_auto_picks_bfloat16_with_the_flags_only_if_it_measures_faster(flag):
    fast = precision.auto_verdict({"avx2", flag}, [], benchmark=lambda: {"speedup": 1.9})
    slow = precision.auto_verdict({"avx2", flag}, [], benchmark=lambda: {"speedup": 1.05})
    assert fast["precision"] == "bfloat16" and flag in fast["why"] and "1.90x" in fast["why"]
    assert slow["precision"] == "float32"


def test_a_gpu_decides_by_its_compute_capability():
    turing = [{"name": "T4", "compute_capability": (7, 5)}]
    ampere = [{"name": "A100", "compute_capability": (8, 0)}]
    # a GPU below 8.0 is float32 even on a CPU with bf16 flags: the convolutions run on the GPU
    assert precision.auto_verdict({"avx512_bf16"}, turing, benchmark=_never)["precision"] == "float32"
    assert (
        precision.auto_verdict(set(), ampere, benchmark=lambda: {"speedup": 2.5})["precision"] == "bfloat16"
    )


def test_the_verdict_is_cached_per_machine_and_printed_once(fresh, monkeypatch, capsys):
    calls = []

    def benchmark(size=128, repeats=3):
        calls.append(size)
        return {"size": size, "float32_s": 2.0, "bfloat16_s": 1.0, "speedup": 2.0}

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(precision, "gpus", lambda: [])
    monkeypatch.setattr(precision, "micro_benchmark", benchmark)
    assert precision.resolve("auto") == "bfloat16"
    assert precision.resolve("auto") == "bfloat16"
    assert calls == [128]
    assert capsys.readouterr().err.count("precision auto: bfloat16") == 1
    cached = json.loads(fresh.read_text())
    (key,) = cached
    assert precision.cpu_model() in key and tf.__version__ in key and cached[key]["precision"] == "bfloat16"
    precision._verdicts.clear()  # a new process: the cache answers, no benchmark
    assert precision.resolve("auto") == "bfloat16" and calls == [128]


def test_auto_without_the_flags_runs_no_benchmark_and_says_why(fresh, monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(precision, "gpus", lambda: [])
    monkeypatch.setattr(precision, "micro_benchmark", _never)
    assert precision.resolve("auto") == "float32"
    assert "no bfloat16 instructions" in capsys.readouterr().err
    assert precision.describe("auto")["why"].startswith("this CPU has no bfloat16")
    assert not fresh.exists()


def test_explicit_settings_and_the_environment(fresh, monkeypatch):
    monkeypatch.setattr(precision, "micro_benchmark", _never)
    assert precision.resolve("bfloat16") == "bfloat16" and precision.resolve("float32") == "float32"
    monkeypatch.setenv("NST_PRECISION", "bfloat16")
    assert precision.resolve("auto") == "bfloat16"
    assert precision.resolve("float32") == "float32"  # a setting beats the environment
    assert precision.describe("auto") == {
        "setting": "auto",
        "used": "bfloat16",
        "why": "NST_PRECISION=bfloat16",
    }
    monkeypatch.setenv("NST_PRECISION", "half")
    with pytest.raises(ConfigError, match="NST_PRECISION='half'"):
        precision.resolve("auto")


def test_bad_precisions_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown precision 'float16': use one of auto, float32, bfloat16"):
        Config(precision="float16").validate()
    with pytest.raises(ConfigError, match="unknown precision"):
        TrainConfig(precision="fp32").validate()
    with pytest.raises(ConfigError, match="unknown precision"):
        precision.resolve(None)


def test_every_command_has_a_precision_flag():
    from nst_tf.cli import build_parser

    parser = build_parser()
    for command in ("transfer", "texture", "reconstruct", "train", "stylize"):
        args = parser.parse_args(
            [command, "--precision", "bfloat16", *(["x.png", "-m", "m.keras"] * (command == "stylize"))]
        )
        assert args.precision == "bfloat16", command
    with pytest.raises(SystemExit):
        parser.parse_args(["transfer", "--precision", "float16"])


def test_the_micro_benchmark_times_both_formats():
    out = precision.micro_benchmark(size=32, repeats=1)
    assert out["float32_s"] > 0 and out["bfloat16_s"] > 0
    assert out["speedup"] == pytest.approx(out["float32_s"] / out["bfloat16_s"])


# ----------------------------------------------------------------------------- bfloat16 vs float32
def test_the_bfloat16_extractor_computes_in_bfloat16_and_returns_float32(content_small):
    from nst_tf.images import preprocess
    from nst_tf.models import build_extractor

    layers = ["block1_conv1", "block4_conv2", "block5_conv1"]
    x = tf.constant(preprocess(content_small))
    out = {}
    for p in ("float32", "bfloat16"):
        model = build_extractor(layers, precision=p)
        conv_dtypes = {w.dtype for w in model.weights}
        assert conv_dtypes == {p}
        with tf.GradientTape() as tape:
            tape.watch(x)
            feats = model(x)
            loss = sum(tf.reduce_mean(tf.square(f)) for f in feats.values())
        grad = tape.gradient(loss, x)
        assert {f.dtype for f in feats.values()} == {tf.float32} and grad.dtype == tf.float32
        out[p] = ({k: v.numpy() for k, v in feats.items()}, grad.numpy().ravel())
    for k in layers:  # bfloat16 keeps ~3 significant digits: features within 2 % of their range
        a, b = out["float32"][0][k], out["bfloat16"][0][k]
        assert np.abs(a - b).max() < 0.02 * np.abs(a).max(), k
        assert not np.array_equal(a, b), k  # it really computed in another format
    g32, g16 = out["float32"][1], out["bfloat16"][1]
    cosine = g32 @ g16 / np.linalg.norm(g32) / np.linalg.norm(g16)
    assert 0.99 < cosine < 1.0  # measured 0.9985 at 64 px


def test_a_tiny_transfer_in_bfloat16_agrees_with_float32(content_small, style_small):
    """Tolerance: the bfloat16 result's float32-evaluated loss within 10 % of the float32 run's, and
    mean pixels within 16 grey levels (measured on chelsea x hubble_deep_field at 64 px, 10 + 10
    steps: 2.4 % and 9.0 grey levels)."""
    from nst_tf import transfer
    from nst_tf.images import preprocess

    kw = dict(size=64, steps=10, pyramid=((0.5, 10),), seed=0)
    r32 = transfer.transfer_style(content_small, style_small, precision="float32", **kw)
    r16 = transfer.transfer_style(content_small, style_small, precision="bfloat16", **kw)
    assert r32.precision == {"setting": "float32", "used": "float32"}
    assert r16.metadata()["precision"] == {"setting": "bfloat16", "used": "bfloat16"}
    assert r16.config.precision == "bfloat16" and r16.stopped == "completed"
    config = Config(**kw)  # both results judged by the float32 objective
    inputs = transfer.load_inputs(config, content_small, [style_small])
    plan = transfer.plan_run(config, inputs)
    extractor = transfer.Shared().network(config, plan)
    objective = transfer.stage_objective(config, plan, inputs, extractor, plan.full_hw)
    loss32, loss16 = (float(objective(preprocess(r.image.astype(np.float32)))[0][0]) for r in (r32, r16))
    assert abs(loss16 - loss32) < 0.10 * loss32
    diff = np.abs(r32.image.astype(float) - r16.image.astype(float)).mean()
    assert 0 < diff < 16


def test_the_transformer_in_bfloat16_matches_float32_with_the_same_weights(content_small, tmp_path):
    from nst_tf import fast

    m32 = fast.build_transformer(8, 1, precision="float32")
    m16 = fast.build_transformer(8, 1, precision="bfloat16")
    assert fast.model_precision(m32) == "float32" and fast.model_precision(m16) == "bfloat16"
    assert {w.dtype for w in m16.weights} == {"float32"}  # mixed_bfloat16: float32 master weights
    assert all(m16.get_layer(n).compute_dtype == "float32" for n in fast.FLOAT32_LAYERS)
    m16.set_weights(m32.get_weights())
    a, b = fast.stylize(m32, content_small), fast.stylize(m16, content_small)
    assert a.dtype == b.dtype == np.float32
    assert 0 < np.abs(a - b).mean() < 4  # measured 1.5 grey levels
    # the other precision is a copy with the same weights: the same pixels as a network built so
    assert np.array_equal(fast.stylize(fast.with_precision(m32, "bfloat16"), content_small), b)
    assert fast.with_precision(m32, "float32") is m32
    path = fast.save_model(m16, tmp_path / "m16.keras")
    assert fast.model_precision(fast.load_model(path, None)) == "bfloat16"  # as trained
    assert fast.model_precision(fast.load_model(path, "float32")) == "float32"


def test_a_training_step_in_bfloat16_agrees_with_float32(tmp_path):
    from nst_tf import fast

    losses = {}
    for p in ("float32", "bfloat16"):
        config = TrainConfig(style="hubble_deep_field", size=32, batch_size=2, steps=2, width=4,
                             res_blocks=1, precision=p)  # fmt: skip
        result = fast.train(config, output=tmp_path / f"{p}.keras", progress=False)
        meta = json.loads((tmp_path / f"{p}.json").read_text())
        assert meta["precision"] == {"setting": p, "used": p} and meta["config"]["precision"] == p
        assert fast.model_precision(result.model) == p
        losses[p] = [row[1] for row in result.history]
    assert np.all(np.isfinite(losses["bfloat16"]))
    assert losses["bfloat16"][0] == pytest.approx(losses["float32"][0], rel=0.05)


# ----------------------------------------------------------------------------- one stage loop
def test_the_benchmarks_run_the_librarys_stage_loop(monkeypatch, content_small, style_small):
    """The pastiche comparison and the speed study time the loop users get: transfer.run_stages,
    with the curvature hand-off, planned by transfer.plan_stages."""
    from benchmarks import pastiche_compare, speed_study
    from nst_tf import transfer

    calls = []
    real = transfer.run_stages

    def spy(stages, *args, **kw):
        calls.append((list(stages), kw.get("handoff", True)))
        return real(stages, *args, **kw)

    monkeypatch.setattr(transfer, "run_stages", spy)
    rec = pastiche_compare.run_ours(content_small, style_small, ((0.5, 2),), None, 2)
    (stages, handoff), *_ = calls
    assert handoff and [steps for _, steps in stages] == [2, 2]
    assert stages[-1][0] == content_small.shape[:2] and {(r[3], r[4]) for r in rec.rows} == {
        hw for hw, _ in stages
    }
    shape = content_small.shape
    assert speed_study._stages(shape, 64, ((0.5, 3),), 4, 16) == transfer.plan_stages(
        shape, 64, [(0.5, 3), (1.0, 4)], 16
    )
