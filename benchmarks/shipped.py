"""The networks that ship trained (issue #23.2-3): ``python -m benchmarks.shipped train|evaluate``.

``train`` trains (or, after an interruption, resumes) one fast network per style of ``--styles``
with :data:`RECIPE` through :func:`nst_tf.fast.train` (the trainer users run; checkpoints every 50
steps into ``--work``), then installs the finished model with its sidecar and data manifest into
``data/models/`` (:data:`nst_tf.fast.SHIPPED_DIR`), where ``stylize --style NAME`` finds it.

``evaluate`` puts every shipped network beside the default transfer (``transfer_style``, 512 px)
on photos kept out of training (``fast.HELD_OUT`` and, when ``NST_EXTRA_IMAGES`` has them, the
calibration's photos): SSIM and edge correlation with the photo, style distance to the painting
(:mod:`nst_tf.metrics`, the calibration's measures), the loss under the transfer objective beside
L-BFGS after 10/30/100 steps at 256 px, stylise ms; the bar of issue #23.3 (SSIM and edge
correlation at least 0.9x the transfer's, style distance at most 1.5x) per photo. Writes
``benchmarks/results/shipped.{json,md}`` and ``shipped_<style>_sheet.jpg`` (results only: photo, transfer,
network), with the commit, the command line and the CPU.

The three paintings (The Starry Night, The Great Wave, Composition VII) are public domain; training
here reads them from ``NST_EXTRA_IMAGES`` (``../shared/images``), never from the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("starry_night", "great_wave", "kandinsky_composition_vii", "hubble_deep_field")
#: How every shipped network is trained (TrainConfig fields; ``style`` is added per network).
RECIPE = {
    "size": 256,
    "batch_size": 4,
    "steps": 1000,
    "style_weight": 3.0,  # the transfer's calibrated default (issue #16): same objective
    # the painting at 2x the crop (512 px long side): strokes at the scale the default 512 px
    # transfer paints them, since networks are judged (and used) on photos of about 512 px
    "style_scale": 2.0,
    "data": ("offline", "bundled"),
    "checkpoint_every": 50,
    "seed": 0,
}
#: Held-out photos measured when they resolve (bundled first; the rest from NST_EXTRA_IMAGES).
PHOTOS = ("coffee", "rocket", "tubingen", "taj_mahal")
EVAL_SIZE = 512
LOSS_SIZE = 256
LBFGS_STEPS = (10, 30, 100)


def log(msg):
    print(f"[shipped {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def recipe(style: str, **changes):
    from nst_tf.fast_config import TrainConfig

    return TrainConfig(style=style, **{**RECIPE, **changes}).validate()


def train(styles, work: Path, steps: int | None, install: bool) -> None:
    from benchmarks.common import train_and_install
    from nst_tf import fast

    work.mkdir(parents=True, exist_ok=True)
    for style in styles:
        out = work / f"{style}.keras"
        config = recipe(style, **({"steps": steps} if steps else {}))
        if not train_and_install(style, fast.train, config, out, fast.SHIPPED_DIR if install else None, log):
            return


def _photos() -> list[tuple[str, Path]]:
    from nst_tf import data

    out = []
    for name in PHOTOS:
        try:
            out.append((name, Path(data.resolve_image(name, "content"))))
        except Exception:  # not bundled and not in NST_EXTRA_IMAGES: measured where present
            continue
    return out


def evaluate(styles, out_dir: Path, quick: bool) -> dict:
    import numpy as np

    from benchmarks.calibrate import contact_sheet, thumbnail
    from benchmarks.common import machine_info
    from nst_tf import fast, transfer_style

    photos = _photos()[: 1 if quick else None]
    eval_size, loss_size = (64, 48) if quick else (EVAL_SIZE, LOSS_SIZE)
    lbfgs = (2, 3) if quick else LBFGS_STEPS
    rows, cells = [], {}
    for style in styles:
        path = fast.shipped_model(style)
        model = fast.load_model(path)
        side = json.loads(path.with_suffix(".json").read_text())
        config = fast.TrainConfig.from_dict(side["config"])
        for name, photo_path in photos:
            cmp = fast.compare_with_transfer(model, config, photo_path, eval_size)
            net, transferred = cmp["images"]["network"], cmp["images"]["transfer"]
            row = {
                "style": style, "photo": name, "hw": list(net.shape[:2]),
                "network_s": cmp["seconds"]["network"], "transfer_s": cmp["seconds"]["transfer"],
                "network": cmp["network"], "transfer": cmp["transfer"], "ratio": cmp["ratio"],
                "meets_bar": cmp["meets_bar"],
            }  # fmt: skip
            # the loss under the network's own objective, beside L-BFGS on that objective
            opt = transfer_style(
                photo_path, style, progress=False,
                config=fast.transfer_config(config, loss_size, pyramid=(), steps=max(lbfgs)),
            )  # fmt: skip
            row["loss"] = {
                "network": fast.evaluate(model, photo_path, config, loss_size),
                **{f"lbfgs_{n}": opt.history.loss[n - 1] for n in lbfgs if n <= len(opt.history.loss)},
            }
            rows.append(row)
            for key, image in (("transfer", transferred), ("network", net)):
                kept = row["ratio"]["edge_correlation"] >= fast.BAR["edge_correlation"] or key == "transfer"
                cells[(f"{name} x {style}", key)] = (
                    thumbnail(image),
                    {**row[key], "structure_kept": kept},
                )
            log(
                f"{style} on {name}: network SSIM {row['network']['ssim']:.3f} edge "
                f"{row['network']['edge_correlation']:.3f} style {row['network']['style_distance']:.3f} | "
                f"transfer {row['transfer']['ssim']:.3f} / {row['transfer']['edge_correlation']:.3f} / "
                f"{row['transfer']['style_distance']:.3f} | bar {'met' if row['meets_bar'] else 'MISSED'}; "
                f"{row['network_s'] * 1000:.0f} ms vs {row['transfer_s']:.1f} s"
            )
    # styles measured in an earlier sitting keep their rows (each style says where it was measured)
    earlier = {}
    if not quick and (out_dir / "shipped.json").is_file():
        earlier = json.loads((out_dir / "shipped.json").read_text())
    sitting = {
        "machine": machine_info(),
        "command": " ".join(["python -m benchmarks.shipped", *sys.argv[1:]]),
    }
    sittings = {k: v for k, v in earlier.get("sittings", {}).items() if k not in styles}
    if earlier and "sittings" not in earlier:  # a file from before sittings were kept per style
        sittings |= {r["style"]: {k: earlier[k] for k in ("machine", "command")} for r in earlier["rows"]}
    sittings |= {s: sitting for s in styles}
    rows = [r for r in earlier.get("rows", []) if r["style"] not in styles] + rows
    models = {k: v for k, v in earlier.get("models", {}).items() if k not in styles}
    res = {
        **sitting,
        "sittings": {k: sittings[k] for k in sorted(sittings)},
        "bar": fast.BAR,
        "eval_size": eval_size,
        "loss_size": loss_size,
        "models": models
        | {s: json.loads(fast.shipped_model(s).with_suffix(".json").read_text()) for s in styles},
        "rows": rows,
        "summary": {
            "met": sum(r["meets_bar"] for r in rows),
            "of": len(rows),
            "median_ratio": {k: float(np.median([r["ratio"][k] for r in rows])) for k in fast.BAR}
            if rows
            else {},
        },
    }
    for s in res["models"].values():
        s.pop("history", None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "shipped.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "shipped.md").write_text(report_md(res))
    for style in styles:  # one contact sheet per style: shipped_<style>_sheet.jpg
        pairs = list(dict.fromkeys(k[0] for k in cells if k[0].endswith(f" x {style}")))
        contact_sheet(cells, pairs, ["transfer", "network"], out_dir / f"shipped_{style}_sheet.jpg")
    log(f"wrote {out_dir / 'shipped.md'}: bar met on {res['summary']['met']} of {res['summary']['of']}")
    return res


def report_md(res: dict) -> str:
    lines = [
        "# Shipped fast networks (`python -m benchmarks.shipped evaluate`)",
        "",
        *(
            f"- {style}: {sit['machine'].get('cpu')}, {sit['machine'].get('cores')} cores; TensorFlow "
            f"{sit['machine'].get('tensorflow')}; commit `{sit['machine'].get('commit')}`; command "
            f"`{sit['command']}`; load average at start "
            f"{'/'.join(f'{v:.1f}' for v in sit['machine'].get('load_average_at_start') or [])}"
            for style, sit in res.get("sittings", {style: res for style in res["models"]}).items()
        ),
        "",
        "(A load average above ~1 means other work shared the cores: the seconds below are then longer "
        "than on a quiet machine; quiet timings: precision.md.)",
        "",
        f"Held-out photos at {res['eval_size']} px long side; the network's output beside the default "
        "transfer's (`transfer_style`, 20 + 10 L-BFGS steps). Bar of issue #23.3: SSIM and edge "
        "correlation with the photo at least 0.9x the transfer's, style distance at most 1.5x. "
        "Contact sheets: `shipped_<style>_sheet.jpg`.",
        "",
        "| style | photo | SSIM net / transfer | edge corr net / transfer | style dist net / transfer "
        "| bar | stylise ms | transfer s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        n, t = r["network"], r["transfer"]
        lines.append(
            f"| {r['style']} | {r['photo']} | {n['ssim']:.3f} / {t['ssim']:.3f} | "
            f"{n['edge_correlation']:.3f} / {t['edge_correlation']:.3f} | "
            f"{n['style_distance']:.3f} / {t['style_distance']:.3f} | {'met' if r['meets_bar'] else 'missed'} | "
            f"{r['network_s'] * 1000:.0f} | {r['transfer_s']:.1f} |"
        )
    s = res["summary"]
    lines += ["", f"Bar met on {s['met']} of {s['of']}; median ratios network / transfer: "
              + ", ".join(f"{k} {v:.2f}" for k, v in s.get("median_ratio", {}).items()), ""]  # fmt: skip
    lines += [
        f"## Loss under each network's own objective at {res['loss_size']} px",
        "",
        "| style | photo | network | " + " | ".join(f"L-BFGS {n}" for n in LBFGS_STEPS) + " |",
        "|---|---|---|" + "---|" * len(LBFGS_STEPS),
    ]
    for r in res["rows"]:
        loss = r["loss"]
        lines.append(
            f"| {r['style']} | {r['photo']} | {loss['network']:.3f} | "
            + " | ".join(f"{loss.get(f'lbfgs_{n}', float('nan')):.3f}" for n in LBFGS_STEPS)
            + " |"
        )
    lines += ["", "## How each was trained", "", "| style | steps | crops | images/s | minutes | photos |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for style, side in res["models"].items():
        c, t = side["config"], side["timings"]
        lines.append(
            f"| {style} | {side['steps_done']} | {c['batch_size']} x {c['size']} px | {t['images_per_s']:.2f} "
            f"| {t['total_s'] / 60:.1f} | {len(side['data'])} ({', '.join(side.get('data_sources', []))}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["train", "evaluate"])
    parser.add_argument("--styles", nargs="+", default=list(STYLES))
    parser.add_argument("--steps", type=int, help=f"training steps (default {RECIPE['steps']})")
    parser.add_argument("--work", type=Path, default=ROOT / "data/output/shipped_work")
    parser.add_argument("--no-install", action="store_true", help="train only; leave data/models alone")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="evaluate one photo at 64 px (machinery)")
    args = parser.parse_args(argv)
    if args.action == "train":
        train(args.styles, args.work, args.steps, not args.no_install)
    else:
        evaluate(args.styles, args.out, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
