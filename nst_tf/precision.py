"""Which number format VGG19 (and every trained network) computes in: float32 or bfloat16.

Every evaluation in this project is a VGG19 pass, and a CPU with bfloat16 instructions
(``avx512_bf16``, ``amx_bf16``) or a GPU of compute capability 8.0 or more runs its convolutions
about twice as fast in bfloat16. Elsewhere TensorFlow emulates bfloat16, which is correct but
slow: measured on a 2-core AMD EPYC without those instructions, a VGG19 step to block5_conv1 at
512 px took 10x longer in bfloat16 than in float32 (``benchmarks/results/precision.md``).

So the setting ``precision`` (``Config``, ``TrainConfig``, ``--precision`` on every command) is

* ``"float32"``: everything in float32 (the reference);
* ``"bfloat16"``: the convolutions, ReLUs and poolings in bfloat16 (weights stored in bfloat16;
  a trained network keeps float32 master weights, Keras's ``mixed_bfloat16``); the image, its
  gradient, the targets, Gram matrices, losses and total variation stay float32: features are
  cast to float32 as they leave the network, before any Gram matrix;
* ``"auto"`` (the default): bfloat16 only where the device runs it natively *and* a one-off
  micro-benchmark confirms that it is faster on this machine; float32 everywhere else. The
  verdict is cached in ``$NST_CACHE_DIR/precision.json`` (keyed by CPU model, GPU and TensorFlow
  version) and printed once per process. ``NST_PRECISION=float32|bfloat16|auto`` decides what
  ``auto`` means without detection (the tests set float32, so they give the same numbers on
  every machine).

bfloat16 keeps float32's exponent range (8 bits), so the tiny gradients of our mean-based losses
neither underflow nor need loss scaling; it keeps 8 bits of mantissa, so each value carries a
relative error of up to 2^-9. What that costs a picture is measured, not assumed
(``benchmarks/precision.py``: the gradient's cosine with float32's, and the 12 calibration pairs).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from nst_tf.errors import ConfigError

PRECISIONS = ("auto", "float32", "bfloat16")
#: The CPU flags that mean bfloat16 arithmetic in hardware (Linux /proc/cpuinfo names).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: The smallest CUDA compute capability with bfloat16 tensor cores (Ampere).
BF16_GPU_CAPABILITY = (8, 0)
#: ``auto`` picks bfloat16 only if the micro-benchmark finds it at least this much faster.
MIN_SPEEDUP = 1.15
CACHE_NAME = "precision.json"

_printed: set = set()
_verdicts: dict = {}


def check(precision) -> str:
    """``precision`` itself if it is one of ``PRECISIONS``, else a one-line ConfigError."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return precision


# ----------------------------------------------------------------------------- what the hardware has
def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; an empty set where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def gpus() -> list[dict]:
    """``[{"name", "compute_capability"}]`` of the GPUs TensorFlow sees (an empty list on a CPU)."""
    import tensorflow as tf

    out = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        out.append(
            {
                "name": details.get("device_name", device.name),
                "compute_capability": details.get("compute_capability"),
            }
        )
    return out


def native_bf16(flags=None, gpu_list=None) -> tuple[bool, str]:
    """``(True/False, why)``: does the device TensorFlow computes on run bfloat16 in hardware?

    ``flags`` (CPU flags) and ``gpu_list`` (as :func:`gpus` returns) are read from the machine when
    None; tests inject them. With a GPU, the GPU decides (the convolutions run there).
    """
    gpu_list = gpus() if gpu_list is None else gpu_list
    if gpu_list:
        caps = [tuple(g.get("compute_capability") or (0, 0)) for g in gpu_list]
        if all(c >= BF16_GPU_CAPABILITY for c in caps):
            return True, f"GPU {gpu_list[0].get('name')} (compute capability {'.'.join(map(str, caps[0]))})"
        low = min(caps)
        return False, (
            f"GPU compute capability {'.'.join(map(str, low))} < "
            f"{'.'.join(map(str, BF16_GPU_CAPABILITY))}: no bfloat16 tensor cores"
        )
    flags = cpu_flags() if flags is None else set(flags)
    have = [f for f in BF16_CPU_FLAGS if f in flags]
    if have:
        return True, f"CPU flags {', '.join(have)}"
    return False, f"this CPU has no bfloat16 instructions ({' or '.join(BF16_CPU_FLAGS)})"


