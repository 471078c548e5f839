"""bfloat16 against float32 (issue #22): ``python -m benchmarks.precision [--quick]``.

Everything in one process and one sitting, float32 and bfloat16 alternated, so their ratio is fair:

* **machine**: the CPU model and its bfloat16 flags (``avx512_bf16``, ``amx_bf16``), what
  ``precision="auto"`` decides here and why, and the one-off micro-benchmark ``auto`` would run;
* **per step**: the bare VGG19 step (forward + input gradient to block5_conv1, nothing else) and
  our whole objective's step (``Objective.value_and_grad``: every loss, at the content image) at
  each ``--sizes`` on each pair, in both precisions (minimum of ``--repeats``), and the cosine
  between the two precisions' gradients of our objective;
* **default transfer**: ``transfer_style`` with the defaults (512 px) in both precisions, median of
  ``--wall-repeats`` (bfloat16: ``--bf16-wall-repeats``), with its ratio to the bare step;
* **pastiche** (when ``PASTICHE_PYTHON`` is set, see benchmarks/README.md): time to pastiche's
  50-step loss at 512 px per pair (pastiche in float32 as it ships; ours in ``--pastiche-precision``,
  auto by default), and a bare torch VGG19 step in float32 and under
  ``torch.autocast("cpu", dtype=torch.bfloat16)``: what a bfloat16 pastiche could do;
* **fast network**: training images/s and stylise ms in both precisions;
* **quality**: read from ``precision_quality.json`` (the 12 calibration pairs in both precisions,
  ``python -m benchmarks.calibrate --config float32 bfloat16 --stem precision_quality``).

Writes ``benchmarks/results/precision.{json,md}`` (``--out``), with the commit and command line.
``--quick``: one bundled pair at 64 px, one repeat, no pastiche: checks the machinery (~1 minute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("float32", "bfloat16")
#: CPU flags worth recording beside bfloat16's (the vector units TensorFlow's kernels use).
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni")

TORCH_STEP = r"""
import json, os, sys, time, torch
import pastiche
from pastiche.vgg19 import VGG19  # the network pastiche runs, with its own quantised weights
size = json.loads(sys.argv[1])
torch.set_num_threads(int(sys.argv[2]))
weights = os.path.join(os.path.dirname(pastiche.__file__), "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
net = VGG19.from_quantized_bin(weights).eval()
for p in net.parameters():
    p.requires_grad_(False)
x = torch.rand(1, 3, size[0], size[1]) * 255
def step(bf16):
    y = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(y, ["block5_relu1"])["block5_relu1"]
    (out.float() ** 2).mean().backward()
times = {"float32": [], "bfloat16": []}
for bf16 in (False, True):
    step(bf16)
for _ in range(int(sys.argv[3])):
    for bf16 in (False, True):
        t = time.perf_counter(); step(bf16); times["bfloat16" if bf16 else "float32"].append(time.perf_counter() - t)
print(json.dumps({k: min(v) for k, v in times.items()} | {"torch": torch.__version__}))
"""


def log(msg):
    print(f"[precision {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine(micro_size: int = 128) -> dict:
    from benchmarks.common import machine_info
    from nst_tf import precision

    flags = precision.cpu_flags()
    native, why = precision.native_bf16()
    log("micro-benchmark (what auto would run where the hardware has bfloat16)")
    return machine_info() | {
        "cpu_flags": {f: f in flags for f in FLAGS},
        "bf16_native": native,
        "bf16_why": why,
        "auto": precision.auto_verdict()["precision"] if native else "float32",
        "micro_benchmark": precision.micro_benchmark(micro_size),
    }


def _bare_step(x, dtype):
    """The bare VGG19 step of the issue: forward + input gradient to block5_conv1, in ``dtype``."""
    import tensorflow as tf

    from nst_tf.models import build_extractor

    trunk = build_extractor(["block5_conv1"], precision=dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.square(trunk(x, training=False)["block5_conv1"]))
        return loss, tape.gradient(loss, x)

    x = tf.constant(x)
    return lambda: step(x)[1].numpy()


def _our_step(content_path, style_path, size, dtype):
    """Our objective's ``value_and_grad`` at the content image (every loss, the default settings)."""
    import tensorflow as tf

    from nst_tf import transfer
    from nst_tf.config import Config

    config = Config(size=size, precision=dtype)
    inputs = transfer.load_inputs(config, content_path, [style_path])
    plan = transfer.plan_run(config, inputs)
    shared = transfer.Shared()
    extractor = shared.network(config, plan)
    objective = transfer.stage_objective(config, plan, inputs, extractor, plan.full_hw, shared.features)
    x = tf.constant(transfer._initial(config, None, plan.full_hw, inputs.content, inputs.styles))
    return plan.full_hw, x, lambda: objective.value_and_grad(x)[2].numpy()


def _alternated(fns: dict, repeats: int, last: dict | None = None) -> dict:
    """Minimum seconds per call of each of ``fns`` (called once first: tracing), alternated;
    ``last`` gets each function's last return value."""
    firsts, last = {}, {} if last is None else last
    for name, fn in fns.items():
        t = time.perf_counter()
        last[name] = fn()
        firsts[name] = time.perf_counter() - t
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            last[name] = fn()
            times[name].append(time.perf_counter() - t)
    return {name: {"min_s": min(v), "runs_s": v, "first_s": firsts[name]} for name, v in times.items()}


def per_step(pairs, sizes, repeats, big_pairs: int, big_repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        for content_path, style_path in pairs[: big_pairs if size > 512 else None]:
            label = f"{Path(content_path).stem}:{Path(style_path).stem}"
            ours, hw = {}, None
            for dtype in PRECISIONS:
                hw, x, fn = _our_step(content_path, style_path, size, dtype)
                ours[f"ours_{dtype}"] = fn
            bare = {f"bare_{dtype}": _bare_step(x.numpy(), dtype) for dtype in PRECISIONS}
            grads = {}
            t = _alternated({**bare, **ours}, big_repeats if size > 512 else repeats, grads)
            g32, g16 = (grads[f"ours_{d}"].ravel().astype(np.float64) for d in PRECISIONS)
            cosine = float(g32 @ g16 / (np.linalg.norm(g32) * np.linalg.norm(g16)))
            row = {
                "pair": label,
                "size": size,
                "hw": list(hw),
                "times": t,
                "bare_bf16_over_fp32": t["bare_bfloat16"]["min_s"] / t["bare_float32"]["min_s"],
                "ours_bf16_over_fp32": t["ours_bfloat16"]["min_s"] / t["ours_float32"]["min_s"],
                "gradient_cosine": cosine,
            }
            rows.append(row)
            log(
                f"{label} {hw[1]}x{hw[0]}: bare {t['bare_float32']['min_s']:.2f} / {t['bare_bfloat16']['min_s']:.2f} s, "
                f"ours {t['ours_float32']['min_s']:.2f} / {t['ours_bfloat16']['min_s']:.2f} s (fp32 / bf16), "
                f"gradient cosine {cosine:.5f}"
            )
    return rows


def default_wall(content_path, style_path, size, repeats: dict, bare_s: dict) -> dict:
    from nst_tf import transfer

    out = {}
    for dtype in repeats:
        runs, result = [], None
        for _ in range(repeats[dtype]):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = transfer.transfer_style(
                    content_path, style_path, size=size, precision=dtype, progress=False
                )
            runs.append(time.perf_counter() - t)
            log(f"default {size} px, {dtype}: {runs[-1]:.1f} s")
        median = float(np.median(runs))
        out[dtype] = {
            "median_s": median,
            "runs_s": runs,
            "bare_steps": median / bare_s[dtype] if bare_s.get(dtype) else None,
            "final_loss": result.final_losses.get("total"),
            "loss_float32": transfer.loss_at(result.config, result.image, content_path, [style_path]),
            "hw": list(result.image.shape[:2]),
        }
    return out


def pastiche(pairs, size, steps, dtype, threads) -> dict:
    from benchmarks.pastiche_compare import compare, pastiche_python
    from nst_tf.config import Config
    from nst_tf.images import load_image

    exe, why = pastiche_python()
    if exe is None:
        return {"skipped": why}
    out = {"precision": dtype, "pairs": {}}
    for content_path, style_path in pairs:
        label = f"{Path(content_path).stem}:{Path(style_path).stem}"
        res = compare(
            content_path, style_path, [size], {size: [steps]}, Config().pyramid, threads, exe, dtype
        )
        row = res["sizes"][str(size)]["table"][0]
        out["pairs"][label] = row
        log(f"pastiche {label}: {row['pastiche_s']:.1f} s vs ours {row['ours_s']} s: {row['speedup']}")
    hw = load_image(pairs[0][0], long_side=size).shape[:2]
    proc = subprocess.run(
        [exe, "-c", TORCH_STEP, json.dumps(list(hw)), str(threads or os.cpu_count()), "3"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if proc.returncode == 0:
        out["torch_bare_step"] = json.loads(proc.stdout.strip().splitlines()[-1]) | {"hw": list(hw)}
        log(f"torch bare step {out['torch_bare_step']}")
    else:
        out["torch_bare_step"] = {"error": proc.stderr.strip()[-500:]}
    return out


def fast_network(train_size, batch, steps, stylize_size, repeats) -> dict:
    import tensorflow as tf

    from nst_tf import fast
    from nst_tf.fast_config import TrainConfig
    from nst_tf.images import load_image

    out = {"train": {}, "stylize": {}}
    photos = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (batch, train_size, train_size, 3)).astype("float32")
    )
    for dtype in PRECISIONS:
        config = TrainConfig(size=train_size, batch_size=batch, precision=dtype)
        style = load_image(fast.nst_data.resolve_image(config.style, "style", allow_download=False))
        loss = fast.PerceptualLoss(config, style)
        model = fast.build_transformer(config.width, config.res_blocks, precision=dtype)
        opt = tf.keras.optimizers.Adam(config.learning_rate)
        step = fast.make_train_step(model, opt, loss, tf.distribute.get_strategy(), batch)
        seed = tf.constant([0, 0], tf.int64)
        step(photos, seed)  # trace
        t = time.perf_counter()
        for _ in range(steps):
            float(step(photos, seed)[0])
        seconds = (time.perf_counter() - t) / steps
        out["train"][dtype] = {"s_per_step": seconds, "images_per_s": batch / seconds}
        log(f"train {train_size} px x {batch}, {dtype}: {batch / seconds:.2f} images/s")
    img = load_image(ROOT / "data/src/content/chelsea.jpg", long_side=stylize_size)
    for width in (16, 8):
        models = {d: fast.build_transformer(width, 5, precision=d) for d in PRECISIONS}
        t = _alternated({d: (lambda m=m: fast.stylize(m, img)) for d, m in models.items()}, repeats)
        out["stylize"][f"width_{width}"] = {d: t[d]["min_s"] * 1000 for d in PRECISIONS} | {
            "hw": list(img.shape[:2])
        }
        log(f"stylize width {width} at {img.shape[1]}x{img.shape[0]}: {out['stylize'][f'width_{width}']}")
    return out


def quality(path: Path) -> dict | None:
    if not path.is_file():
        return None
    res = json.loads(path.read_text())
    rows = {}
    for name in PRECISIONS:
        block = res["configs"].get(name)
        if block:
            rows[name] = {r["content"] + ":" + r["style"]: r for r in block["rows"]}
    out = {"size": res["size"], "source": path.name, "machine": res["machine"]["cpu"], "pairs": {}}
    for pair in rows.get("float32", {}):
        if pair in rows.get("bfloat16", {}):
            a, b = rows["float32"][pair], rows["bfloat16"][pair]
            out["pairs"][pair] = {
                k: [a.get(k), b.get(k)]
                for k in ("loss_float32", "style_distance", "ssim", "edge_correlation")
            }
    return out


def report_md(res: dict) -> str:  # noqa: C901 (one table after another)
    m = res["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["cpu_flags"].items())
    mb = m["micro_benchmark"]
    lines = [
        "# bfloat16 against float32 (`python -m benchmarks.precision`, issue #22)",
        "",
        f"Commit `{res['commit']}`, command `{res['command']}`, {time.strftime('%Y-%m-%d', time.gmtime(res['started']))}.",
        *(
            f"Section `{name}` rerun at commit `{r['commit']}` by `{r['command']}`, {r['date']} (same machine kind)."
            for name, r in res.get("reruns", {}).items()
        ),
        "",
        f"**{m['cpu']}**, {m['cores']} cores; TensorFlow {m['tensorflow']}; load average at start "
        f"{'/'.join(f'{v:.1f}' for v in m['load_average_at_start'] or [])}. CPU flags: {flags}.",
        "",
        f"bfloat16 in hardware: **{'yes' if m['bf16_native'] else 'no'}** ({m['bf16_why']}); "
        f'`precision="auto"` here: **{m["auto"]}**. The micro-benchmark `auto` runs where the hardware has '
        f"bfloat16 (six 3x3 convolutions, VGG19 blocks 1-3 shortened, at {mb['size']} px): float32 {mb['float32_s'] * 1000:.0f} ms, "
        f"bfloat16 {mb['bfloat16_s'] * 1000:.0f} ms, speed-up {mb['speedup']:.2f}x.",
        "",
    ]
    if not m["bf16_native"]:
        lines += [
            "**This CPU has no bfloat16 instructions**: TensorFlow emulates bfloat16 here (the same "
            "arithmetic, float32 accumulation, checked: a 3x3x512 convolution's error is that of rounding "
            "its output to bfloat16), so the times below show the emulation's cost, not bfloat16 "
            "hardware's, and `auto` stays float32. The accuracy numbers hold on any machine.",
            "",
        ]
    lines += [
        "## Per step (minimum of the repeats; ratio bf16 / fp32, below 1 = bfloat16 faster)",
        "",
        "| pair | size | bare fp32 s | bare bf16 s | ratio | ours fp32 s | ours bf16 s | ratio | gradient cosine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["per_step"]:
        t = r["times"]
        lines.append(
            f"| {r['pair']} | {r['hw'][1]}x{r['hw'][0]} | {t['bare_float32']['min_s']:.2f} | "
            f"{t['bare_bfloat16']['min_s']:.2f} | {r['bare_bf16_over_fp32']:.2f} | {t['ours_float32']['min_s']:.2f} | "
            f"{t['ours_bfloat16']['min_s']:.2f} | {r['ours_bf16_over_fp32']:.2f} | {r['gradient_cosine']:.5f} |"
        )
    w = res.get("default_wall")
    if w:
        lines += ["", f"## Default transfer ({w['float32']['hw'][1]}x{w['float32']['hw'][0]})", ""]
        lines += [
            "| precision | median s | runs s | bare steps | loss (float32-evaluated) |",
            "|---|---|---|---|---|",
        ]
        for d in w:
            v = w[d]
            steps = "-" if v["bare_steps"] is None else f"{v['bare_steps']:.1f}"
            runs = ", ".join(f"{s:.1f}" for s in v["runs_s"])
            lines.append(f"| {d} | {v['median_s']:.1f} | {runs} | {steps} | {v['loss_float32']:.4f} |")
    p = res.get("pastiche")
    if p:
        lines += ["", "## Against pastiche at 512 px (time to pastiche's 50-step loss)", ""]
        if "skipped" in p:
            lines.append(f"Skipped: {p['skipped']}.")
        else:
            lines += [f"Ours in {p['precision']}, pastiche in float32.", ""]
            lines += ["| pair | pastiche s | ours s | pastiche / ours |", "|---|---|---|---|"]
            for pair, row in p["pairs"].items():
                ours = "not reached" if row["ours_s"] is None else f"{row['ours_s']:.1f}"
                speed = "-" if row["speedup"] is None else f"{row['speedup']:.2f}x"
                lines.append(f"| {pair} | {row['pastiche_s']:.1f} | {ours} | {speed} |")
            tb = p.get("torch_bare_step", {})
            if "float32" in tb:
                lines += [
                    "",
                    f"A bare torch VGG19 step (pastiche's network, forward + input gradient to block5_relu1, "
                    f"{tb['hw'][1]}x{tb['hw'][0]}, torch {tb['torch']}): float32 {tb['float32']:.2f} s, under "
                    f'`torch.autocast("cpu", dtype=torch.bfloat16)` {tb["bfloat16"]:.2f} s '
                    f"({tb['bfloat16'] / tb['float32']:.2f}x): what a bfloat16 pastiche could do here.",
                ]
    f = res.get("fast")
    if f:
        tr = f["train"]
        lines += ["", "## Fast network", ""]
        lines += [
            f"Training (width 16, 5 residual blocks, {f['train_size']} px crops, batch {f['batch']}): "
            + ", ".join(f"{d} {tr[d]['images_per_s']:.2f} images/s" for d in PRECISIONS)
            + f" (bf16 / fp32 speed {tr['bfloat16']['images_per_s'] / tr['float32']['images_per_s']:.2f}x).",
            "",
            "| network | image | fp32 ms | bf16 ms |",
            "|---|---|---|---|",
        ]
        for name, v in f["stylize"].items():
            lines.append(f"| {name} | {v['hw'][1]}x{v['hw'][0]} | {v['float32']:.0f} | {v['bfloat16']:.0f} |")
    q = res.get("quality")
    if q:
        lines += [
            "",
            f"## Quality: the 12 calibration pairs at {q['size']} px ({q['source']}, {q['machine']})",
            "",
            "Each cell: float32 run / bfloat16 run. Loss: the default objective evaluated in float32 at the result.",
            "",
            "| pair | loss | style distance | SSIM | edge corr. |",
            "|---|---|---|---|---|",
        ]
        for pair, v in q["pairs"].items():
            cells = [f"{a:.3f} / {b:.3f}" for a, b in v.values()]
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Contact sheet (results only, columns float32, bfloat16): `{q['source'].replace('.json', '')}_sheet.jpg`.",
        ]
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one bundled pair at 64 px (machinery)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per step measurement")
    parser.add_argument("--big-pairs", type=int, default=1, help="pairs measured above 512 px (default 1)")
    parser.add_argument("--big-repeats", type=int, default=1, help="timed calls above 512 px (default 1)")
    parser.add_argument("--wall-repeats", type=int, default=3, help="default transfers in float32")
    parser.add_argument("--bf16-wall-repeats", type=int, help="in bfloat16 (default: as float32)")
    parser.add_argument("--pastiche-precision", default="auto", choices=["auto", *PRECISIONS])
    parser.add_argument("--pastiche-pairs", type=int, help="pairs compared with pastiche (default all)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["per_step", "wall", "pastiche", "fast", "quality"],
        help="sections to (re)run into the results file, keeping the others (quality: reread "
        "precision_quality.json)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import git_commit, resolve_pairs
    from nst_tf.files import output_dir, write_text

    only = set(args.only or ["per_step", "wall", "pastiche", "fast"])
    out = args.out or (
        output_dir() / "precision" / "quick" if args.quick else ROOT / "benchmarks" / "results"
    )
    pairs, note = resolve_pairs(None if not args.quick else [("chelsea", "hubble_deep_field")])
    sizes = [64] if args.quick else args.sizes
    repeats = 1 if args.quick else args.repeats
    walls = {"float32": 1 if args.quick else args.wall_repeats}
    bf16_walls = args.bf16_wall_repeats if args.bf16_wall_repeats is not None else walls["float32"]
    walls["bfloat16"] = 1 if args.quick else bf16_walls  # 0: leave it out (emulated bfloat16 is slow)
    command = " ".join(["python -m benchmarks.precision", *(argv if argv is not None else sys.argv[1:])])
    # --only reruns those sections into the results file, keeping the others as they were measured
    previous = {}
    if args.only and (out / "precision.json").is_file():
        previous = json.loads((out / "precision.json").read_text())
    res = {
        "per_step": [],
        **previous,
        "command": previous.get("command", command),
        "commit": previous.get("commit", git_commit()),
        "started": time.time(),
        "mode": "quick" if args.quick else "full",
        "pairs_note": note,
        "machine": machine(32 if args.quick else 128),
    }
    if previous:
        reruns = {
            s: {"command": command, "commit": git_commit(), "date": time.strftime("%Y-%m-%d")} for s in only
        }
        res["reruns"] = {**previous.get("reruns", {}), **reruns}

    def save():
        write_text(out / "precision.json", json.dumps(res, indent=1, default=float) + "\n")
        write_text(out / "precision.md", report_md(res))

    if "per_step" in only:
        res["per_step"] = per_step(
            pairs, sizes, repeats, args.big_pairs, 1 if args.quick else args.big_repeats
        )
        save()
    if "wall" in only:
        size = 64 if args.quick else 512
        rows = [r for r in res["per_step"] if r["size"] == size]
        bare = {d: rows[0]["times"][f"bare_{d}"]["min_s"] for d in PRECISIONS} if rows else {}
        res["default_wall"] = default_wall(*pairs[0], size, {d: n for d, n in walls.items() if n}, bare)
        save()
    if "pastiche" in only and not args.quick:
        res["pastiche"] = pastiche(pairs[: args.pastiche_pairs], 512, 50, args.pastiche_precision, None)
        save()
    if "fast" in only:
        train_size, batch = (32, 2) if args.quick else (256, 4)  # 256 px: the shipped networks' crops
        res["fast"] = fast_network(
            train_size, batch, 1 if args.quick else 5, 64 if args.quick else 512, repeats
        )
        res["fast"] |= {"train_size": train_size, "batch": batch}
        save()
    res["quality"] = quality(out / "precision_quality.json")
    res["seconds"] = time.time() - res["started"]
    save()
    log(f"wrote {out / 'precision.json'} and precision.md in {res['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
