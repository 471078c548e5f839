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
    assert set(metrics.report(content_small, content=content_small)) == {
        "ssim",
        "psnr_db",
        "edge_correlation",
    }


def test_edge_correlation_follows_the_outlines_of_the_reference(style_small, rng):
    from scipy import ndimage

    from nst_tf.data import BUNDLED_DIR
    from nst_tf.images import load_image

    photo = load_image(BUNDLED_DIR / "content" / "chelsea.jpg", long_side=128)
    shifted = np.roll(photo, 1, axis=1)  # the same outlines, one pixel off
    blurred = ndimage.gaussian_filter(photo, (1.0, 1.0, 0))
    noise = rng.uniform(0, 255, photo.shape)
    assert metrics.edge_correlation(photo, photo) == pytest.approx(1.0, abs=1e-9)
    assert metrics.edge_correlation(shifted, photo) > 0.5
    assert metrics.edge_correlation(blurred, photo) > 0.7
    assert abs(metrics.edge_correlation(noise, photo)) < 0.15
    assert abs(metrics.edge_correlation(style_small, photo)) < 0.3  # another picture's edges
    # brightness scaling scales the edge maps, not their correlation (no pixel clips here)
    assert metrics.edge_correlation(photo * 0.5, photo) == pytest.approx(1.0, abs=1e-6)
    assert metrics.edge_correlation(shifted * 0.5, photo) == pytest.approx(
        metrics.edge_correlation(shifted, photo), abs=1e-6
    )
    # no edges at all: 0, not a division by zero
    assert metrics.edge_correlation(np.full_like(photo, 128.0), photo) == 0.0


def test_edge_correlation_resizes_the_reference_to_the_image(content_small):
    photo = content_small.astype(np.float32)
    big = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)  # the same picture at twice the size
    assert metrics.edge_correlation(photo, big) > 0.9
    assert metrics.edge_correlation(photo, big) == pytest.approx(
        metrics.edge_correlation(photo, photo), abs=0.1
    )
