"""Fewer evaluations to the same loss (issue #16): ``python -m benchmarks.speed_study [--quick]``.

Every idea is run on the same pair, size and objective in one process and one sitting, and timed
from its start (targets, coarse stages and first steps included; tracing done once beforehand and
reported apart) until its full-size loss first reaches a target:

* **ours** (our default objective): the target is the loss single-scale L-BFGS (content start)
  reaches after ``--ref-steps`` full-size steps; each idea's time is compared with single-scale's.
  Ideas: coarse-to-fine schedules (scales and step split), the first L-BFGS step sized by the
  previous stage's curvature (``optimize(gamma=...)``) or not, a warm start (the content recoloured
  to the painting's palette), and three reparametrisations of the image after Mordvintsev et al.
  (2018), "Differentiable Image Parameterizations": decorrelated colour, a Fourier basis scaled by
  1/frequency, and a Laplacian pyramid (``Reparam`` below).
* **pastiche** (pastiche 1.6.0's own objective, when ``PASTICHE_PYTHON`` is set): the target is the
  loss pastiche's L-BFGS reaches after ``--pastiche-steps`` steps, timed from its first step.

Reparametrised runs are unbounded (the box on pixels is not a box on the new variables): their loss
is measured at the unclipped pixels. Writes ``benchmarks/results/speed_study.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Mordvintsev et al.'s colour decorrelation matrix (the square root of ImageNet's RGB covariance,
#: lucid's ``color_correlation_svd_sqrt``), RGB rows; ``Reparam("colour")`` uses it in BGR order.
COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def log(msg):
    print(f"[study {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Reparam:
    """Pixels as a linear function of other variables: ``pixels(params)`` and its inverse ``params``.

    * ``"colour"``: each pixel's BGR = ``C @ p`` with ``C`` the decorrelating matrix (normalised).
    * ``"fourier"``: the image = inverse real FFT of ``spectrum / max(f, 1/side)``: the low
      frequencies get large steps, the high ones small (Mordvintsev's 1/f scaling, decay 1).
    * ``"laplacian"``: the image = sum of ``levels`` images at 1, 1/2, 1/4... of its size, each
      upsampled (bilinear) to full size; ``params`` puts the pixels in the finest level, zeros
      elsewhere, so the round trip is exact.
    Works on preprocessed (1, H, W, 3) batches. ``params`` then ``pixels`` gives the pixels back.
    """

    def __init__(self, kind: str, hw, levels: int = 4):
        import tensorflow as tf

        self.kind, self.hw, self.levels = kind, tuple(hw), levels
        h, w = self.hw
        if kind == "colour":
            bgr = COLOUR_SQRT[::-1]  # rows and columns in BGR order
            bgr = bgr[:, ::-1]
            bgr = bgr / np.max(np.linalg.norm(bgr, axis=0))
            self.matrix = tf.constant(bgr.T, tf.float32)  # p (.., 3) @ matrix -> pixels
            self.inverse = tf.constant(np.linalg.inv(bgr.T), tf.float32)
        elif kind == "fourier":
            fy = np.fft.fftfreq(h)[:, None]
            fx = np.fft.rfftfreq(w)[None, :]
            freq = np.sqrt(fx**2 + fy**2)
            self.scale = tf.constant(1.0 / np.maximum(freq, 1.0 / max(h, w)), tf.float32)
        elif kind == "laplacian":
            self.shapes = [(max(1, h >> k), max(1, w >> k)) for k in range(levels)]
        else:
            raise ValueError(f"unknown reparametrisation {kind!r}")

    def pixels(self, p):
        """Variables -> preprocessed pixels (1, H, W, 3)."""
        import tensorflow as tf

        h, w = self.hw
        if self.kind == "colour":
            return tf.reshape(tf.reshape(p, (-1, 3)) @ self.matrix, (1, h, w, 3))
        if self.kind == "fourier":
            n = h * (w // 2 + 1)
            spectrum = tf.complex(tf.reshape(p[: 3 * n], (3, h, -1)), tf.reshape(p[3 * n :], (3, h, -1)))
            spectrum = spectrum * tf.cast(self.scale, tf.complex64)
            image = tf.signal.irfft2d(spectrum, fft_length=(h, w))  # (3, H, W)
            return tf.transpose(image, (1, 2, 0))[tf.newaxis]
        image, offset = 0.0, 0
        for k, (lh, lw) in enumerate(self.shapes):
            level = tf.reshape(p[offset : offset + lh * lw * 3], (1, lh, lw, 3))
            offset += lh * lw * 3
            image = image + (level if k == 0 else tf.image.resize(level, (h, w), method="bilinear"))
        return image

    def params(self, x):
        """Preprocessed pixels (1, H, W, 3) -> variables (flat float32)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.float32)
        if self.kind == "colour":
            return tf.reshape(tf.reshape(x, (-1, 3)) @ self.inverse, (-1,))
        if self.kind == "fourier":
            h, w = self.hw
            spectrum = tf.signal.rfft2d(tf.transpose(x[0], (2, 0, 1)), fft_length=(h, w))
            spectrum = spectrum / tf.cast(self.scale, tf.complex64)
            return tf.concat(
                [tf.reshape(tf.math.real(spectrum), (-1,)), tf.reshape(tf.math.imag(spectrum), (-1,))], 0
            )
        zeros = [tf.zeros(lh * lw * 3) for lh, lw in self.shapes[1:]]
        return tf.concat([tf.reshape(x, (-1,)), *zeros], 0)


