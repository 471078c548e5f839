"""Config validation happens before any work, with one-line errors."""

import json

import pytest

from nst_tf.config import Config
from nst_tf.errors import ConfigError


def test_config_round_trips_through_json():
    cfg = Config(style_weight=0.5, pyramid=((0.25, 10), (0.5, 20)), style_blend=(0.3, 0.7), size=300)
    again = Config.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["pyramid"] == [[0.25, 10], [0.5, 20]]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"style_layers": {"block9_conv1": 1.0}}, "block1_conv1"),  # lists valid names
        ({"content_layers": {"conv4_2": 1.0}}, "unknown VGG19 layer"),
        ({"style_weight": -1.0}, "style_weight"),
        ({"content_weight": float("nan")}, "content_weight"),
        ({"steps": 0}, "steps"),
        ({"optimizer": "rmsprop"}, "lbfgs"),
        ({"init": "zeros"}, "noise"),
        ({"pyramid": ((2.0, 10),)}, "pyramid"),
        ({"size": 4}, "size"),
        ({"style_blend": (0.0, 0.0)}, "style_blend"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(change, words):
    with pytest.raises(ConfigError) as err:
        Config(**change).validate()
    message = str(err.value)
    assert words in message and "\n" not in message


def test_unknown_keys_in_a_sidecar_are_named():
    with pytest.raises(ConfigError, match="colour"):
        Config.from_dict({"colour": "red"})


def test_stages_put_the_pyramid_before_full_size():
    assert Config(steps=7, pyramid=((0.5, 3), (0.75, 0))).stages() == [(0.5, 3), (1.0, 7)]
