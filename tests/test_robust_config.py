"""Robustness (#5): every bad setting is refused at config time, in one line, before any work.

Covers the Python API (``Config``, ``transfer_style`` keyword overrides,
``Config.from_dict`` for sidecars) and the command line (run in-process with
``nst_tf.cli.main``; ``tests/test_cli.py`` runs it in a subprocess).
"""

from __future__ import annotations

import json

import pytest

from nst_tf import Config, cli, transfer
from nst_tf.errors import ConfigError
from nst_tf.models import CONV_LAYERS
from nst_tf.optimize import optimize

# (Config change, words the one-line message must contain)
BAD_SETTINGS = [
    ({"style_layers": {"block9_conv1": 1.0}}, "block9_conv1"),
    ({"content_layers": {"conv4_2": 1.0}}, "unknown VGG19 layer"),
    ({"content_layers": ["block4_conv2"]}, "dict of layer name -> weight"),
    ({"style_layers": "block1_conv1"}, "dict of layer name -> weight"),
    ({"style_layers": {"block1_conv1": -1.0}}, "style_layers['block1_conv1']"),
    ({"style_weight": -1.0}, "style_weight"),
    ({"content_weight": float("nan")}, "content_weight"),
    ({"tv_weight": float("inf")}, "tv_weight"),
    ({"content_weight": "1"}, "content_weight"),
    ({"steps": 0}, "steps"),
    ({"steps": -5}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": True}, "steps"),
    ({"optimizer": "rmsprop"}, "lbfgs, adam, sgd"),
    ({"optimizer": "LBFGS"}, "lbfgs, adam, sgd"),
    ({"init": "zeros"}, "content, style, noise"),
    ({"preserve_color": "yes"}, "luminance"),
    ({"pooling": "min"}, "max"),
    ({"activation": "tanh"}, "relu"),
    ({"task": "paint"}, "transfer"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"lr_decay": -0.5}, "lr_decay"),
    ({"pyramid": ((2.0, 10),)}, "pyramid"),
    ({"pyramid": (("a", 3),)}, "pyramid"),
    ({"pyramid": ((0.5,),)}, "pyramid"),
    ({"pyramid": ((0.5, -1),)}, "pyramid"),
    ({"pyramid": ((0.5, 2.5),)}, "pyramid"),
    ({"pyramid": ((0.5, float("inf")),)}, "pyramid"),
    ({"pyramid": 5}, "pyramid"),
    ({"size": 4}, "size"),
    ({"weights": "/no/such/vgg19.h5"}, "vgg19.h5"),
    ({"weights": 123}, "weights"),
    ({"size": "512"}, "size"),
    ({"size": 512.0}, "size"),
    ({"seed": -1}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"seed": 2**40}, "seed"),
    ({"frame_every": -1}, "frame_every"),
    ({"style_scale": 0.0}, "style_scale"),
    ({"style_blend": (0.0, 0.0)}, "style_blend"),
    ({"style_blend": (1.0, -1.0)}, "style_blend"),
    ({"style_blend": 5}, "style_blend"),
    ({"content_layers": {}}, "content_layers"),
    ({"style_layers": {}}, "style_layers"),
]


def _one_line(message: str) -> str:
    assert message and "\n" not in message, repr(message)
    return message


@pytest.mark.parametrize("change, words", BAD_SETTINGS, ids=[repr(c)[:40] for c, _ in BAD_SETTINGS])
def test_bad_setting_is_a_one_line_config_error(change, words):
    with pytest.raises(ConfigError) as info:
        Config(**change).validate()
    assert words in _one_line(str(info.value))


def test_unknown_layer_lists_every_valid_name():
    with pytest.raises(ConfigError) as info:
        Config(style_layers={"block1_conv1": 1.0, "conv1_1": 1.0}).validate()
    message = str(info.value)
    assert "conv1_1" in message and all(name in message for name in CONV_LAYERS)


def test_good_settings_still_pass():
    Config().validate()
    Config(pyramid=((0.25, 50), (0.5, 100.0)), seed=2**32 - 1, steps=1, size=16).validate()
    Config(task="texture", content_weight=0.0, content_layers={}, style_blend=[1, 0]).validate()


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a run gets as far as loading an image or building the network."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(transfer, "_load", forbidden)
    monkeypatch.setattr(transfer, "build_extractor", forbidden)