# ----------------------------------------------------------------------------- the micro-benchmark
def micro_benchmark(size: int = 128, repeats: int = 3) -> dict:
    """Seconds per forward + input-gradient pass of VGG19's first three blocks on a ``size`` px
    image, in float32 and in bfloat16 (random weights: the arithmetic is the same), alternated,
    minimum of ``repeats``. A few seconds on a 2-core CPU."""
    import keras
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).uniform(-120, 120, (1, size, size, 3)).astype("float32"))
    steps = {}
    for dtype in ("float32", "bfloat16"):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((None, None, 3))
        y = keras.ops.cast(inputs, dtype)
        for i, channels in enumerate((64, 64, 128, 128, 256, 256)):  # VGG19's blocks 1-3, shortened
            if i in (2, 4):
                y = keras.layers.MaxPooling2D(2, dtype=dtype)(y)
            y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", dtype=dtype)(y)
        model = keras.Model(inputs, keras.ops.cast(y, "float32"))

        @tf.function
        def step(x, model=model):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_mean(tf.square(model(x)))
            return loss, tape.gradient(loss, x)

        step(x)  # trace
        steps[dtype] = step
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for dtype, step in steps.items():
            t = time.perf_counter()
            _, grad = step(x)
            grad.numpy()
            times[dtype].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    return {"size": size, "float32_s": best["float32"], "bfloat16_s": best["bfloat16"],
            "speedup": best["float32"] / best["bfloat16"]}  # fmt: skip


def _machine_key() -> str:
    import tensorflow as tf

    names = ",".join(str(g.get("name")) for g in gpus()) or "no GPU"
    return f"{cpu_model()} | {names} | tensorflow {tf.__version__}"


def _cache_path():
    from nst_tf.files import cache_dir

    return cache_dir() / CACHE_NAME


def _read_cache() -> dict:
    try:
        with open(_cache_path()) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, verdict: dict) -> None:
    from nst_tf.files import write_text

    data = _read_cache()
    data[key] = verdict
    try:
        write_text(_cache_path(), json.dumps(data, indent=1), overwrite=True)
    except Exception:  # a read-only cache only costs the benchmark again next time
        pass


def auto_verdict(flags=None, gpu_list=None, *, benchmark=None) -> dict:
    """``{"precision", "why"}``: what ``auto`` means on this machine.

    No bfloat16 hardware: float32, no benchmark. Hardware: the cached verdict for this machine, or
    the micro-benchmark (``benchmark``, injectable for tests) run once and cached.
    """
    native, why = native_bf16(flags, gpu_list)
    if not native:
        return {"precision": "float32", "why": why}
    injected = flags is not None or gpu_list is not None or benchmark is not None
    key = _machine_key()
    cached = None if injected else _read_cache().get(key)
    if isinstance(cached, dict) and cached.get("precision") in ("float32", "bfloat16"):
        return cached
    measured = (benchmark or micro_benchmark)()
    speedup = float(measured["speedup"])
    pick = "bfloat16" if speedup >= MIN_SPEEDUP else "float32"
    verdict = {
        "precision": pick,
        "why": f"{why}; bfloat16 measured {speedup:.2f}x float32's speed on this machine"
        + ("" if pick == "bfloat16" else f" (< {MIN_SPEEDUP}x: not worth its rounding)"),
        "benchmark": measured,
        "machine": key,
    }
    if not injected:
        _write_cache(key, verdict)
    return verdict


def resolve(precision="auto", *, verbose: bool = True) -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision`` means here (``auto`` decided once)."""
    check(precision)
    if precision != "auto":
        return precision
    env = os.environ.get("NST_PRECISION", "").strip().lower()
    if env:
        if env not in PRECISIONS:
            raise ConfigError(f"NST_PRECISION={env!r} is not one of {', '.join(PRECISIONS)}: fix or unset it")
        if env != "auto":
            return env
    if "auto" not in _verdicts:
        _verdicts["auto"] = auto_verdict()
    verdict = _verdicts["auto"]
    if verbose and "auto" not in _printed:
        _printed.add("auto")
        print(f"precision auto: {verdict['precision']} ({verdict['why']})", file=sys.stderr)
    return verdict["precision"]


def describe(precision="auto") -> dict:
    """What a sidecar records: the setting and what it resolved to here (and why, for auto)."""
    used = resolve(precision, verbose=False)
    out = {"setting": precision, "used": used}
    if precision == "auto":
        env = os.environ.get("NST_PRECISION", "").strip().lower()
        out["why"] = f"NST_PRECISION={env}" if env and env != "auto" else _verdicts["auto"]["why"]
    return out


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of a *trained* network in ``precision`` (resolved)."""
    return "mixed_bfloat16" if resolve(precision, verbose=False) == "bfloat16" else "float32"