# --------------------------------------------------------------------------- runners
from benchmarks.common import run_stages  # noqa: E402 (the library's loop, from a photo)


def _stages(shape, size, pyramid, cap, min_side):
    """[(hw, steps)]: the library's planner (``transfer.plan_stages``) on ``pyramid`` then ``cap``
    full-size steps."""
    from nst_tf.transfer import plan_stages

    return plan_stages(shape, size, [*pyramid, (1.0, cap)], min_side)


def run_reparam(objective, start_rgb, hw, reparam: Reparam, steps, rec):
    """Unbounded L-BFGS on the variables of ``reparam``; the first step moves pixels ~2 grey levels RMS."""
    import tensorflow as tf

    from benchmarks.common import Reached
    from nst_tf import lbfgsb
    from nst_tf.images import preprocess, resize_image
    from nst_tf.optimize import LBFGS_SCALE

    x0 = preprocess(resize_image(start_rgb, size=hw))

    @tf.function
    def value_and_grad(p):
        with tf.GradientTape() as tape:
            tape.watch(p)
            x = reparam.pixels(p)
            loss = tf.reduce_sum(objective(x)[0])
        return loss, tape.gradient(loss, p), x

    p0 = reparam.params(x0)
    first = value_and_grad(p0)
    g = first[1]
    move = float(tf.norm(reparam.pixels(p0 + g) - reparam.pixels(p0)))  # pixels move = A A^T g (linear)
    scale = LBFGS_SCALE * math.sqrt(float(tf.size(x0))) * float(tf.norm(g)) / max(move, 1e-30)
    last = {}

    def fun(q):
        nonlocal first
        result = value_and_grad(tf.constant((q * scale).astype(np.float32))) if first is None else first
        first = None
        loss, grad, x = result
        last["x"] = x
        return float(loss), grad.numpy().astype(np.float64) * scale

    def callback(q, loss):
        rec(len(rec.rows) + 1, float(loss), last["x"].numpy())

    n = int(p0.shape[0])
    try:
        lbfgsb.minimize(
            fun, p0.numpy().astype(np.float64) / scale, np.full(n, -np.inf), np.full(n, np.inf),
            maxiter=steps, maxfun=int(steps * 1.5) + 10, callback=callback,
        )  # fmt: skip
    except Reached:
        pass
    return rec


