"""Robustness (#5): sizes too small for the chosen layers, and requests too large for memory.

Too small: the message names the image, the layer, the minimum short side
and the ``size`` that would work. Too large: ``nst_tf.resources`` estimates
the memory before any work and the run is refused with the largest size
that fits, for every entry point (transfer, texture, reconstruct, pyramid,
style_scale, CLI), instead of being killed by the OS half-way.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from nst_tf import resources, transfer
from nst_tf.errors import ConfigError
from nst_tf.images import scaled_size
from nst_tf.models import CONV_LAYERS, min_input_side

TINY = dict(steps=1, pyramid=(), weights="random", progress=False)
GIB = 2**30


def _img(h, w, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


@pytest.fixture
def no_work(monkeypatch):
    """Fail if the network is built: the size checks must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the network was built before the size was checked")

    monkeypatch.setattr(transfer, "build_extractor", forbidden)


# ----------------------------------------------------------------------------- too small
def test_minimum_side_per_layer_is_the_pooling_stride():
    assert [min_input_side([name]) for name in CONV_LAYERS] == [1] * 2 + [2] * 2 + [4] * 4 + [8] * 4 + [
        16
    ] * 4


@pytest.mark.parametrize(
    "layers, shape, size, minimum, works_from",
    [
        ({"block5_conv1": 1.0}, (20, 200), 32, 16, 155),  # 10:1 panorama
        ({"block4_conv2": 1.0}, (20, 200), 32, 8, 75),
        ({"block3_conv1": 1.0}, (16, 240), 32, 4, 53),
    ],
)
def test_too_small_for_the_layers_says_the_minimum_and_the_size_that_works(
    layers, shape, size, minimum, works_from, no_work
):
    with pytest.raises(ConfigError) as info:
        transfer.reconstruct_content(_img(*shape), layers, size=size, **TINY)
    message = str(info.value)
    assert "\n" not in message and "array of shape" in message
    assert f"at least {minimum} px" in message and f"size >= {works_from}" in message
    assert max(layers, key=CONV_LAYERS.index) in message


def test_the_suggested_size_really_works(monkeypatch):
    wide = _img(20, 200)
    with pytest.raises(ConfigError, match=r"size >= 75"):
        transfer.reconstruct_content(wide, "block4_conv2", size=74, **TINY)
    result = transfer.reconstruct_content(wide, "block4_conv2", size=75, **TINY)
    assert result.image.shape == (8, 75, 3) and result.stopped == "completed"


def test_shallow_layers_accept_small_images():
    result = transfer.reconstruct_content(_img(20, 200), "block1_conv1", size=32, **TINY)
    assert result.image.shape == (3, 32, 3)


def test_texture_checks_the_style_image(no_work):
    with pytest.raises(ConfigError, match="too small"):
        transfer.synthesize_texture(_img(20, 200), size=32, **TINY)


def test_pyramid_stages_below_the_minimum_are_skipped():
    result = transfer.transfer_style(
        _img(32, 32), _img(32, 32, 1), size=32, steps=1, pyramid=((0.25, 3), (0.5, 1)),
        weights="random", progress=False,
    )  # fmt: skip
    assert [stage["size"] for stage in result.timings["stages"]] == [[16, 16], [32, 32]]  # 8 px skipped


def test_elongated_style_image_is_enlarged_until_the_layers_fit():
    """A 20:1 style image at size 32 would be 2 px high: VGG's pooling crashed before #5."""
    result = transfer.transfer_style(_img(32, 32), _img(16, 320), size=32, **TINY)
    assert result.stopped == "completed"
    assert min(transfer._style_hw((16, 320), 32, 16)) == 16  # enlarged to 310 px long, not more


# ----------------------------------------------------------------------------- too large
@pytest.fixture
def two_gib(monkeypatch):
    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "2")
    return 2 * GIB


