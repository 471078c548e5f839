"""Section (3): our optimiser vs pastiche 1.6.0 (PyTorch, L-BFGS) on pastiche's own objective.

Both minimise exactly pastiche's documented default loss (see
``pastiche_probe``) on the very same preprocessed pixels and VGG19 weights
(nst_tf's default weights *are* pastiche's quantised copy unless Keras's
cached ImageNet file exists; the JSON records which, and the initial losses of
both implementations are compared as a check). Pastiche runs its plain
L-BFGS at full size; ours runs ``nst_tf.optimize`` with the default
coarse-to-fine schedule (``Config().pyramid``). Reported: wall time until each
reaches the loss pastiche has after N steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Recorder, run_stages

CONTENT_LAYER = "block4_conv2"  # pastiche: block4_relu2
STYLE_LAYERS = [f"block{b}_conv1" for b in range(1, 6)]  # pastiche: block1..5_relu1


def pastiche_python() -> tuple[str | None, str | None]:
    """(interpreter, None) if PASTICHE_PYTHON runs torch + pastiche, else (None, why not)."""
    exe = os.environ.get("PASTICHE_PYTHON")
    if not exe:
        return None, "PASTICHE_PYTHON is not set (see benchmarks/README.md to enable this section)"
    try:
        out = subprocess.run(
            [exe, "-c", "import torch, pastiche; print(torch.__version__, pastiche.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"PASTICHE_PYTHON={exe} does not run: {err}"
    if out.returncode != 0:
        return None, f"PASTICHE_PYTHON={exe} cannot import torch and pastiche: {out.stderr.strip()[-300:]}"
    return exe, None


def pastiche_style_hw(style_shape, content_hw) -> tuple[int, int]:
    """pastiche's default style size: as many pixels as the content (``load_image(pixels=...)``)."""
    h, w = style_shape[:2]
    pixels = content_hw[0] * content_hw[1]
    h_ = int(round(math.sqrt(pixels * h / w), 0))
    return h_, int(round((w / h) * h_, 0))


def make_pastiche_objective(extractor, content_pre, style_pre):
    """pastiche's default loss as an nst_tf objective: x -> (total (1,), terms)."""
    import tensorflow as tf

    from nst_tf.losses import gram_matrix

    p = extractor(content_pre, training=False)[CONTENT_LAYER]
    feats = extractor(style_pre, training=False)
    grams = {k: gram_matrix(feats[k]) for k in STYLE_LAYERS}
    layer_w = {k: 10.0 / float(feats[k].shape[-1]) ** 2 for k in STYLE_LAYERS}

    def objective(x):
        f = extractor(x, training=False)
        content = 0.01 * tf.reduce_mean(tf.square(f[CONTENT_LAYER] - p))
        style = tf.add_n(
            [layer_w[k] * tf.reduce_mean(tf.square(gram_matrix(f[k]) - grams[k])) for k in STYLE_LAYERS]
        )
        total = content + style
        return tf.reshape(total, [1]), {"content": content, "style": style}

    return objective


def _write_f32(arr_nhwc, path) -> list[int]:
    nchw = np.ascontiguousarray(np.transpose(np.asarray(arr_nhwc, np.float32), (0, 3, 1, 2)))
    Path(path).write_bytes(nchw.tobytes())
    return list(nchw.shape)


