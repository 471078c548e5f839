"""The GAN ablations of notebook 07 (issue #27): ``python -m benchmarks.cyclegan run``.

Trains (or resumes, from the checkpoints in ``--work``) one CycleGAN per row of :data:`CYCLEGAN`
and one DCGAN per row of :data:`DCGAN`, all on this machine's CPU through :mod:`nst_tf.gan`, then
scores them:

* CycleGAN, on the held-out photos (``coffee``, ``rocket``; never seen in either domain) translated
  whole at the training scale: SSIM and edge correlation of G(x) with x (does it keep the photo?),
  the reconstruction error |F(G(x)) - x| in grey levels, the distance of G(x) to the ground truth
  (the transfer of notebook 03 of the same photo with the same painting: domain Y was made by it,
  from *other* photos), and the style distance to the painting. Two reference rows bracket them:
  the photo unchanged, and the ground truth itself.
* DCGAN, 64 samples against 64 real crops of domain Y: style distance, diversity (1 = as varied as
  real crops, 0 = one picture) and the distance to the nearest training picture.

Domain Y is painted with The Starry Night when ``NST_EXTRA_IMAGES`` has it (``../shared/images``),
else with the bundled ``hubble_deep_field``. Writes ``benchmarks/results/cyclegan.{json,md}`` and
figures in ``benchmarks/results/cyclegan/`` (sample grids at several steps, loss curves): results
only, with the commit, the command line and the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]
#: The CycleGAN every row changes one thing of (CycleGANConfig fields; notebook 07's quality run).
BASE = {"size": 32, "photo_side": (96, 160), "batch_size": 8, "steps": 2000, "width": 16, "res_blocks": 3,
        "discriminator": "patch", "checkpoint_every": 100, "validate_every": 500, "seed": 0}  # fmt: skip
CYCLEGAN = {
    "baseline (cycle, Patch D)": {},
    "no cycle loss": {"cycle_weight": 0.0},
    "DC discriminator": {"discriminator": "dc"},
    "DiffAugment": {"diff_augment": ("color", "translation", "cutout")},
}
DCGAN_BASE = {"size": 32, "photo_side": (32, 64), "batch_size": 16, "steps": 1500, "checkpoint_every": 100,
              "validate_every": 500, "seed": 0}  # fmt: skip
DCGAN = {
    "basic": {"augmentation": "basic"},
    "deluxe": {"augmentation": "deluxe"},
    "deluxe + DiffAugment": {"augmentation": "deluxe", "diff_augment": ("color", "translation", "cutout")},
}


#: ``--quick``: tiny networks, two steps, a small painted domain: proves the script runs (tests).
QUICK = {"width": 4, "res_blocks": 1, "d_width": 8, "photo_side": (48, 64), "paint_side": 64, "steps": 2,
         "batch_size": 2, "validate_every": 2, "checkpoint_every": 1}  # fmt: skip
#: The rows ``--quick`` trains (one of each kind of change is enough to prove the script).
QUICK_ROWS = ("baseline (cycle, Patch D)", "no cycle loss", "basic")
DCGAN_QUICK = {"width": 4, "d_width": 4, "z_dim": 8, "paint_side": 64, "steps": 2, "batch_size": 2,
               "validate_every": 2, "checkpoint_every": 1}  # fmt: skip


def log(msg):
    print(f"[cyclegan {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def style_name() -> str:
    from nst_tf import data as nst_data
    from nst_tf.errors import NSTError

    try:
        nst_data.resolve_image("starry_night", "style", allow_download=False)
        return "starry_night"
    except (NSTError, OSError):
        return "hubble_deep_field"


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_").replace("__", "_")


def _train(fn, config, out: Path):
    """Train ``config`` into ``out``; resume from its checkpoint when one is there; skip when done."""
    from nst_tf.training import checkpoint_path

    side = out.with_suffix(".json")
    if side.is_file() and json.loads(side.read_text()).get("steps_done") == config.steps:
        log(f"{out.name}: already trained")
        return None
    resume = checkpoint_path(out).is_file()
    log(f"{out.name}: {'resuming' if resume else 'training'} to {config.steps} steps")
    result = fn(config, output=out, resume=resume, progress=False)
    log(f"{out.name}: {result.steps_done} steps, {result.seconds:.0f} s ({result.stopped})")
    return result


def run(
    work: Path, out: Path, steps: int | None = None, dcgan_steps: int | None = None, only: str | None = None,
    quick: bool = False,
) -> dict:  # fmt: skip
    import keras
    import numpy as np

    from benchmarks.common import machine_info
    from nst_tf import gan, metrics
    from nst_tf.images import load_image, resize_image

    work.mkdir(parents=True, exist_ok=True)
    style = "gravel" if quick else style_name()
    doc = {"machine": machine_info(), "style": style, "cyclegan": {}, "dcgan": {}, "references": {}}
    base = {**BASE, "style": style, **(QUICK if quick else {}), **({"steps": steps} if steps else {})}
    doms = None
    for name, change in CYCLEGAN.items():
        if (only and only not in slug(name)) or (quick and name not in QUICK_ROWS):
            continue
        config = gan.CycleGANConfig(**{**base, **change})
        path = work / f"cyclegan_{slug(name)}.keras"
        _train(gan.train_cyclegan, config, path)
        model = keras.saving.load_model(path, compile=False)
        doms = doms or gan.domains(config, progress=False)
        side = json.loads(path.with_suffix(".json").read_text())
        score = gan.evaluate_cyclegan(model, doms, config)
        doc["cyclegan"][name] = {
            "config": side["config"], "score": score, "seconds": side["timings"]["total_s"],
            "s_per_step": round(side["timings"]["total_s"] / max(side["steps_done"], 1), 4),
            "history": side["history"], "grids": side["validation"]["grids"], "path": path.name,
            "precision": side["precision"],
        }  # fmt: skip
        log(f"{name}: {json.dumps(score['mean'])}")
    if doms is not None:  # the brackets: the photo unchanged, and the ground truth itself
        painting = load_image(gan.nst_data.resolve_image(style, "style"))
        rows = {"photo (unchanged)": [], "transfer (03), the ground truth": []}
        for photo, truth in zip(doms["held_out"], doms["truth"]):
            x = gan.eval_photo(photo.path, config)
            t = resize_image(load_image(truth.path), size=x.shape[:2])
            for label, img in (("photo (unchanged)", x), ("transfer (03), the ground truth", t)):
                rows[label].append({
                    "ssim": metrics.ssim(img, x), "edge": metrics.edge_correlation(img, x),
                    "to_truth": float(np.mean(np.abs(img - t))), "truth_ssim": metrics.ssim(img, t),
                    "style": metrics.style_distance(img, painting),
                })  # fmt: skip
        doc["references"] = {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in rows.items()}
    dbase = {**DCGAN_BASE, "style": style, **(DCGAN_QUICK if quick else {}),
             **({"steps": dcgan_steps} if dcgan_steps else {})}  # fmt: skip
    for name, change in DCGAN.items():
        if (only and only not in slug(name)) or (quick and name not in QUICK_ROWS):
            continue
        config = gan.DCGANConfig(**{**dbase, **change})
        path = work / f"dcgan_{slug(name)}.keras"
        _train(gan.train_dcgan, config, path)
        model = keras.saving.load_model(path, compile=False)
        side = json.loads(path.with_suffix(".json").read_text())
        y = gan.domains(config, progress=False)["y"]
        score = gan.evaluate_dcgan(model, {"y": y}, config, n=8 if quick else 64)
        doc["dcgan"][name] = {
            "config": side["config"], "score": score, "seconds": side["timings"]["total_s"],
            "s_per_step": round(side["timings"]["total_s"] / max(side["steps_done"], 1), 4),
            "history": side["history"], "grids": side["validation"]["grids"], "path": path.name,
        }  # fmt: skip
        log(f"dcgan {name}: {json.dumps(score)}")
    if not only:
        write(doc, work, out)
    return doc


def _figures(doc: dict, work: Path, figs: Path) -> dict:
    """Per CycleGAN row, its sample grids stacked by step; per DCGAN row likewise; the loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from nst_tf.images import load_image, save_image

    figs.mkdir(parents=True, exist_ok=True)
    made = {}
    for kind in ("cyclegan", "dcgan"):
        for name, row in doc[kind].items():
            val = work / Path(row["path"]).with_suffix(".val").name
            grids = [load_image(val / g) for g in row["grids"]]
            if grids:
                w = max(g.shape[1] for g in grids)
                sep = np.full((4, w, 3), 255.0, np.float32)
                parts = []
                for g in grids:
                    parts += [np.pad(g, ((0, 0), (0, w - g.shape[1]), (0, 0)), constant_values=255), sep]
                dest = figs / f"{kind}_{slug(name)}_steps.jpg"
                save_image(np.concatenate(parts[:-1], 0), dest, quality=90)
                made.setdefault(kind, {})[name] = dest.name
    for kind, terms in (
        ("cyclegan", ("d_x", "d_y", "gan_g", "gan_f", "cycle")),
        ("dcgan", ("d_real", "d_fake", "g")),
    ):
        rows = doc[kind]
        if not rows:
            continue
        fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3), sharey=True, squeeze=False)
        names = ("loss", *(("d_x", "d_y", "gan_g", "gan_f", "cycle", "identity") if kind == "cyclegan"
                           else ("d_real", "d_fake", "g")))  # fmt: skip
        for ax, (name, row) in zip(axes[0], rows.items()):
            hist = np.asarray(row["history"], np.float64)
            k = max(1, len(hist) // 50)  # a running mean over 1/50 of the run: GAN losses are noisy
            for term in terms:
                col = 1 + names.index(term)
                smooth = np.convolve(hist[:, col], np.ones(k) / k, mode="valid")
                ax.plot(hist[k - 1 :, 0], smooth, label=term, lw=1)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("step")
            ax.set_yscale("log")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        dest = figs / f"{kind}_losses.png"
        fig.savefig(dest, dpi=110)
        plt.close(fig)
        made.setdefault("curves", {})[kind] = dest.name
    return made


def write(doc: dict, work: Path, out: Path) -> None:
    figs = out / "cyclegan"
    doc["figures"] = _figures(doc, work, figs)
    slim = json.loads(json.dumps(doc))
    for kind in ("cyclegan", "dcgan"):
        for row in slim[kind].values():
            row["history"] = row["history"][:: max(1, len(row["history"]) // 100)]  # 1 row in 100 kept
    (out / "cyclegan.json").write_text(json.dumps(slim, indent=1) + "\n")
    m = doc["machine"]
    lines = [
        "# GAN ablations (notebook 07, issue #27)",
        "",
        f"Made by `{m['command']}` at commit {m['commit']} on {m['cpu']} ({m['cores']} cores; load "
        f"average at start {m['load_average_at_start']}). Domain X: photos of the training pool; domain Y: "
        f"*other* photos of the pool painted by the transfer of notebook 03 with `{doc['style']}`; scored on "
        "the held-out photos `coffee` and `rocket` (in neither domain), translated whole at the training "
        "scale. `to truth`: mean absolute difference (grey levels) to the transfer of the same photo, "
        "the ground truth no unpaired method sees; `recon`: |F(G(x)) - x| in grey levels; `style`: "
        "style distance to the painting (lower is closer). A row whose model is already in `--work` "
        "(`data/output/cyclegan_work/`: model, sidecar, checkpoint) is scored, not retrained; its minutes "
        "and s/step are those of its own training (wall time: other work on the machine slows a row down).",
        "",
        "## CycleGAN: one change at a time",
        "",
        "| row | SSIM(G(x), x) | edge corr. | recon | to truth | SSIM to truth | style | minutes | s/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ref in doc["references"].items():
        lines.append(f"| *{name}* | {ref['ssim']:.2f} | {ref['edge']:.2f} | - | {ref['to_truth']:.1f} | "
                     f"{ref['truth_ssim']:.2f} | {ref['style']:.2f} | - | - |")  # fmt: skip
    for name, row in doc["cyclegan"].items():
        s = row["score"]["mean"]
        lines.append(
            f"| {name} | {s['ssim']:.2f} | {s['edge']:.2f} | {s['reconstruction']:.1f} | {s['to_truth']:.1f} | "
            f"{s['truth_ssim']:.2f} | {s['style']:.2f} | {row['seconds'] / 60:.1f} | {row['s_per_step']:.3f} |"
        )
    first = next(iter(doc["cyclegan"].values()), {})
    cfg, used = first.get("config", {}), json.dumps(first.get("precision", {}))
    lines += [
        "",
        f"Every row: {cfg.get('steps')} steps of batch {cfg.get('batch_size')}, crops of {cfg.get('size')} px "
        f"from pictures scaled to a short side of {cfg.get('photo_side')} px, generators of width "
        f"{cfg.get('width')} with {cfg.get('res_blocks')} residual blocks, LSGAN losses, cycle weight "
        f"{cfg.get('cycle_weight')} (identity {cfg.get('identity_weight')} of it), history pool "
        f"{cfg.get('pool_size')}, Adam {cfg.get('learning_rate')} (beta_1 0.5), precision "
        f"{cfg.get('precision')} ({used}).",
        "",
        "## DCGAN: basic vs deluxe augmentation, DiffAugment",
        "",
        "| row | style distance to real crops | diversity (real = 1) | to nearest training picture | minutes | s/step |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in doc["dcgan"].items():
        s = row["score"]
        lines.append(f"| {name} | {s['style']:.2f} | {s['diversity']:.2f} | {s['memorised']:.1f} | "
                     f"{row['seconds'] / 60:.1f} | {row['s_per_step']:.3f} |")  # fmt: skip
    lines += ["", "## Figures", ""]
    for kind, made in doc["figures"].items():
        if kind == "curves":
            for k, f in made.items():
                lines.append(f"- {k} losses (running mean): ![{k} losses](cyclegan/{f})")
        else:
            for name, f in made.items():
                lines.append(f"- {kind} **{name}**, samples at steps {', '.join(g[5:11].lstrip('0') for g in doc[kind][name]['grids'])} (top to bottom): ![{name}](cyclegan/{f})")  # fmt: skip
    (out / "cyclegan.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out / 'cyclegan.md'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run"])
    parser.add_argument("--steps", type=int, help=f"CycleGAN steps (default {BASE['steps']})")
    parser.add_argument("--dcgan-steps", type=int, help=f"DCGAN steps (default {DCGAN_BASE['steps']})")
    parser.add_argument("--work", type=Path, default=ROOT / "data/output/cyclegan_work")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument(
        "--only", help="train and score only the rows whose name contains this (nothing written)"
    )
    args = parser.parse_args(argv)
    run(args.work, args.out, args.steps, args.dcgan_steps, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