@pytest.mark.parametrize(
    "call",
    [
        lambda: transfer.transfer_style("chelsea", "brick", steps=0),
        lambda: transfer.transfer_style("chelsea", "brick", optimizer="rmsprop"),
        lambda: transfer.transfer_style("chelsea", "brick", style_layers={"block6_conv1": 1.0}),
        lambda: transfer.transfer_style("chelsea", "brick", style_weight=float("nan")),
        lambda: transfer.transfer_style("chelsea", "brick", init="zeros"),
        lambda: transfer.transfer_style("chelsea", "brick", stye_weight=1.0),  # misspelt keyword
        lambda: transfer.synthesize_texture("brick", size=8),
        lambda: transfer.synthesize_texture("brick", seed=-1),
        lambda: transfer.reconstruct_content("chelsea", "block9_conv9"),
        lambda: transfer.reconstruct_content("chelsea", content_weight=-1.0),
        lambda: transfer.transfer_style("chelsea", []),
        lambda: transfer.synthesize_texture([]),
        lambda: transfer.transfer_style("chelsea", ["brick", "grass"], style_blend=(1.0,)),
    ],
    ids=[
        "steps0", "optimiser", "layer", "nan-weight", "init", "misspelt-kwarg",
        "tiny-size", "negative-seed", "reconstruct-layer", "reconstruct-weight",
        "no-style", "texture-without-style", "blend-count",
    ],
)  # fmt: skip
def test_api_refuses_bad_settings_before_any_work(call, no_work):
    with pytest.raises(ConfigError) as info:
        call()
    _one_line(str(info.value))


def test_misspelt_keyword_is_named():
    with pytest.raises(ConfigError, match="stye_weight"):
        transfer.transfer_style("chelsea", "brick", stye_weight=1.0)


def test_optimize_refuses_unknown_optimizer():
    with pytest.raises(ConfigError, match="lbfgs, adam, sgd"):
        optimize(lambda x: (x, {}), [[[[0.0, 0.0, 0.0]]]], steps=1, optimizer="rmsprop")


@pytest.mark.parametrize(
    "data, words",
    [
        ([1, 2], "JSON object"),
        ("steps=3", "JSON object"),
        ({"colour": "red"}, "colour"),
        ({"pyramid": 5}, "pyramid"),
        ({"style_blend": 3}, "style_blend"),
        ({"steps": "ten"}, "steps"),
    ],
)
def test_sidecars_with_bad_content_are_config_errors(data, words):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data).validate()
    assert words in _one_line(str(info.value))


# ----------------------------------------------------------------------------- CLI
def run_cli(capsys, *argv):
    """``python -m nst_tf ARGV`` in-process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _bad_config_files(tmp_path):
    files = {
        "list.json": "[1, 2]",
        "badtypes.json": json.dumps({"config": {"tv_weight": "heavy"}}),
        "unknown.json": json.dumps({"colour": 1}),
        "notjson.json": "this is { not json",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "afile").write_text("x")


CLI_CASES = [
    (["--steps", "0"], "steps"),
    (["--steps", "many"], "--steps"),
    (["--size", "-5"], "size"),
    (["--size", "abc"], "--size"),
    (["--optimizer", "rmsprop"], "lbfgs"),
    (["--init", "zeros"], "noise"),
    (["--content-layers", "block4_conv2:-1"], "content_layers"),
    (["--content-layers", "block4_conv2:nan"], "content_layers"),
    (["--content-layers", "block4_conv2:heavy"], "name:number"),
    (["--style-layers", "block1_conv1,conv9_9"], "block5_conv4"),
    (["--style-layers", ""], "style_layers"),
    (["--style-weight", "-1"], "style_weight"),
    (["--style-weight", "inf"], "style_weight"),
    (["--lr", "nan"], "learning_rate"),
    (["--seed", "-3"], "seed"),
    (["--frame-every", "-1"], "frame_every"),
    (["--pyramid", "0.5"], "scale:steps"),
    (["--pyramid", "2:10"], "pyramid"),
    (["--style-blend", "1", "2"], "one per style"),
    (["--style-scale", "0"], "style_scale"),
    (["--pooling", "min"], "max"),
    (["-o", "result.txt"], ".png"),
    (["-o", "{tmp}/afile/x.png"], "cannot write results"),
    (["--config", "{tmp}/missing.json"], "cannot read config"),
    (["--config", "{tmp}/notjson.json"], "cannot read config"),
    (["--config", "{tmp}/list.json"], "JSON object"),
    (["--config", "{tmp}/badtypes.json"], "tv_weight"),
    (["--config", "{tmp}/unknown.json"], "colour"),
    (["--weights", "{tmp}/missing.h5"], "missing.h5"),
    (["--bogus-flag"], "--bogus-flag"),
]


@pytest.mark.parametrize("argv, words", CLI_CASES, ids=[" ".join(a)[:40] for a, _ in CLI_CASES])
def test_cli_bad_setting_prints_one_line_and_exits_2(argv, words, tmp_path, capsys, no_work, monkeypatch):
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path / "out"))
    _bad_config_files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    base = ["transfer", "--size", "32", "--steps", "1", "--pyramid", "none", "--quiet"]
    if "--weights" not in argv:
        base += ["--weights", "random"]
    code, out, err = run_cli(capsys, *base, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert words in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_cli_flag_errors_mention_help(capsys):
    code, _, err = run_cli(capsys, "transfer", "--optimizer", "rmsprop")
    assert code == 2 and "--help" in err and "usage:" not in err
