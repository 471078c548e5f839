"""Config validation happens before any work, with one-line errors."""

import io
import json

import numpy as np
import pytest
from conftest import CLI_TINY, run_cli
from conftest import one_line as _one_line
from conftest import png_bytes as _png

from nst_tf import images, transfer
from nst_tf.config import MAX_STEPS, Config
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


# ----------------------------------------------------------------------------- one source of settings (#12.5)
def test_for_task_applies_the_task_defaults_then_the_overrides():
    from nst_tf.config import TASK_DEFAULTS

    assert Config.for_task("transfer") == Config()
    texture = Config.for_task("texture", size=128)
    assert texture.task == "texture" and texture.size == 128
    for name, value in TASK_DEFAULTS["texture"].items():
        assert getattr(texture, name) == value
    reconstruct = Config.for_task("reconstruct", steps=7)
    assert (reconstruct.init, reconstruct.style_weight, reconstruct.tv_weight) == ("noise", 0.0, 1e-5)
    assert reconstruct.steps == 7 and reconstruct.pyramid == ()
    with pytest.raises(ConfigError, match="unknown task"):
        Config.for_task("painting")
    with pytest.raises(ConfigError, match="stpes.*valid settings"):
        Config.for_task("texture", stpes=5)


def test_a_config_for_another_task_keeps_its_changes_and_takes_the_tasks_defaults():
    mine = Config(size=96, seed=3, style_weight=50.0)
    texture = mine.as_task("texture")
    assert (texture.task, texture.size, texture.seed, texture.style_weight) == ("texture", 96, 3, 50.0)
    assert (texture.init, texture.pyramid, texture.steps) == ("noise", (), 100)
    assert mine.changes() == {"size": 96, "seed": 3, "style_weight": 50.0}
    made_for_it = Config.for_task("reconstruct", init="content")
    assert made_for_it.as_task("reconstruct") is made_for_it  # nothing re-based


def test_reconstruct_content_no_longer_ignores_the_task_defaults_of_a_given_config(monkeypatch):
    from nst_tf import transfer

    monkeypatch.setattr(transfer, "run", lambda config, *args, **kwargs: config)  # what would run
    config = transfer.reconstruct_content("chelsea", "block2_conv1", config=Config(size=64, seed=3))
    assert (config.task, config.init, config.style_weight, config.pyramid) == (
        "reconstruct",
        "noise",
        0.0,
        (),
    )
    assert (config.size, config.seed, config.content_layers) == (64, 3, {"block2_conv1": 1.0})
    assert transfer.reconstruct_content("chelsea") == Config.for_task("reconstruct")
    texture = transfer.synthesize_texture("brick", config=Config(steps=5), tv_weight=1e-6)
    assert (texture.task, texture.steps, texture.tv_weight, texture.content_weight) == (
        "texture",
        5,
        1e-6,
        0.0,
    )


def _settings_actions(parser, command):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    group = next(g for g in sub._action_groups if g.title.startswith("settings"))
    return {a.dest: a for a in group._group_actions}


@pytest.mark.parametrize("command", ["transfer", "texture", "reconstruct"])
def test_cli_flags_choices_and_defaults_come_from_config(command, capsys):
    import dataclasses

    from nst_tf import cli

    parser = cli.build_parser()
    actions = _settings_actions(parser, command)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    assert set(actions) == {name for name, f in fields.items() if command in f.metadata["cli"]}
    defaults = Config.for_task(command)
    for name, action in actions.items():
        help_text = fields[name].metadata["help"]
        assert help_text and "\n" not in help_text and action.help.startswith(help_text)
        assert action.choices == fields[name].metadata["choices"]
        if getattr(defaults, name) is not None:
            assert f"(default {cli._show_default(getattr(defaults, name))})" in action.help
    assert ("(default 10)" if command == "transfer" else "(default 100)") in actions["steps"].help
    args = parser.parse_args([command])
    assert cli._config_from_args(args) == defaults  # no flags: exactly the task's defaults
    args = parser.parse_args([command, "--size", "96", "--pyramid", "0.5:3", "--seed", "4"])
    assert cli._config_from_args(args) == Config.for_task(command, size=96, pyramid=((0.5, 3),), seed=4)


def test_every_config_field_has_a_one_line_help():
    import dataclasses

    for f in dataclasses.fields(Config):
        assert 10 < len(f.metadata["help"]) < 100 and "\n" not in f.metadata["help"], f.name


def test_cli_imports_no_private_names_from_the_package():
    import ast
    from pathlib import Path

    from nst_tf import cli

    tree = ast.parse(Path(cli.__file__).read_text())
    private = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nst_tf")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


# -------------------------------- robustness (from the round-two review, issue #13): config files and numbers
def test_pathologically_nested_config_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli(capsys, "transfer", "--config", str(deep), *CLI_TINY)
    assert code == 2
    _one_line(err, "nested too deeply")
    nested_value = tmp_path / "nested_value.json"
    nested_value.write_text('{"style_blend": ' + "[" * 900 + "]" * 900 + "}")
    code, _, err = run_cli(capsys, "transfer", "--config", str(nested_value), *CLI_TINY)
    assert code == 2
    _one_line(err, "style_blend")
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    "argv, words",
    [(["--steps", str(10**30)], f"at most {MAX_STEPS:,}"), (["--size", "100000000"], "65,536"),
     (["--frame-every", str(10**12)], "frame_every"), (["--lr", "1e300"], "at most 1e+06"),
     (["--pyramid", f"0.5:{10**12}"], "steps <=")],
)  # fmt: skip
def test_numbers_past_any_sane_bound_are_one_line(argv, words, capsys, tmp_path):
    code, _, err = run_cli(capsys, "transfer", *CLI_TINY, *argv)
    assert code == 2
    _one_line(err, words.replace("at most", "") if "at most" in words else words)
    assert not (tmp_path / "output").exists()


def test_numpy_integers_for_size_steps_seed_are_accepted(tmp_path):
    result = transfer.synthesize_texture(
        _png_array(), size=np.int64(32), steps=np.int32(2), seed=np.uint16(3), pyramid=(), weights="random",
        frame_every=np.int64(1), progress=False,
    )  # fmt: skip
    assert result.image.shape[:2] == (27, 32) and result.config.seed == 3 and type(result.config.size) is int
    meta = json.loads(result.save(tmp_path / "t.png").with_suffix(".json").read_text())
    assert meta["config"]["steps"] == 2 and meta["seed"] == 3


def _png_array():
    return images.load_image(io.BytesIO(_png()))
