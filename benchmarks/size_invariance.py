"""Same weights, same look at every size? (issue #15.4): ``python -m benchmarks.size_invariance [--quick]``.

The default transfer (``nst_tf.transfer_style`` with every setting at its default, only ``size``
changed) at 256, 512 and 1024 px on two pairs: the bundled ``chelsea`` + ``hubble_deep_field``,
and ``tubingen`` + ``starry_night`` when they are found (``NST_EXTRA_IMAGES``, or
``/work/shared/images`` on the project machines; never downloaded). For every result:

* **style distance** (``nst_tf.metrics.style_distance``: the Gram-matrix distance at the default
  style layers, each layer relative to the style's own Gram scale, as in the optimised loss) and
  **content SSIM** against the photo (``nst_tf.metrics.ssim``), both at one common evaluation
  size, the smallest (256 px long side; the larger results are downsampled, none is enlarged);
* the same two numbers at the result's own size (the style resized to it, as the run did);
* the run's final loss terms as it optimised them (content, style, TV, weights applied) and
  their **balance**, style term / content term.

The unstylised photo's style distance is given as the scale (how far the photo itself is from
the style). Writes the figure ``docs/figures/size_invariance.jpg`` (the results only, each shown
at the same width; no input images), ``benchmarks/results/size_invariance.json`` and ``.md``.
Each run's image and sidecar are kept in ``$NST_OUTPUT_DIR/size_invariance/`` and reused by a
later call (``--fresh`` runs them again), so the slow 1024 px runs need to be made only once.
``--quick``: 64 and 128 px, the bundled pair only, everything written under
``$NST_OUTPUT_DIR/size_invariance/quick/``. ``tests/test_size_invariance.py`` runs
:func:`measure` on tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (("chelsea", "hubble_deep_field"), ("tubingen", "starry_night"))
SIZES = {"full": (256, 512, 1024), "quick": (64, 128)}


def log(msg):
    print(f"[size_invariance {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def resolve(content: str, style: str):
    """Paths of a pair, or None when either is not found here (never downloading)."""
    from benchmarks.common import SHARED_IMAGES
    from nst_tf.data import resolve_image
    from nst_tf.errors import ImageError

    if not os.environ.get("NST_EXTRA_IMAGES") and os.path.isdir(SHARED_IMAGES):
        os.environ["NST_EXTRA_IMAGES"] = SHARED_IMAGES
    try:
        return (
            resolve_image(content, "content", allow_download=False),
            resolve_image(style, "style", allow_download=False),
        )
    except ImageError:
        return None


def result_at(content, style, size: int, folder: Path, *, fresh: bool = False, **settings):
    """(image uint8, sidecar dict) of the default transfer at ``size``, reusing a saved run."""
    from nst_tf import transfer_style
    from nst_tf.images import load_image

    path = folder / f"{Path(content).stem}-{Path(style).stem}-{size}.png"
    if fresh or not path.with_suffix(".json").is_file():
        t = time.perf_counter()
        transfer_style(content, style, size=size, progress=False, **settings).save(path)
        log(f"{path.name}: {time.perf_counter() - t:.0f} s")
    return load_image(path).astype("uint8"), json.loads(path.with_suffix(".json").read_text())


def measure(content, style, sizes, folder: Path, *, fresh: bool = False, **settings) -> dict:
    """Every number of one pair at each size (see the module's docstring); ``settings`` are Config
    overrides (none for the defaults; the tests pass fewer steps)."""
    from nst_tf import metrics
    from nst_tf.images import load_image, resize_image

    common = min(sizes)
    photo, painting = load_image(content, common), load_image(style)
    out = {"evaluation_size": common, "photo_style_distance": metrics.style_distance(photo, painting)}
    for size in sizes:
        image, side = result_at(content, style, size, folder, fresh=fresh, **settings)
        small = resize_image(image.astype("float32"), long_side=common)
        terms = side["final_losses"]
        out[str(size)] = {
            "image_hw": list(image.shape[:2]),
            "seconds": side["timings"]["total_s"],
            "final_losses": terms,
            "balance": terms["style"] / terms["content"],
            "style_distance": metrics.style_distance(small, painting),
            "ssim": metrics.ssim(small, photo),
            "native_style_distance": metrics.style_distance(image, painting),
            "native_ssim": metrics.ssim(image, load_image(content, size=image.shape[:2])),
        }
    out["spread"] = spread(out, sizes)
    return out


def spread(res: dict, sizes) -> dict:
    """How much each number moves across the sizes: max / min ratio, or max - min for SSIM."""
    rows = [res[str(s)] for s in sizes]

    def ratio(key):
        values = [r[key] for r in rows]
        return max(values) / min(values)

    return {
        "style_distance_ratio": ratio("style_distance"),
        "balance_ratio": ratio("balance"),
        "ssim_range": max(r["ssim"] for r in rows) - min(r["ssim"] for r in rows),
        "native_style_distance_ratio": ratio("native_style_distance"),
    }


def figure(results: dict, sizes, path: Path) -> None:
    """The results side by side, one row per pair, each at the same width, with their numbers."""
    import matplotlib

    matplotlib.use("Agg")
    from nst_tf.images import load_image
    from nst_tf.plotting import show_images, use_style

    use_style()
    images, titles, labels = [], [], []
    for pair, res in results.items():
        labels.append(pair.replace("/", "\n"))
        for size in sizes:
            r = res[str(size)]
            images.append(load_image(r["path"], long_side=min(sizes) * 2))  # the same display size
            titles.append(f"{size} px: style dist. {r['style_distance']:.2f}, SSIM {r['ssim']:.2f}")
    fig = show_images(images, titles, ncols=len(sizes), size=4.0, row_labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, pil_kwargs={"quality": 88})


def report_md(res: dict) -> str:
    sizes = res["sizes"]
    lines = [
        "# Same weights, same look at every size? (`python -m benchmarks.size_invariance`)",
        "",
        f"Default settings ({res['defaults']}), only `size` changed. Style distance and SSIM are measured "
        f"at {min(sizes)} px long side (larger results downsampled); *own size*: at the result's size, "
        "the style resized to it as in the run. Balance: the run's final style term / content term. "
        f"Machine: {res['machine']['cpu']}, load average at start "
        f"{'/'.join(f'{v:.1f}' for v in res['machine']['load_average_at_start'] or [])}.",
        "",
        "| pair | size | style distance | SSIM | balance | style distance, own size | SSIM, own size | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair, r in res["pairs"].items():
        for size in sizes:
            x = r[str(size)]
            lines.append(
                f"| {pair} | {size} px | {x['style_distance']:.3f} | {x['ssim']:.3f} | {x['balance']:.2f} | "
                f"{x['native_style_distance']:.3f} | {x['native_ssim']:.3f} | {x['seconds']:.0f} s |"
            )
        s = r["spread"]
        lines.append(
            f"| {pair} | spread | x{s['style_distance_ratio']:.2f} | ±{s['ssim_range'] / 2:.3f} | "
            f"x{s['balance_ratio']:.2f} | x{s['native_style_distance_ratio']:.2f} | | |"
        )
        lines.append(f"| {pair} | photo itself | {r['photo_style_distance']:.3f} | 1 | | | | |")
    lines += ["", "Spread: largest / smallest value over the sizes (x), or half the SSIM range (±).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="64 and 128 px, bundled pair (checks the machinery)"
    )
    parser.add_argument("--fresh", action="store_true", help="run again instead of reusing saved results")
    parser.add_argument("--out", type=Path, help="json/md folder (default benchmarks/results)")
    parser.add_argument("--figure", type=Path, help="figure path (default docs/figures/size_invariance.jpg)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine_info
    from nst_tf.config import Config
    from nst_tf.files import output_dir, write_text

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    runs = output_dir() / "size_invariance" / ("quick" if args.quick else "")
    out = args.out or (runs if args.quick else ROOT / "benchmarks" / "results")
    fig_path = args.figure or (
        runs / "size_invariance.jpg" if args.quick else ROOT / "docs/figures/size_invariance.jpg"
    )
    c = Config()
    defaults = (
        f"style_weight {c.style_weight:g}, content_weight {c.content_weight:g}, tv_weight {c.tv_weight:g}, "
    )
    defaults += (
        f"{c.optimizer}, pyramid {c.pyramid}, {c.steps} full-size steps, style_scale {c.style_scale:g}"
    )
    res = {"mode": mode, "sizes": list(sizes), "defaults": defaults, "machine": machine_info(), "pairs": {}}
    for content, style in PAIRS[:1] if args.quick else PAIRS:
        found = resolve(content, style)
        if found is None:
            log(f"{content}/{style} not found here: left out")
            continue
        r = measure(*found, sizes, runs, fresh=args.fresh)
        for size in sizes:
            r[str(size)]["path"] = str(runs / f"{Path(found[0]).stem}-{Path(found[1]).stem}-{size}.png")
        res["pairs"][f"{content}/{style}"] = r
        log(f"{content}/{style}: {r['spread']}")
    res["load_average_at_end"] = list(os.getloadavg())
    figure(res["pairs"], sizes, fig_path)
    for r in res["pairs"].values():  # local paths mean nothing elsewhere
        for size in sizes:
            r[str(size)]["path"] = Path(r[str(size)]["path"]).name
    write_text(out / "size_invariance.json", json.dumps(res, indent=2, default=float) + "\n")
    write_text(out / "size_invariance.md", report_md(res))
    log(f"wrote {fig_path}, {out / 'size_invariance.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
