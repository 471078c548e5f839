"""scipy's L-BFGS-B vs the in-graph L-BFGS (``nst_tf.graph_lbfgs``) on this machine (issue #16 item 4).

``python -m benchmarks.lbfgs_drivers [OUT.json]``: Tübingen + The Starry Night at 512 px, single
scale, 12 steps, each driver twice (alternated); per run the first step, the seconds per evaluation
after step 2 and the losses; plus the bare VGG19 step and the host-side copies of the scipy bridge
(float64 variables -> float32 pixels -> tensor, gradient -> float64) per evaluation.
Needs the paintings (``NST_EXTRA_IMAGES``, else /work/shared/images).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NST_PROGRESS", "0")
os.environ.setdefault("NST_EXTRA_IMAGES", "/work/shared/images")

OUT = "benchmarks/results/lbfgs_drivers.json"


def main(out_path: str = OUT) -> dict:
    import numpy as np
    import tensorflow as tf

    import nst_tf
    from benchmarks.common import keras_vgg19, lean_step_fn, machine_info, time_calls
    from nst_tf.data import resolve_image
    from nst_tf.images import load_image, preprocess
    from nst_tf.models import get_weights

    content, style = resolve_image("tubingen"), resolve_image("starry_night")
    out = {"machine": machine_info(), "runs": []}
    weights, _ = get_weights(None)
    x = preprocess(load_image(content, long_side=512)).numpy()
    out["lean_s"] = time_calls(lean_step_fn(keras_vgg19(weights), x), 4, warmup=2)["s"]
    gradient = tf.constant(x)

    def bridge():  # what the scipy bridge copies per evaluation, without the network
        pixels = x.ravel().astype(np.float64).reshape(x.shape).astype(np.float32)
        tf.constant(pixels)
        return gradient.numpy().ravel().astype(np.float64)

    out["host_round_trip_s"] = time_calls(bridge, 20, warmup=3)["s"]
    for rnd in range(2):
        for driver in ("scipy", "graph"):
            os.environ["NST_LBFGS"] = driver
            r = nst_tf.transfer_style(content, style, size=512, pyramid=(), steps=12, progress=False)
            stage, t, ev = r.timings["stages"][0], r.history.time, r.history.evaluations
            row = {
                "driver": r.driver,
                "round": rnd,
                "total_s": r.timings["total_s"],
                "first_step_s": stage["first_step_s"],
                "evaluations": stage["evaluations"],
                "s_per_eval_after_step2": (t[-1] - t[1]) / (ev[-1] - ev[1]),
                "loss_10": r.history.loss[9],
                "loss_12": r.history.loss[-1],
            }
            out["runs"].append(row)
            print(row, flush=True)
    os.environ.pop("NST_LBFGS", None)
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main(*sys.argv[1:2])
