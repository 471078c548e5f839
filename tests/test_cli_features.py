"""The notebook-04 CLI flags end to end: --preserve-color, --style/--style-blend, --style-scale.

Each test runs ``python -m nst_tf transfer`` (in-process, through ``cli.main``)
on tiny images for a few steps, then checks that the JSON sidecar records the
flag AND that the flag had the effect it promises on the pixels or the loss.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nst_tf import cli, color
from nst_tf.config import Config
from nst_tf.data import load
from nst_tf.images import load_image, preprocess, resize_image
from nst_tf.losses import gram_matrix

pytestmark = pytest.mark.slow

CONTENT, STYLE_A, STYLE_B = "chelsea", "hubble_deep_field", "gravel"


def transfer(tmp_path: Path, name: str, *flags: str, size: int = 48, steps: int = 3):
    """Run the CLI; return (uint8 image, sidecar dict)."""
    out = tmp_path / f"{name}.png"
    argv = [
        "transfer",
        "--content",
        CONTENT,
        "--size",
        str(size),
        "--steps",
        str(steps),
        "--pyramid",
        "none",
        "--quiet",
        "-o",
        str(out),
        *flags,
    ]
    assert cli.main(argv) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    return np.asarray(load_image(out)), meta


def content_at(hw):
    return resize_image(load(CONTENT), size=hw)


def chroma_error(image, reference) -> float:
    """Mean absolute difference of the I and Q (colour) channels, in pixel units."""
    return float(np.abs(color.rgb_to_yiq(image)[..., 1:] - color.rgb_to_yiq(reference)[..., 1:]).mean())


# ----------------------------------------------------------------------------- colour
def test_preserve_color_luminance_keeps_the_content_chroma(tmp_path):
    # start from the style image so that the result's luminance is clearly not the photo's
    image, meta = transfer(
        tmp_path, "luminance", "--style", STYLE_A, "--init", "style", "--preserve-color", "luminance"
    )
    plain, plain_meta = transfer(tmp_path, "plain", "--style", STYLE_A, "--init", "style")
    assert meta["config"]["preserve_color"] == "luminance"
    assert plain_meta["config"]["preserve_color"] == "none"
    content = content_at(image.shape[:2])
    assert chroma_error(image, content) < 1.5 < 5 * 1.5 < chroma_error(plain, content)
    # ... while the luminance is the generated one, not the photo's
    assert np.abs(color.luminance(image) - color.luminance(content)).mean() > 10


def test_preserve_color_histogram_gives_the_style_the_content_palette(tmp_path):
    # from the (recoloured) style image, 3 steps: the palette shows in the result's mean colour
    image, meta = transfer(
        tmp_path, "histogram", "--style", STYLE_A, "--init", "style", "--preserve-color", "histogram"
    )
    plain, _ = transfer(tmp_path, "plain", "--style", STYLE_A, "--init", "style")
    assert meta["config"]["preserve_color"] == "histogram"
    mean_content = load(CONTENT).reshape(-1, 3).mean(0)
    mean_style = load(STYLE_A).reshape(-1, 3).mean(0)

    def distance(img, mean):
        return float(np.abs(img.reshape(-1, 3).mean(0) - mean).max())

    assert distance(image, mean_content) < 15 < 60 < distance(image, mean_style)
    assert distance(plain, mean_style) < distance(plain, mean_content)


# ----------------------------------------------------------------------------- blending
def test_style_blend_one_zero_equals_style_a_alone(tmp_path):
    blended, meta = transfer(
        tmp_path, "blend10", "--style", STYLE_A, "--style", STYLE_B, "--style-blend", "1", "0"
    )
    alone, _ = transfer(tmp_path, "alone", "--style", STYLE_A)
    assert meta["config"]["style_blend"] == [1.0, 0.0]
    assert [s["name"] for s in meta["inputs"]["styles"]] == [STYLE_A, STYLE_B]
    assert np.abs(blended.astype(int) - alone.astype(int)).max() <= 1


def test_style_blend_mixes_gram_targets_linearly(tmp_path):
    mixed, meta = transfer(
        tmp_path, "blend73", "--style", STYLE_A, "--style", STYLE_B, "--style-blend", "0.7", "0.3"
    )
    assert meta["config"]["style_blend"] == [0.7, 0.3]
    # the Gram targets behind it: the weighted mean of each style's own (API level)
    from nst_tf.models import build_extractor, min_input_side
    from nst_tf.transfer import _blend_weights, _style_targets

    layers = Config().style_layers
    extractor = build_extractor(list(layers))
    styles = [load(STYLE_A), load(STYLE_B)]
    config = Config(style_blend=(7, 3))  # weights are normalised: 7:3 is 0.7:0.3
    np.testing.assert_allclose(_blend_weights(config, 2), [0.7, 0.3])
    args = (layers, 48, min_input_side(list(layers)))
    both = _style_targets(extractor, styles, _blend_weights(config, 2), *args)
    a = _style_targets(extractor, styles[:1], np.ones(1), *args)
    b = _style_targets(extractor, styles[1:], np.ones(1), *args)
    for name in layers:
        np.testing.assert_allclose(both[name], 0.7 * a[name] + 0.3 * b[name], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- style scale
def test_style_scale_sets_the_size_of_the_style_image_behind_the_loss(tmp_path):
    """With --style-scale 2 the final style loss is the loss against the style image at
    twice the generated image's size, not at its own size."""
    image, meta = transfer(tmp_path, "scale2", "--style", STYLE_A, "--style-scale", "2", size=32)
    assert meta["config"]["style_scale"] == 2.0
    from nst_tf.models import build_extractor
    from nst_tf.optimize import make_objective

    config = Config.from_dict(meta["config"])
    extractor = build_extractor(list(config.style_layers))
    style = load(STYLE_A)

    def style_loss(scale):
        long_side = round(max(image.shape[:2]) * scale)
        factor = long_side / max(style.shape[:2])
        hw = tuple(max(1, round(n * factor)) for n in style.shape[:2])
        feats = extractor(preprocess(resize_image(style, size=hw)))
        targets = {k: gram_matrix(feats[k]).numpy() for k in config.style_layers}
        objective = make_objective(
            extractor,
            style_targets=targets,
            style_layers=config.style_layers,
            style_weight=config.style_weight,
        )
        return float(objective(preprocess(image.astype(np.float32)))[1]["style"][0])

    recorded = meta["final_losses"]["style"]
    assert style_loss(2.0) == pytest.approx(recorded, rel=0.1)
    assert abs(style_loss(1.0) - recorded) > 0.3 * recorded