# --------------------------------------------------------------------------- the study
def ideas(pyramid_default):
    """name -> (description, kind, options)."""
    return {
        "single-scale": ("L-BFGS at full size from the content (the reference)", "stages", {"pyramid": ()}),
        "default": (f"the default schedule {list(map(list, pyramid_default))}, first steps sized by curvature",
                    "stages", {"pyramid": pyramid_default}),
        "default with fixed first steps": ("the same, each stage's first L-BFGS step sized by LBFGS_SCALE alone (no curvature passed on)",
                                       "stages", {"pyramid": pyramid_default, "gamma": False}),
        "0.5:40": ("twice the coarse steps", "stages", {"pyramid": ((0.5, 40),)}),
        "0.5:10": ("half the coarse steps", "stages", {"pyramid": ((0.5, 10),)}),
        "0.25:20,0.5:20": ("three scales", "stages", {"pyramid": ((0.25, 20), (0.5, 20))}),
        "0.25:40,0.5:10": ("three scales, most steps at quarter size", "stages", {"pyramid": ((0.25, 40), (0.5, 10))}),
        "warm colour": ("default schedule, starting from the content recoloured to the style's colours",
                        "stages", {"pyramid": pyramid_default, "warm": True}),
        "colour param": ("single scale, decorrelated colour variables", "reparam", {"kind": "colour"}),
        "fourier param": ("single scale, 1/f-scaled Fourier variables", "reparam", {"kind": "fourier"}),
        "laplacian param": ("single scale, 4-level Laplacian pyramid variables", "reparam", {"kind": "laplacian"}),
    }  # fmt: skip


def study_ours(content_path, style_path, size, ref_steps, cap, only=None) -> dict:
    import nst_tf.transfer as T
    from benchmarks.common import Recorder
    from nst_tf import color
    from nst_tf.config import Config

    config = Config(size=size)
    inputs = T.load_inputs(config, content_path, [style_path])
    plan = T.plan_run(config, inputs)
    shared = T.Shared()
    extractor = shared.network(config, plan)
    full_hw = plan.full_hw

    def objective_at(hw):
        return T.stage_objective(config, plan, inputs, extractor, hw, shared.features, None)

    t = time.perf_counter()
    warm = objective_at((32, 32))  # trace the shared compiled functions once, outside every timing
    warm.value_and_grad(warm_x := np.zeros((1, 32, 32, 3), np.float32))
    trace_s = time.perf_counter() - t
    del warm_x
    content = inputs.content
    log(f"ours {full_hw[1]}x{full_hw[0]}: reference, {ref_steps} single-scale steps")
    shape, min_side = inputs.reference.shape, plan.min_side
    ref = run_stages(
        objective_at,
        content,
        _stages(shape, size, (), ref_steps, min_side),
        Recorder(full_hw=full_hw).start(),
    )
    rows = ref.full()
    target = rows[-1][2]
    out = {"hw": list(full_hw), "trace_s": trace_s, "ref_steps": ref_steps, "target": target, "ideas": {}}
    for name, (desc, kind, opts) in ideas(config.pyramid).items():
        if only and name not in only and name != "single-scale":  # the reference is always shown
            continue
        rec = Recorder(full_hw=full_hw, stop_below=target).start()
        if name == "single-scale":
            rec.rows = list(ref.rows)
        elif kind == "stages":
            start = color.match_color(content, inputs.styles[0]) if opts.get("warm") else content
            run_stages(
                objective_at,
                start,
                _stages(shape, size, opts["pyramid"], cap, min_side),
                rec,
                gamma=opts.get("gamma", True),
            )
        else:
            reparam = Reparam(opts["kind"], full_hw)
            run_reparam(objective_at(full_hw), content, full_hw, reparam, cap, rec)
        out["ideas"][name] = _summary(desc, rec, target)
        log(f"  {name}: {out['ideas'][name]['time_s']} s, {out['ideas'][name]['full_steps']} full-size steps")
    ref_time = out["ideas"].get("single-scale", {}).get("time_s")
    for v in out["ideas"].values():
        v["speedup_vs_single"] = ref_time / v["time_s"] if ref_time and v["time_s"] else None
    return out


def _summary(desc, rec, target) -> dict:
    hit = rec.first_below(target)
    full = rec.full()
    return {
        "description": desc,
        "time_s": hit[0] if hit else None,
        "full_steps": hit[2] if hit else None,
        "final_loss": full[-1][2] if full else None,
        "steps_total": len(rec.rows),
        "curve": [[round(r[0], 3), r[2], r[3], r[4]] for r in rec.rows],
    }