def run_pastiche(exe, content_pre, style_pre, steps, workdir, threads=None) -> dict:
    spec = {
        "content": str(Path(workdir) / "content.f32"),
        "style": str(Path(workdir) / "style.f32"),
        "steps": int(steps),
        "threads": threads,
    }
    spec["content_shape"] = _write_f32(content_pre, spec["content"])
    spec["style_shape"] = _write_f32(style_pre, spec["style"])
    spec_path = Path(workdir) / "spec.json"
    spec_path.write_text(json.dumps(spec))
    probe = Path(__file__).with_name("pastiche_probe.py")
    t = time.perf_counter()
    out = subprocess.run([exe, str(probe), str(spec_path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pastiche probe failed: {out.stderr.strip()[-800:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    return result


def run_ours(content_rgb, style_rgb, stages, stop_below, cap_steps, precision="float32"):
    """Our coarse-to-fine L-BFGS on pastiche's objective, through the library's planner and loop
    (``transfer.plan_stages``, ``transfer.run_stages``: what users run, the curvature hand-off
    between stages included); returns the Recorder (full size = last stage)."""
    from nst_tf.images import preprocess, resize_image
    from nst_tf.models import build_extractor
    from nst_tf.transfer import plan_stages
    from nst_tf.vgg19 import min_input_side

    layers = [CONTENT_LAYER] + STYLE_LAYERS
    extractor = build_extractor(layers, precision=precision)
    full_hw = content_rgb.shape[:2]
    plan = plan_stages(full_hw, max(full_hw), [*stages, (1.0, cap_steps)], min_input_side(layers))

    def objective_at(hw):
        content = resize_image(content_rgb, size=hw)
        style = resize_image(style_rgb, size=pastiche_style_hw(style_rgb.shape, hw))
        return make_pastiche_objective(extractor, preprocess(content), preprocess(style))

    return run_stages(
        objective_at, content_rgb, plan, Recorder(full_hw=tuple(full_hw), stop_below=stop_below).start()
    )


def compare(
    content_path, style_path, sizes, steps_by_size, pyramid, threads=None, exe=None, precision="float32"
) -> dict:
    """One pair: for each size, pastiche's loss after each N of ``steps_by_size[size]`` and the wall time
    each library takes to reach it. ``exe``: a pastiche interpreter already checked by ``pastiche_python``
    (else it is checked here); ``{"skipped": why}`` when there is none."""
    import tensorflow as tf

    from nst_tf.images import load_image, preprocess, resize_image
    from nst_tf.models import build_extractor, get_weights

    if exe is None:
        exe, why = pastiche_python()
        if exe is None:
            return {"skipped": why}
    _, weights_info = get_weights(None)
    out = {"interpreter": exe, "weights": weights_info, "pyramid": [list(s) for s in pyramid], "sizes": {},
           "precision": precision}  # fmt: skip
    for size in sizes:
        content = load_image(content_path, long_side=size)
        style_full = load_image(style_path)
        style = resize_image(style_full, size=pastiche_style_hw(style_full.shape, content.shape[:2]))
        c_pre, s_pre = preprocess(content).numpy(), preprocess(style).numpy()
        targets_at = sorted(steps_by_size[size])
        with tempfile.TemporaryDirectory() as tmp:
            pst = run_pastiche(exe, c_pre, s_pre, max(targets_at), tmp, threads)
        extractor = build_extractor([CONTENT_LAYER] + STYLE_LAYERS)
        ours_initial = float(
            tf.reduce_sum(make_pastiche_objective(extractor, c_pre, s_pre)(tf.constant(c_pre))[0])
        )
        rows = pst["rows"]
        targets = {r: rows[r - 1][1] for r in targets_at if r <= len(rows)}
        rec = run_ours(content, style, pyramid, min(targets.values()), max(targets_at), precision)
        table = []
        for r, target in targets.items():
            hit = rec.first_below(target)
            t_p = rows[r - 1][0]
            table.append(
                {
                    "pastiche_steps": r,
                    "target_loss": target,
                    "pastiche_s": t_p,
                    "ours_s": hit[0] if hit else None,
                    "ours_full_steps": hit[2] if hit else None,
                    "speedup": (t_p / hit[0]) if hit else None,
                }
            )
        out["sizes"][str(size)] = {
            "hw": list(content.shape[:2]),
            "style_hw": list(style.shape[:2]),
            "pastiche_init_s": pst["init_s"],
            "pastiche_threads": pst.get("threads"),
            "torch": pst.get("torch"),
            "initial_loss": {
                "pastiche": pst["initial_loss"],
                "ours": ours_initial,
                "relative_difference": abs(ours_initial - pst["initial_loss"]) / abs(pst["initial_loss"]),
            },
            "table": table,
            "curves": {"pastiche": rows, "ours": [list(r) for r in rec.rows]},
        }
    return out