@pytest.mark.parametrize(
    "call",
    [
        lambda: transfer.transfer_style(_img(30, 40), _img(30, 40), size=6000, **TINY),
        lambda: transfer.transfer_style(_img(30, 40), _img(30, 40), size=6000, steps=1,
                                        pyramid=((0.25, 5), (0.5, 5)), weights="random"),
        lambda: transfer.synthesize_texture(_img(30, 40), size=6000, **TINY),
        lambda: transfer.reconstruct_content(_img(30, 40), "block5_conv1", size=6000, **TINY),
    ],
    ids=["transfer", "transfer-pyramid", "texture", "reconstruct"],
)  # fmt: skip
def test_too_large_is_refused_before_any_work_with_the_size_that_fits(call, two_gib, no_work):
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "GiB" in message and "6000x4500 px" in message
    side = int(message.split("use --size ")[1].split()[0])
    assert 16 <= side < 6000
    deepest = ["block5_conv1"]  # the deepest layer all four runs use
    assert resources.estimate_bytes(scaled_size((30, 40), side), deepest) <= two_gib
    assert resources.estimate_bytes(scaled_size((30, 40), side + 8), deepest) > two_gib


def test_huge_style_scale_is_refused_before_any_work(two_gib, no_work):
    with pytest.raises(ConfigError) as info:
        transfer.transfer_style(_img(30, 40), _img(30, 40), size=256, style_scale=40.0, **TINY)
    message = str(info.value)
    assert "\n" not in message and "style_scale" in message and "--style-scale" in message


def test_nothing_fits_says_to_free_memory(monkeypatch, no_work):
    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "0.5")  # less than TensorFlow itself needs
    with pytest.raises(ConfigError, match="free some memory"):
        transfer.transfer_style(_img(30, 40), _img(30, 40), size=64, **TINY)


def test_bad_memory_limit_variable_is_a_config_error(monkeypatch):
    monkeypatch.setenv("NST_MEMORY_LIMIT_GB", "lots")
    with pytest.raises(ConfigError, match="NST_MEMORY_LIMIT_GB"):
        resources.check_memory((64, 64), ["block1_conv1"])


def test_without_a_limit_the_budget_is_what_the_os_has(monkeypatch):
    monkeypatch.delenv("NST_MEMORY_LIMIT_GB", raising=False)
    assert 0 < resources.memory_budget() <= resources.available_bytes()
    with pytest.raises(ConfigError, match="use --size"):
        resources.check_memory((10**6, 10**6), CONV_LAYERS)


def test_cli_refuses_a_huge_size_in_one_line(two_gib, capsys, tmp_path, monkeypatch, no_work):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    code, out, err = run_cli(
        capsys, "transfer", "--size", "20000", "--steps", "1", "--weights", "random", "--quiet"
    )
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: a 20000x") and "use --size" in lines[0]
    assert not list((tmp_path / "out").rglob("*.png"))


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    layer=st.sampled_from(CONV_LAYERS),
    budget_gib=st.floats(1.6, 64),
    batch=st.integers(1, 4),
)
def test_largest_side_is_the_largest_that_fits(h, w, layer, budget_gib, batch):
    budget = budget_gib * GIB
    side = resources.largest_side((h, w), [layer], budget, batch)

    def need(s):  # sizes as every run scales them: the one images.scaled_size rule
        return resources.estimate_bytes(scaled_size((h, w), s), [layer], batch)

    if side == 0:  # not even one pixel fits
        assert need(1) > budget
        return
    assert need(side) <= budget
    if side < 2**19:
        assert need(side + 1) > budget


def test_estimate_grows_with_pixels_depth_and_batch():
    small = resources.estimate_bytes((100, 100), ["block1_conv1"])
    assert resources.estimate_bytes((200, 200), ["block1_conv1"]) > small
    assert resources.estimate_bytes((100, 100), ["block5_conv1"]) > small
    assert resources.estimate_bytes((100, 100), ["block1_conv1"], batch=4) > small