def study_pastiche(content_path, style_path, size, pastiche_steps, cap, schedules) -> dict:
    import tempfile

    from benchmarks.common import Recorder
    from benchmarks.pastiche_compare import (
        make_pastiche_objective,
        pastiche_python,
        pastiche_style_hw,
        run_pastiche,
    )
    from nst_tf.images import load_image, preprocess, resize_image
    from nst_tf.models import build_extractor
    from nst_tf.vgg19 import min_input_side

    exe, why = pastiche_python()
    if exe is None:
        return {"skipped": why}
    content = load_image(content_path, long_side=size)
    style_full = load_image(style_path)
    full_hw = content.shape[:2]
    c_pre = preprocess(content).numpy()
    s_pre = preprocess(resize_image(style_full, size=pastiche_style_hw(style_full.shape, full_hw))).numpy()
    log(f"pastiche {full_hw[1]}x{full_hw[0]}: {pastiche_steps} steps of pastiche's L-BFGS")
    with tempfile.TemporaryDirectory() as tmp:
        pst = run_pastiche(exe, c_pre, s_pre, pastiche_steps, tmp)
    target, t_pastiche = pst["rows"][pastiche_steps - 1][1], pst["rows"][pastiche_steps - 1][0]
    from benchmarks.pastiche_compare import CONTENT_LAYER, STYLE_LAYERS

    extractor = build_extractor([CONTENT_LAYER] + STYLE_LAYERS)

    def objective_at(hw):
        c = resize_image(content, size=hw)
        s = resize_image(style_full, size=pastiche_style_hw(style_full.shape, hw))
        return make_pastiche_objective(extractor, preprocess(c), preprocess(s))

    warm = objective_at((32, 32))
    from nst_tf.optimize import _value_and_grad_fn

    _value_and_grad_fn(warm)(np.zeros((1, 32, 32, 3), np.float32))
    out = {"hw": list(full_hw), "pastiche_steps": pastiche_steps, "target": target, "pastiche_s": t_pastiche,
           "pastiche_init_s": pst.get("init_s"), "torch": pst.get("torch"), "schedules": {}}  # fmt: skip
    for name, pyramid in schedules.items():
        stages = _stages(content.shape, size, pyramid, cap, min_input_side([CONTENT_LAYER, *STYLE_LAYERS]))
        rec = run_stages(objective_at, content, stages, Recorder(full_hw=full_hw, stop_below=target).start())
        s = _summary(f"ours, pyramid {list(map(list, pyramid))}", rec, target)
        s["speedup_vs_pastiche"] = t_pastiche / s["time_s"] if s["time_s"] else None
        out["schedules"][name] = s
        log(f"  {name}: {s['time_s']} s vs pastiche {t_pastiche:.1f} s")
    return out


