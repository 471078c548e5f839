"""Learning-rate and TV-weight sweep behind ``nst_tf.config.KNOWN_GOOD`` (session 4).

    python -m benchmarks.lr_sweep [--size 128] [--steps 100] > sweep.jsonl

Small on purpose (128 px, 100 steps, two bundled pairs): one JSON line per run with
the final loss terms (``final_losses``: the loss at the last step, weighted terms) and
the raw total variation of the result (``tv_raw``: mean squared neighbour difference
in grey levels, the speckle). Adam and SGD are judged by their final total loss (same
objective, default weights, start from the content image); SGD's learning rate is
given per pixel of the generated image (``lr = k * H * W``), because the loss is a mean
over pixels and a pixel's gradient shrinks as the image grows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

PAIRS = [("chelsea", "hubble_deep_field"), ("astronaut", "gravel")]
ADAM_LRS = [2.0, 4.0, 8.0, 16.0]
SGD_PER_PIXEL = [0.5, 1.0, 2.0, 4.0, 8.0]
TV_WEIGHTS = {
    "transfer": [0.0, 1e-5, 1e-4, 1e-3],
    "reconstruct": [0.0, 1e-5, 1e-4],
    "texture": [0.0, 1e-5, 1e-4],
}


def _tv_raw(image) -> float:
    from nst_tf import losses
    from nst_tf.images import preprocess

    return float(losses.total_variation_loss(preprocess(image))[0])


def _line(kind, pair, setting, res, seconds):
    finite = all(np.isfinite(v) for v in res.final_losses.values())
    out = {
        "kind": kind,
        "pair": list(pair),
        **setting,
        "stopped": res.stopped,
        "finite": bool(finite and res.stopped == "completed"),
        "final_losses": {k: float(v) for k, v in res.final_losses.items()},
        "tv_raw": _tv_raw(res.image),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(out), flush=True)


def main(argv=None):
    from nst_tf import reconstruct_content, synthesize_texture, transfer_style

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--only", choices=["adam", "sgd", "tv"], default=None)
    args = p.parse_args(argv)
    common = dict(size=args.size, steps=args.steps, pyramid=(), progress=False)
    for content, style in PAIRS:
        pair = (content, style)
        n_pixels = None
        if args.only in (None, "adam"):
            for lr in ADAM_LRS:
                t = time.perf_counter()
                res = transfer_style(content, style, optimizer="adam", learning_rate=lr, **common)
                _line("adam", pair, {"learning_rate": lr}, res, time.perf_counter() - t)
        if args.only in (None, "sgd"):
            for k in SGD_PER_PIXEL:
                if n_pixels is None:
                    probe = transfer_style(content, style, **(common | {"steps": 1}))
                    n_pixels = probe.image.shape[0] * probe.image.shape[1]
                t = time.perf_counter()
                res = transfer_style(
                    content, style, optimizer="sgd", learning_rate=k * n_pixels, lr_decay=0.1, **common
                )
                setting = {"lr_per_pixel": k, "learning_rate": k * n_pixels, "lr_decay": 0.1}
                _line("sgd", pair, setting, res, time.perf_counter() - t)
        if args.only in (None, "tv"):
            for w in TV_WEIGHTS["transfer"]:
                t = time.perf_counter()
                res = transfer_style(content, style, tv_weight=w, **common)
                _line("tv transfer", pair, {"tv_weight": w}, res, time.perf_counter() - t)
            for w in TV_WEIGHTS["reconstruct"]:
                t = time.perf_counter()
                res = reconstruct_content(content, tv_weight=w, **common)
                _line("tv reconstruct", pair, {"tv_weight": w}, res, time.perf_counter() - t)
            for w in TV_WEIGHTS["texture"]:
                t = time.perf_counter()
                res = synthesize_texture(style, tv_weight=w, **common)
                _line("tv texture", pair, {"tv_weight": w}, res, time.perf_counter() - t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
