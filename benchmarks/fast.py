"""Fast style transfer benchmark (issue #14): ``python -m benchmarks.fast [--quick]``.

In one process and one sitting, on the bundled photos and a bundled style:

1. ``lean``: a bare compiled VGG19 forward + input gradient to block5_conv1 at the training
   size and at 512 px (``benchmarks.common.lean_step_fn``): the yardstick every ratio uses;
2. ``train``: ``nst_tf.fast.train`` for ``--steps`` steps at ``--size`` px crops (batch 4): images/s
   (first step, i.e. tracing, left out) and seconds per image relative to the lean step;
3. ``stylize``: one image at 512 px long side, median of ``--runs`` calls after a warm-up, and
   folder throughput (``stylize_folder``: read, batch of 4, write PNG + sidecar) at 512 px;
4. ``held_out``: on the photos kept out of training (``fast.HELD_OUT``), the trained network's loss
   under the transfer objective (``fast.evaluate``) against L-BFGS (``transfer_style``, single
   scale, the same objective) after 10, 30 and 100 steps, at the training size;
5. ``flicker``: a generated clip (a slow pan across a held-out photo with sensor-like noise)
   stylised with ``--blend`` 0, 0.3, 0.6: mean absolute frame-to-frame difference in and out.

Writes ``fast.json`` and ``fast.md`` to ``benchmarks/results/`` (``--out`` to change) and the
trained model beside them only when ``--keep-model`` is given. ``--quick`` uses tiny sizes and few
steps: its numbers only show that the machinery works. Run the full one on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "full": {"size": 256, "steps": 1000, "batch": 4, "runs": 30, "speed_size": 512, "folder_n": 16,
             "lbfgs": [10, 30, 100], "video_frames": 24, "video_size": 256},
    "quick": {"size": 32, "steps": 3, "batch": 2, "runs": 3, "speed_size": 64, "folder_n": 4,
              "lbfgs": [2, 3], "video_frames": 4, "video_size": 48},
}  # fmt: skip


def log(msg):
    print(f"[fast {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lean(sizes) -> dict:
    import numpy as np

    from benchmarks.common import keras_vgg19, lean_step_fn, time_calls
    from nst_tf.models import get_weights

    vgg = keras_vgg19(get_weights(None)[0])
    out = {}
    for hw in sizes:
        x = np.random.default_rng(0).normal(0, 50, (1, *hw, 3)).astype("float32")
        t = time_calls(lean_step_fn(vgg, x), 5, warmup=2)
        out[f"{hw[1]}x{hw[0]}"] = t["s_median"]
        log(f"lean VGG19 step {hw[1]}x{hw[0]}: {t['s_median']:.3f} s")
    return out


def train(style, s, workdir) -> tuple:
    from nst_tf import fast
    from nst_tf.fast_config import TrainConfig

    config = TrainConfig(
        style=style, size=s["size"], batch_size=s["batch"], steps=s["steps"], checkpoint_every=100
    )
    log(f"training {s['steps']} steps of {s['batch']} crops of {s['size']} px on {style}")
    result = fast.train(config, output=workdir / "model.keras", progress=False)
    times = [row[-1] for row in result.history]
    later = (times[-1] - times[0]) / max(len(times) - 1, 1)
    out = {
        "steps": result.steps_done,
        "batch": s["batch"],
        "size": s["size"],
        "total_s": result.seconds,
        "first_step_s": times[0],
        "s_per_step": later,
        "images_per_s": s["batch"] / later if later > 0 else float("nan"),
        "loss_first_last": [result.history[0][1], result.history[-1][1]],
        "parameters": int(result.model.count_params()),
        "model_bytes": (workdir / "model.keras").stat().st_size,
    }
    log(f"training: {out['images_per_s']:.2f} images/s at {s['size']} px, {out['total_s']:.0f} s in all")
    return result, out


def stylize(model, s, workdir) -> dict:
    import numpy as np

    from nst_tf import data, fast
    from nst_tf.images import load_image, save_image

    def timed_runs(image) -> list[float]:
        """Seconds per ``fast.stylize`` call, ``runs`` times after one warm-up call."""
        fast.stylize(model, image)
        seconds = []
        for _ in range(s["runs"]):
            t = time.perf_counter()
            fast.stylize(model, image)
            seconds.append(time.perf_counter() - t)
        return seconds

    photo = data.load(fast.HELD_OUT[0], s["speed_size"])
    times = timed_runs(photo)
    sq = timed_runs(np.resize(photo, (s["speed_size"], s["speed_size"], 3)))
    folder = workdir / "folder"
    paths = [data.resolve_image(n, "content") for n in fast.HELD_OUT] + fast.training_photos()
    for i in range(s["folder_n"]):
        img = load_image(paths[i % len(paths)], s["speed_size"])
        save_image(img[:, ::-1] if i >= len(paths) else img, folder / f"{i:03d}.jpg")  # flipped: new
    report = fast.stylize_folder(model, folder, workdir / "folder_out", batch_size=4, progress=False)
    out = {
        "image_hw": list(photo.shape[:2]),
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "square_hw": [s["speed_size"]] * 2,
        "square_median_s": float(np.median(sq)),
        "runs": s["runs"],
        "folder_images": len(report.written),
        "folder_failed": len(report.failed),
        "folder_s": report.seconds,
        "folder_images_per_s": len(report.written) / report.seconds,
    }
    log(f"stylize {photo.shape[1]}x{photo.shape[0]}: {out['median_s'] * 1000:.0f} ms median; "
        f"{out['square_hw'][0]}x{out['square_hw'][0]}: {out['square_median_s'] * 1000:.0f} ms; "
        f"folder {out['folder_images_per_s']:.2f} images/s")  # fmt: skip
    return out


def held_out(model, config, s) -> dict:
    from nst_tf import data, fast, transfer_style

    size, out = s["size"], {}
    for name in fast.HELD_OUT:
        steps = max(s["lbfgs"])
        run = transfer_style(
            name,
            config.style,
            config=fast.transfer_config(config, size, pyramid=(), steps=steps),
            progress=False,
        )
        photo = data.load(name, size)
        out[name] = {
            "network": fast.evaluate(model, name, config, size),
            "photo_unchanged": fast.evaluate(photo, name, config, size),
            "lbfgs": {str(n): run.history.loss[n - 1] for n in s["lbfgs"] if n <= len(run.history.loss)},
            "lbfgs_s": {str(n): run.history.time[n - 1] for n in s["lbfgs"] if n <= len(run.history.time)},
        }
        log(f"held out {name}: network {out[name]['network']:.3f}, L-BFGS {out[name]['lbfgs']}")
    return out


def flicker(model, s, workdir) -> dict:
    import imageio.v2 as iio
    import numpy as np

    from nst_tf import data, fast

    frames, size = s["video_frames"], s["video_size"]
    big = data.load(fast.HELD_OUT[-1], size + 2 * frames)
    clip = workdir / "pan.mp4"
    rng = np.random.default_rng(0)
    with iio.get_writer(clip, format="FFMPEG", fps=12, macro_block_size=1) as w:
        for i in range(frames):
            frame = big[: size * 3 // 4 // 2 * 2, 2 * i : 2 * i + size]
            w.append_data(np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8))
    out = {"frames": frames, "size": [size, size * 3 // 4 // 2 * 2], "fps": 12, "noise_std": 3}
    for blend in (0.0, 0.3, 0.6):
        meta = fast.stylize_video(model, clip, workdir / f"pan_{blend:g}.mp4", blend=blend)
        out[f"blend_{blend:g}"] = {k: meta[k] for k in ("flicker_input", "flicker_output", "seconds", "fps")}
        log(
            f"flicker blend {blend:g}: input {meta['flicker_input']:.2f}, output {meta['flicker_output']:.2f}"
        )
    return out


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def report_md(res: dict) -> str:
    m, t, st = res["machine"], res["train"], res["stylize"]
    lines = [
        "# Fast style transfer benchmark (`python -m benchmarks.fast`)",
        "",
        f"{m['cpu']}, {m['cores']} cores, load average at start {_load(m['load_average_at_start'])}, "
        f"at the end {_load(res.get('load_average_at_end'))} (1, 5, 15 min; above ~1 other work shared the "
        f"cores and every time is longer); "
        f"TensorFlow {m['tensorflow']}; mode **{res['mode']}**; style `{res['style']}`.",
        "",
        "| what | value |",
        "|---|---|",
        f"| stylise one image {st['image_hw'][1]}x{st['image_hw'][0]} (median of {st['runs']}) | "
        f"{st['median_s'] * 1000:.0f} ms |",
        f"| stylise one image {st['square_hw'][1]}x{st['square_hw'][0]} (median of {st['runs']}) | "
        f"{st['square_median_s'] * 1000:.0f} ms |",
        f"| folder throughput at {st['square_hw'][0]} px long side (read, batch 4, write PNG + sidecar) | "
        f"{st['folder_images_per_s']:.2f} images/s ({st['folder_images']} images) |",
        f"| training at {t['size']} px crops, batch {t['batch']} (first step left out) | "
        f"{t['images_per_s']:.2f} images/s ({t['steps']} steps, {t['total_s'] / 60:.1f} min) |",
        f"| network | {t['parameters']:,} weights, {t['model_bytes'] / 1e6:.1f} MB |",
    ]
    for key, s in res["lean"].items():
        lines.append(f"| bare VGG19 forward + input gradient to block5_conv1, {key} | {s * 1000:.0f} ms |")
    r = res["ratios"]
    lines += [
        f"| stylise {st['square_hw'][0]}² / bare VGG19 step at the same size | {r['stylize_vs_lean']:.2f} |",
        f"| training seconds per image / bare VGG19 step at {t['size']}² | {r['train_image_vs_lean']:.2f} |",
        "",
        f"## Held-out photos (loss under the transfer objective at {t['size']} px)",
        "",
        "| photo | network | "
        + " | ".join(f"L-BFGS {n}" for n in res["settings"]["lbfgs"])
        + " | photo itself |",
        "|---" * (3 + len(res["settings"]["lbfgs"])) + "|",
    ]
    for name, h in res["held_out"].items():
        cells = " | ".join(f"{h['lbfgs'].get(str(n), float('nan')):.3f}" for n in res["settings"]["lbfgs"])
        lines.append(f"| {name} | {h['network']:.3f} | {cells} | {h['photo_unchanged']:.3f} |")
    f = res["flicker"]
    lines += [
        "",
        f"## Flicker ({f['frames']} generated frames, {f['size'][0]}x{f['size'][1]}, pan + noise std 3)",
        "",
        "| blend | input | output |",
        "|---|---|---|",
    ]
    for blend in ("0", "0.3", "0.6"):
        b = f[f"blend_{blend}"]
        lines.append(f"| {blend} | {b['flicker_input']:.2f} | {b['flicker_output']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps (checks the machinery)")
    parser.add_argument(
        "--style", default="hubble_deep_field", help="a bundled style (default hubble_deep_field)"
    )
    parser.add_argument("--steps", type=int, help="training steps (default 1000; quick 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--keep-model", action="store_true", help="also copy the trained model to --out")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine_info
    from nst_tf.files import write_text

    mode = "quick" if args.quick else "full"
    s = dict(SETTINGS[mode])
    if args.steps:
        s["steps"] = args.steps
    res = {"mode": mode, "style": args.style, "settings": s, "machine": machine_info()}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nst_fast_bench-") as tmp:
        work = Path(tmp)
        res["lean"] = lean([(s["size"], s["size"]), (s["speed_size"], s["speed_size"])])
        result, res["train"] = train(args.style, s, work)
        res["stylize"] = stylize(result.model, s, work)
        res["held_out"] = held_out(result.model, result.config, s)
        res["flicker"] = flicker(result.model, s, work)
        if args.keep_model:
            import shutil

            args.out.mkdir(parents=True, exist_ok=True)
            for suffix in (".keras", ".json"):
                shutil.copy(work / f"model{suffix}", args.out / f"fast_{args.style}{suffix}")
    lean_train = res["lean"][f"{s['size']}x{s['size']}"]
    lean_speed = res["lean"][f"{s['speed_size']}x{s['speed_size']}"]
    res["ratios"] = {
        "stylize_vs_lean": res["stylize"]["square_median_s"] / lean_speed,
        "train_image_vs_lean": 1 / res["train"]["images_per_s"] / lean_train,
    }
    res["total_s"] = time.perf_counter() - t0
    res["load_average_at_end"] = list(os.getloadavg())
    write_text(args.out / "fast.json", json.dumps(res, indent=2, default=float) + "\n")
    write_text(args.out / "fast.md", report_md(res))
    log(f"wrote {args.out / 'fast.json'} and fast.md in {res['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