def write_report(data, out_dir: Path, stem="speed_study"):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(data, indent=1, default=float))
    m = data["machine"]
    lines = [
        "# Fewer evaluations to the same loss (issue #16)",
        "",
        f"`python -m benchmarks.speed_study {data['args']}`. Machine: {m.get('cpu')} ({m.get('cores')} cores), "
        f"TF {m.get('tensorflow')}, one process, one sitting. Bare VGG19 step (forward + input gradient to "
        f"block5_conv1) at the full size in this sitting: **{data['lean_s']:.3f} s**; every time below is also "
        "given as a multiple of it.",
        "",
    ]
    for pair, res in data["pairs"].items():
        ours = res["ours"]
        h, w = ours["hw"]
        lines += [
            f"## {pair}, {w}x{h}: our objective",
            "",
            f"Target: the loss single-scale L-BFGS reaches after {ours['ref_steps']} full-size steps "
            f"({ours['target']:.4g}). Time from the start of each run (targets, coarse stages, first steps "
            f"included; the one trace of the compiled step, {ours['trace_s']:.1f} s, done beforehand).",
            "",
            "| idea | what | seconds | x VGG19 step | full-size steps | vs single-scale |",
            "|---|---|---|---|---|---|",
        ]
        for name, v in ours["ideas"].items():
            t = v["time_s"]
            lines.append(
                f"| {name} | {v['description']} | {_f(t)} | {_f(t / data['lean_s'] if t else None, 0)} | "
                f"{v['full_steps'] or '—'} | {_x(v['speedup_vs_single'])} |"
            )
        pst = res.get("pastiche", {})
        if "skipped" in pst:
            lines += ["", f"pastiche: skipped ({pst['skipped']})"]
        elif pst:
            lines += [
                "",
                f"### {pair}: pastiche's objective",
                "",
                f"Target: pastiche's loss after {pst['pastiche_steps']} of its L-BFGS steps ({pst['target']:.4g}), "
                f"reached in {pst['pastiche_s']:.1f} s from its first step (its start-up, "
                f"{_f(pst['pastiche_init_s'])} s, not counted).",
                "",
                "| schedule | seconds | full-size steps | vs pastiche |",
                "|---|---|---|---|",
            ]
            for name, v in pst["schedules"].items():
                lines.append(
                    f"| {name} | {_f(v['time_s'])} | {v['full_steps'] or '—'} | {_x(v['speedup_vs_pastiche'])} |"
                )
        lines.append("")
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")


def _f(v, digits=1):
    return "not reached" if v is None else f"{v:.{digits}f}"


def _x(v):
    return "—" if v is None else f"**{v:.2f}x**"


def main(argv=None):
    from benchmarks.common import keras_vgg19, lean_step_fn, machine_info, resolve_pairs, time_calls
    from nst_tf.config import Config
    from nst_tf.images import load_image, preprocess
    from nst_tf.models import get_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: shows the machinery works")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--ref-steps", type=int, default=40)
    ap.add_argument("--cap", type=int, default=80, help="most full-size steps any idea may take")
    ap.add_argument("--pastiche-steps", type=int, default=50)
    ap.add_argument("--pairs", default=None, help="content:style,... (default: tubingen:starry_night)")
    ap.add_argument(
        "--only", default=None, help="comma-separated idea names (also filters the pastiche schedules)"
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--name", default="speed_study", help="file name of the results (.json, .md)")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.ref_steps, args.cap, args.pastiche_steps = 64, 6, 10, 6
    from benchmarks.common import parse_pairs

    pairs, note = resolve_pairs(parse_pairs(args.pairs) if args.pairs else None)
    pairs = pairs[:1] if not args.pairs else pairs
    only = set(args.only.split(",")) if args.only else None
    weights, _ = get_weights(None)
    data = {
        "args": " ".join(sys.argv[1:] if argv is None else argv) or "(defaults)",
        "machine": machine_info(),
        "note": note,
        "pairs": {},
    }
    content = load_image(pairs[0][0], long_side=args.size)
    lean = time_calls(
        lean_step_fn(keras_vgg19(weights), preprocess(content).numpy()), 3 if args.quick else 6, warmup=2
    )
    data["lean_s"] = lean["s"]
    for content_path, style_path in pairs:
        label = f"{Path(content_path).stem} x {Path(style_path).stem}"
        res = {"ours": study_ours(content_path, style_path, args.size, args.ref_steps, args.cap, only)}
        schedules = {
            "single-scale": (),
            "default": Config().pyramid,
            "0.25:20,0.5:20": ((0.25, 20), (0.5, 20)),
        }
        if only:
            schedules = {k: v for k, v in schedules.items() if k in only}
        res["pastiche"] = study_pastiche(
            content_path, style_path, args.size, args.pastiche_steps, args.cap, schedules
        )
        data["pairs"][label] = res
        write_report(data, Path(args.out), args.name)
    lean2 = time_calls(
        lean_step_fn(keras_vgg19(weights), preprocess(content).numpy()), 3 if args.quick else 6, warmup=1
    )
    data["lean_s_end"] = lean2["s"]
    write_report(data, Path(args.out), args.name)
    log(f"wrote {args.out}/{args.name}.md")


if __name__ == "__main__":
    main()
