"""nst_tf.metrics on real small images: known values and orderings."""

import math

import numpy as np
import pytest

from nst_tf import metrics


def test_ssim_and_psnr_of_identical_images(content_small):
    assert metrics.ssim(content_small, content_small) == pytest.approx(1.0, abs=1e-6)
    assert math.isinf(metrics.psnr(content_small, content_small))


def test_psnr_matches_its_definition_for_a_known_error(content_small):
    img = content_small.astype(np.float32)
    shifted = np.clip(img + 10.0, 0, 255)
    mse = float(np.mean((shifted - img) ** 2))
    assert metrics.psnr(shifted, img) == pytest.approx(10 * math.log10(255.0**2 / mse), abs=0.01)
    assert metrics.ssim(shifted, img) < 1.0


@pytest.mark.slow
def test_style_distance_is_zero_for_the_style_and_orders_by_similarity(style_small, rng):
    style = style_small.astype(np.float32)
    noisy = np.clip(style + rng.normal(0, 20, style.shape), 0, 255)
    noise = rng.uniform(0, 255, style.shape)
    own, near, far = (metrics.style_distance(x, style) for x in (style, noisy, noise))
    assert own == pytest.approx(0.0, abs=1e-6)
    assert 0 < near < far
    # each of the 5 layers is a relative error (about 1 for an unrelated image), not raw activations
    assert 0.5 < far < 50


def test_report_has_the_metrics_that_apply(content_small):
    assert set(metrics.report(content_small, content=content_small)) == {"ssim", "psnr_db"}
