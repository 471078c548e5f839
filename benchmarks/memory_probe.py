"""Peak memory of one transfer at one size, measured in a fresh process.

``python -m benchmarks.memory_probe --size 512 --content C --style S`` prints
one JSON line: the process's RSS high-water mark (VmHWM) after start-up
(TensorFlow imported, weights loaded, extractor built and run once on a tiny
image) and after a few full-size L-BFGS steps, plus nst_tf's own estimate.
``benchmarks.run`` starts one such process per size, since a high-water mark
never goes down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def vm_hwm() -> int:
    """Peak resident set size of this process so far (bytes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args(argv)
    os.environ.setdefault("NST_PROGRESS", "0")

    import nst_tf
    from nst_tf import resources
    from nst_tf.config import Config
    from nst_tf.images import load_image

    nst_tf.transfer_style(args.content, args.style, size=32, steps=1, pyramid=(), progress=False)
    base = vm_hwm()
    t = time.perf_counter()
    result = nst_tf.transfer_style(
        args.content, args.style, size=args.size, steps=args.steps, pyramid=(), progress=False
    )
    seconds = time.perf_counter() - t
    peak = vm_hwm()
    h, w = result.image.shape[:2]
    cfg = Config()
    layers = list(cfg.content_layers) + list(cfg.style_layers)
    style_hw = load_image(args.style).shape[:2]
    print(
        json.dumps(
            {
                "size": args.size,
                "hw": [h, w],
                "pixels": h * w,
                "style_hw": list(style_hw),
                "steps": args.steps,
                "seconds": round(seconds, 3),
                "base_hwm_bytes": base,
                "peak_hwm_bytes": peak,
                "estimate_bytes": resources.estimate_bytes((h, w), layers),
                "copies_per_activation": resources.COPIES_PER_ACTIVATION,
                "base_bytes": resources.BASE_BYTES,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
