"""Colour preservation (nst_tf.color): YIQ, colour matching, luminance transfer."""

from pathlib import Path

import numpy as np
import pytest

from nst_tf import color
from nst_tf.images import load_image

ROOT = Path(__file__).resolve().parents[1]


def _stats(img):
    pixels = np.asarray(img, np.float64).reshape(-1, 3)
    return pixels.mean(0), np.cov(pixels, rowvar=False)


def _smooth_image(rng, mean, mix, shape=(40, 50)):
    """An image whose colours stay well inside 0-255 (no clipping): mean + mix @ uniform noise."""
    noise = rng.uniform(-np.sqrt(3), np.sqrt(3), (*shape, 3))  # unit variance, bounded
    return np.asarray(mean, np.float64) + noise @ np.asarray(mix, np.float64).T


@pytest.fixture
def source(rng):
    return _smooth_image(rng, [60, 90, 170], [[18, 5, 0], [3, 14, 4], [0, 6, 20]])


@pytest.fixture
def target(rng):
    return _smooth_image(rng, [170, 120, 80], [[20, 0, 6], [9, 12, 0], [4, 3, 10]])


def test_yiq_round_trip_and_known_values(rng):
    img = rng.uniform(0, 255, (7, 9, 3))
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(img)), img, atol=1e-9)
    white, grey, red = color.rgb_to_yiq(np.array([[255.0] * 3, [77.0] * 3, [255.0, 0, 0]]))
    np.testing.assert_allclose(white, [255, 0, 0], atol=1e-9)
    np.testing.assert_allclose(grey, [77, 0, 0], atol=1e-9)  # grey has no chroma
    np.testing.assert_allclose(red, [0.299 * 255, 0.596 * 255, 0.211 * 255])


@pytest.mark.parametrize("method", color.MATCH_METHODS)
def test_match_color_gives_the_target_mean_and_covariance(source, target, method):
    out = color.match_color(source, target, method=method)
    assert out.shape == source.shape and out.dtype == np.float32
    assert 0 < out.min() and out.max() < 255  # no clipping here, so the match must be exact
    (mu_out, cov_out), (mu_t, cov_t) = _stats(out), _stats(target)
    np.testing.assert_allclose(mu_out, mu_t, atol=1e-3)
    np.testing.assert_allclose(cov_out, cov_t, rtol=1e-4, atol=1e-2)
    # ... and the source's mean/covariance were different to begin with
    assert np.abs(_stats(source)[0] - mu_t).max() > 50


def test_match_color_is_an_affine_map_of_the_source(source, target):
    """Recolouring keeps the picture: out = A @ (x - mu_s) + mu_t for every pixel."""
    transform, mu_s, mu_t = color.color_transform(source, target)
    out = color.match_color(source, target)
    expected = (source.reshape(-1, 3) - mu_s) @ transform.T + mu_t
    np.testing.assert_allclose(out.reshape(-1, 3), expected, atol=1e-3)
    # the symmetric ("Image Analogies") map is a symmetric positive-definite matrix times one
    assert np.all(np.linalg.eigvals(transform).real > 0)


def test_match_color_of_an_image_with_itself_changes_nothing(source):
    np.testing.assert_allclose(color.match_color(source, source), source, atol=1e-2)


def test_match_color_on_real_images_moves_the_palette():
    """The coffee photo (red-brown) recoloured to Chelsea the cat: her mean and spread per channel."""
    style = load_image(ROOT / "data/src/content/coffee.jpg", long_side=96)
    content = load_image(ROOT / "data/src/content/chelsea.jpg", long_side=96)
    out = color.match_color(style, content)
    (mu_out, cov_out), (mu_c, cov_c), (mu_s, _) = _stats(out), _stats(content), _stats(style)
    assert np.abs(mu_s - mu_c).max() > 25  # the palettes differ to begin with
    np.testing.assert_allclose(mu_out, mu_c, atol=0.5)
    np.testing.assert_allclose(cov_out, cov_c, rtol=0.02, atol=5)


def test_match_color_of_a_grey_texture_takes_the_content_palette():
    """A grey style (rank-1 colour covariance) still gets the content's mean colour, finitely."""
    style = load_image(ROOT / "data/src/style/gravel.png", long_side=96)
    content = load_image(ROOT / "data/src/content/chelsea.jpg", long_side=96)
    out = color.match_color(style, content)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(_stats(out)[0], _stats(content)[0], atol=1.0)


def test_match_color_survives_a_flat_image(target):
    flat = np.full((8, 8, 3), 128.0)
    out = color.match_color(flat, target)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.broadcast_to(target.reshape(-1, 3).mean(0), out.shape), atol=1e-2)


def test_unknown_method_names_the_choices(source, target):
    with pytest.raises(ValueError, match="cholesky"):
        color.match_color(source, target, method="lab")


def test_to_luminance_is_grey_and_matches_the_reference(source, target):
    grey = color.to_luminance(source)
    assert grey.shape == source.shape and grey.dtype == np.float32
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    np.testing.assert_allclose(grey[..., 0], color.luminance(source), atol=1e-4)
    matched = color.to_luminance(source, reference=target)[..., 0]
    y_ref = color.luminance(target)
    assert matched.mean() == pytest.approx(y_ref.mean(), abs=1e-3)
    assert matched.std() == pytest.approx(y_ref.std(), rel=1e-4)


def test_combine_luminance_keeps_content_chroma_and_generated_luminance(target, rng):
    content = target
    generated = target + rng.uniform(-20, 20, target.shape[:2])[..., None]  # other Y, stays in gamut
    out = color.combine_luminance(generated, content)
    yiq_out, yiq_content = color.rgb_to_yiq(out), color.rgb_to_yiq(content)
    np.testing.assert_allclose(yiq_out[..., 1:], yiq_content[..., 1:], atol=1e-3)  # I, Q: the content's
    np.testing.assert_allclose(yiq_out[..., 0], color.luminance(generated), atol=1e-3)  # Y: the generated's


def test_combine_luminance_of_a_grey_result_recolours_it(target):
    """What the luminance transfer does: grey output + content chroma -> the content's colours."""
    grey = color.to_luminance(target)
    np.testing.assert_allclose(color.combine_luminance(grey, target), target, atol=1e-3)


def test_combine_luminance_refuses_different_sizes(source):
    with pytest.raises(ValueError, match="same size"):
        color.combine_luminance(source, source[:-1])
