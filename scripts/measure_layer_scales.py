"""Measure how VGG19's layers differ in scale: Gram entries and raw per-layer style losses.

    NST_EXTRA_IMAGES=/folder/with/paintings python scripts/measure_layer_scales.py [--size 256]

For each content/style pair (the ones that resolve here: tubingen needs NST_EXTRA_IMAGES,
chelsea and hubble_deep_field are bundled), and each style layer block1_conv1 ... block5_conv1,
prints the mean absolute Gram entry of the style image (Gram = F^T F / (H W), as nst_tf.losses)
and the raw style loss mean((G(content) - G(style))^2) before the per-layer normalisation,
each also as a ratio to block1_conv1. The README's "loss, in one paragraph" and
docs/pitfalls.md quote these numbers.
"""

from __future__ import annotations

import argparse

import numpy as np

LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
PAIRS = [("tubingen", "starry_night"), ("chelsea", "hubble_deep_field"), ("chelsea", "starry_night")]


def measure(content: str, style: str, size: int) -> dict:
    from nst_tf import data, images, losses, models

    extractor = models.build_extractor(LAYERS)
    fc = extractor(images.preprocess(data.load(content, size)))
    fs = extractor(images.preprocess(data.load(style, size)))
    rows = {}
    for layer in LAYERS:
        gram_s = losses.gram_matrix(fs[layer])
        raw = float(losses.style_layer_loss(fc[layer], gram_s)[0])
        rows[layer] = {"gram_abs_mean": float(np.abs(gram_s).mean()), "raw_style_loss": raw}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    from nst_tf import data
    from nst_tf.errors import ImageError

    for content, style in PAIRS:
        try:
            data.resolve_image(content, allow_download=False)
            data.resolve_image(style, allow_download=False)
        except ImageError:
            print(f"{content} / {style}: not available here, skipped")
            continue
        rows = measure(content, style, args.size)
        base = rows[LAYERS[0]]
        print(f"\n{content} (content) / {style} (style), {args.size} px")
        print(
            f"{'layer':14s} {'mean |Gram|':>12s} {'x conv1_1':>10s} {'raw style loss':>15s} {'x conv1_1':>10s}"
        )
        for layer, row in rows.items():
            g, loss = row["gram_abs_mean"], row["raw_style_loss"]
            print(
                f"{layer:14s} {g:12.4g} {g / base['gram_abs_mean']:10.3g} {loss:15.4g} "
                f"{loss / base['raw_style_loss']:10.3g}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
