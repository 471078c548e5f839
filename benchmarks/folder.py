"""Folder mode benchmark (issue #15.3): ``python -m benchmarks.folder [--quick]``.

What does ``python -m nst_tf transfer --content FOLDER`` save per image over running the
command once per image? In one sitting, on five content photos and one style at 256 px with
the default steps (20 L-BFGS steps at 128 px, 10 at 256 px):

1. ``lean``: a bare compiled VGG19 forward + input gradient to block5_conv1 at the first photo's
   256 px size (``benchmarks.common.lean_step_fn``), before and after the runs: the yardstick;
2. ``folder``: one ``python -m nst_tf transfer --content FOLDER`` process for the five photos
   (VGG19, its compiled feature function and the style targets built once, ``transfer.Shared``);
3. ``separate``: five ``python -m nst_tf transfer --content PHOTO`` processes, one per photo.

Both are subprocesses, run exactly as a user runs them, so Python start-up, the TensorFlow import
and reading the weights count for both: the saving per image is what a user saves. The rounds
alternate the order (folder first, then separate first) so that a drift of the machine's speed
does not favour one. The sidecars' ``timings.total_s`` (time inside ``transfer.run``) show how
much of the saving is inside the run (building and tracing VGG19, the style targets) and how much
is process start-up. The folder results are checked pixel for pixel against the separate ones.

Photos: ``tubingen`` and ``taj_mahal`` (found through ``NST_EXTRA_IMAGES``, or
``/work/shared/images`` on the project machines) and the bundled ``chelsea``, ``astronaut``,
``coffee``, ``rocket`` and training photos, the first five that resolve; style ``starry_night``,
else the bundled ``hubble_deep_field``. Writes ``folder.json`` and ``folder.md`` to
``benchmarks/results/`` (``--out`` to change). ``--quick``: two photos at 64 px, 2 steps, one
round, to check the machinery. Run the full one on an idle machine (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "full": {"size": 256, "images": 5, "rounds": 2, "flags": []},
    "quick": {"size": 64, "images": 2, "rounds": 1, "flags": ["--steps", "2", "--pyramid", "none"]},
}
#: Content photos in order of preference (names resolve through nst_tf.data, never downloading).
PHOTOS = ("tubingen", "taj_mahal", "chelsea", "astronaut", "coffee", "rocket")


def log(msg):
    print(f"[folder {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def photos(n: int) -> list[Path]:
    """The first ``n`` content photos that resolve here (shared paintings folder, bundled, training)."""
    from benchmarks.common import SHARED_IMAGES
    from nst_tf.data import BUNDLED_DIR, images_below, resolve_image
    from nst_tf.errors import ImageError

    if not os.environ.get("NST_EXTRA_IMAGES") and os.path.isdir(SHARED_IMAGES):
        os.environ["NST_EXTRA_IMAGES"] = SHARED_IMAGES
    found = []
    for name in PHOTOS:
        try:
            found.append(Path(resolve_image(name, "content", allow_download=False)))
        except ImageError:
            continue
    return (found + images_below(BUNDLED_DIR / "train"))[:n]


def style() -> Path:
    from benchmarks.common import resolve_pair

    return Path(resolve_pair(None, None)[1])  # starry_night, else the bundled hubble_deep_field


def lean(hw) -> float:
    """Median seconds of a bare VGG19 forward + input gradient to block5_conv1 at ``hw``."""
    import numpy as np

    from benchmarks.common import keras_vgg19, lean_step_fn, time_calls
    from nst_tf.models import get_weights

    vgg = keras_vgg19(get_weights(None)[0])
    x = np.random.default_rng(0).normal(0, 50, (1, *hw, 3)).astype("float32")
    return time_calls(lean_step_fn(vgg, x), 5, warmup=2)["s_median"]


def cli(args: list[str], out_root: Path) -> float:
    """Wall seconds of one ``python -m nst_tf transfer ...`` process (it must succeed)."""
    env = {**os.environ, "NST_OUTPUT_DIR": str(out_root), "NST_OFFLINE": "1", "NST_PROGRESS": "0"}
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf", "transfer", *args, "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"nst_tf transfer {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def one_round(folder: Path, paint: Path, s: dict, work: Path, folder_first: bool) -> dict:
    """One folder run and one run per photo (in the given order); wall times and sidecar timings."""
    flags = ["--style", str(paint), "--size", str(s["size"]), *s["flags"]]
    files = sorted(folder.iterdir())
    out = {}

    def together():
        dest = work / "folder"
        out["folder_s"] = cli(["--content", str(folder), "--output", str(dest), *flags], work)
        out["folder_images"] = [str(dest / folder.name / f"{p.stem}.png") for p in files]

    def apart():
        dest = work / "separate"
        out["separate_s"] = [
            cli(["--content", str(p), "--output", str(dest / f"{p.stem}.png"), *flags], work) for p in files
        ]
        out["separate_images"] = [str(dest / f"{p.stem}.png") for p in files]

    for step in (together, apart) if folder_first else (apart, together):
        step()
    for key in ("folder", "separate"):  # time inside transfer.run, from each result's sidecar
        paths = [Path(p).with_suffix(".json") for p in out[f"{key}_images"]]
        out[f"{key}_run_s"] = [json.loads(p.read_text())["timings"]["total_s"] for p in paths]
    return out


def compare(rounds: list[dict]) -> int:
    """Largest pixel difference (grey levels) between a folder result and its separate run."""
    import numpy as np

    from nst_tf.images import load_image

    worst = 0
    for r in rounds:
        for a, b in zip(r["folder_images"], r["separate_images"]):
            worst = max(worst, int(np.abs(load_image(a) - load_image(b)).max()))
    return worst


def summarise(res: dict) -> dict:
    import numpy as np

    n = res["settings"]["images"]
    rounds = res["rounds"]
    folder = float(np.mean([r["folder_s"] for r in rounds])) / n
    separate = float(np.mean([np.mean(r["separate_s"]) for r in rounds]))
    run_folder_later = float(np.mean([np.mean(r["folder_run_s"][1:] or r["folder_run_s"]) for r in rounds]))
    run_separate = float(np.mean([np.mean(r["separate_run_s"]) for r in rounds]))
    lean_s = float(np.mean(res["lean_s"]))
    return {
        "per_image_folder_s": folder,
        "per_image_separate_s": separate,
        "saving_per_image_s": separate - folder,
        "saving_fraction": (separate - folder) / separate,
        "run_s_folder_first_image": float(np.mean([r["folder_run_s"][0] for r in rounds])),
        "run_s_folder_later_images": run_folder_later,
        "run_s_separate": run_separate,
        "saving_inside_run_s": run_separate - run_folder_later,
        "saving_per_image_in_lean_steps": (separate - folder) / lean_s,
        "lean_step_s": lean_s,
    }


def report_md(res: dict) -> str:
    m, s, r = res["machine"], res["settings"], res["summary"]
    load = "/".join(f"{v:.1f}" for v in m["load_average_at_start"] or [])
    end = "/".join(f"{v:.1f}" for v in res["load_average_at_end"])
    n, hw = s["images"], res["image_hw"]
    return "\n".join([
        "# Folder mode benchmark (`python -m benchmarks.folder`)",
        "",
        f"{m['cpu']}, {m['cores']} cores, load average at start {load}, at the end {end} (1, 5, 15 min; "
        "above ~1 other work shared the cores and every time is longer); "
        f"TensorFlow {m['tensorflow']}; mode **{res['mode']}**; {n} photos "
        f"({', '.join(Path(p).stem for p in res['photos'])}), style `{Path(res['style']).stem}`, "
        f"{s['size']} px, {' '.join(s['flags']) or 'default steps'}; {s['rounds']} round(s), order alternated.",
        "",
        "| | per image | all images |",
        "|---|---|---|",
        f"| {n} separate `transfer --content PHOTO` processes | {r['per_image_separate_s']:.2f} s | "
        f"{r['per_image_separate_s'] * n:.1f} s |",
        f"| one `transfer --content FOLDER` process | {r['per_image_folder_s']:.2f} s | "
        f"{r['per_image_folder_s'] * n:.1f} s |",
        f"| **saving** | **{r['saving_per_image_s']:.2f} s ({100 * r['saving_fraction']:.0f} %)** | "
        f"{r['saving_per_image_s'] * n:.1f} s |",
        "",
        f"Bare VGG19 step (forward + input gradient to block5_conv1) at {hw[1]}x{hw[0]}, measured before and "
        f"after the runs: {r['lean_step_s'] * 1000:.0f} ms; the saving per image is "
        f"{r['saving_per_image_in_lean_steps']:.0f} such steps.",
        "",
        f"Inside `transfer.run` (the sidecars' `total_s`): {r['run_s_separate']:.2f} s per image in separate "
        f"processes; in the folder run {r['run_s_folder_first_image']:.2f} s for the first image (it builds "
        f"and traces VGG19) and {r['run_s_folder_later_images']:.2f} s for each later one, so "
        f"{r['saving_inside_run_s']:.2f} s of the saving is inside the run (network, tracing, style targets) "
        "and the rest is process start-up (Python, TensorFlow import, reading the weights).",
        "",
        f"Folder results equal the separate runs' pixel for pixel: largest difference "
        f"{res['max_pixel_difference']} grey levels.",
        "",
    ])  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="two photos at 64 px, 2 steps (checks the machinery)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine_info
    from nst_tf.files import write_text
    from nst_tf.images import load_image, scaled_size

    mode = "quick" if args.quick else "full"
    s = SETTINGS[mode]
    chosen, paint = photos(s["images"]), style()
    hw = scaled_size(load_image(chosen[0]).shape, s["size"])
    res = {"mode": mode, "settings": s, "machine": machine_info(), "photos": [str(p) for p in chosen]}
    res.update(style=str(paint), image_hw=list(hw), lean_s=[lean(hw)], rounds=[])
    log(f"{len(chosen)} photos, style {paint.name}, {s['size']} px; bare VGG19 step {res['lean_s'][0]:.3f} s")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nst_folder_bench-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, p in enumerate(chosen):  # numbered: the folder's order is the list's
            shutil.copy(p, folder / f"{i}_{p.name}")
        for i in range(s["rounds"]):
            r = one_round(folder, paint, s, Path(tmp) / f"round{i}", folder_first=i % 2 == 0)
            res["rounds"].append(r)
            log(f"round {i + 1}: folder {r['folder_s']:.1f} s, separate {sum(r['separate_s']):.1f} s")
        res["max_pixel_difference"] = compare(res["rounds"])
        for r in res["rounds"]:  # the temporary paths mean nothing after the run
            r["folder_images"] = r["separate_images"] = [Path(p).name for p in r["folder_images"]]
    res["lean_s"].append(lean(hw))
    res["summary"] = summarise(res)
    res["total_s"] = time.perf_counter() - t0
    res["load_average_at_end"] = list(os.getloadavg())
    write_text(args.out / "folder.json", json.dumps(res, indent=2, default=float) + "\n")
    write_text(args.out / "folder.md", report_md(res))
    r = res["summary"]
    log(f"per image: folder {r['per_image_folder_s']:.2f} s, separate {r['per_image_separate_s']:.2f} s, "
        f"saving {r['saving_per_image_s']:.2f} s; wrote {args.out / 'folder.json'} and folder.md")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
