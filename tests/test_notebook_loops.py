"""Notebooks 02 and 03 write the optimisation out by hand: 02 its texture loop (Adam on the pixels,
the Gram style loss), 03 an Adam loop and a scipy L-BFGS-B bridge. Their functions, taken from the
notebooks' own source, must agree with the package on a tiny real input (issue #11.2, #24.6). The
quick-mode run of each notebook asserts the same at its own settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import Config, data, losses, synthesize_texture, transfer_style
from nst_tf import optimize as optimize_module
from nst_tf.config import KNOWN_GOOD
from nst_tf.images import VGG_MEAN_BGR, preprocess
from nst_tf.models import build_extractor
from nst_tf.optimize import make_objective, optimize

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_style_transfer.ipynb"
TEXTURE_NOTEBOOK = NOTEBOOK.with_name("02_texture_synthesis.ipynb")
#: The hand-written pieces each notebook must define at top level.
LOOP_FUNCTIONS = ("combined_loss", "train_step", "total_loss", "bridge", "run_lbfgs")
TEXTURE_FUNCTIONS = ("texture_loss", "texture_step")
SIZE, STEPS = 40, 4
CONTENT_LAYERS = {"block4_conv2": 1.0}
STYLE_LAYERS = {f"block{b}_conv1": 1.0 for b in range(1, 6)}


def _definitions(notebook=NOTEBOOK, names=LOOP_FUNCTIONS) -> dict:
    """The notebook's top-level function definitions (by name), from its code cells' source."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    defs = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # the Colab cell (IPython magics)
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                assert node.name not in defs, f"{notebook.name} defines {node.name} twice"
                defs[node.name] = node
    missing = set(names) - set(defs)
    assert not missing, f"{notebook.name} no longer writes out {sorted(missing)}"
    return defs


@pytest.fixture(scope="module")
def lesson():
    """The notebook's functions, run in a namespace holding the globals they read (tiny images)."""
    import keras
    from scipy.optimize import minimize

    content_img, style_img = data.load("chelsea", SIZE), data.load("hubble_deep_field", SIZE)
    extractor = build_extractor([*CONTENT_LAYERS, *STYLE_LAYERS])
    content_feats = extractor(preprocess(content_img))
    style_grams = {k: losses.gram_matrix(v) for k, v in extractor(preprocess(style_img)).items()}
    shape = (1, *content_img.shape)
    low = -np.array(VGG_MEAN_BGR, "float32")
    ns = dict(
        np=np, tf=tf, keras=keras, losses=losses, minimize=minimize, extractor=extractor,
        content_feats=content_feats, style_grams=style_grams, CONTENT_LAYERS=CONTENT_LAYERS,
        STYLE_LAYERS=STYLE_LAYERS, shape=shape, SCALE=2.0 * np.sqrt(np.prod(shape)), LOW=low,
        HIGH=255.0 + low, start=preprocess(content_img).numpy(), content_img=content_img,
        style_img=style_img, x=tf.Variable(preprocess(content_img)), ADAM_LR=8.0,
    )  # fmt: skip
    ns["bounds"] = np.stack(
        [np.broadcast_to(low, shape).ravel(), np.broadcast_to(255 + low, shape).ravel()], 1
    )
    ns["bounds"] /= ns["SCALE"]
    ns["adam_optimizer"] = keras.optimizers.Adam(learning_rate=8.0, epsilon=1e-8)
    module = ast.Module(body=list(_definitions().values()), type_ignores=[])
    exec(compile(module, NOTEBOOK.name, "exec"), ns)
    ns["objective"] = make_objective(
        extractor, content_targets=content_feats, style_targets=style_grams,
        content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
        content_weight=1.0, style_weight=10.0, tv_weight=1e-4,
    )  # fmt: skip
    return ns


def test_notebook_loss_is_make_objective(lesson, rng):
    x = preprocess(rng.uniform(0, 255, lesson["content_img"].shape).astype("float32"))
    ours = sum(lesson["combined_loss"](x).values())
    np.testing.assert_allclose(ours.numpy(), lesson["objective"](x)[0].numpy(), rtol=1e-5)


def test_notebook_adam_loop_is_the_package_adam(lesson):
    for _ in range(STEPS):
        lesson["train_step"]()
    by_hand = float(lesson["total_loss"](lesson["x"])[0])
    package = optimize(lesson["objective"], lesson["start"], steps=STEPS, optimizer="adam", learning_rate=8.0)
    assert package.history.loss[-1] < package.history.loss[0]
    np.testing.assert_allclose(by_hand, package.history.loss[-1], rtol=1e-4)


def test_notebook_lbfgs_bridge_takes_transfer_styles_steps(lesson):
    x, after_step = lesson["run_lbfgs"](lesson["total_loss"], STEPS)
    result = transfer_style(
        lesson["content_img"], lesson["style_img"], size=SIZE, steps=STEPS, pyramid=(), progress=False,
        style_weight=10.0,  # notebook 03's weight (the package default is 3)
    )  # fmt: skip
    assert len(after_step) == len(result.history.loss) == STEPS
    np.testing.assert_allclose(after_step, result.history.loss, rtol=1e-4)
    assert (
        x.shape == lesson["shape"]
        and np.all(x >= lesson["LOW"] - 1e-3)
        and np.all(x <= lesson["HIGH"] + 1e-3)
    )


@pytest.fixture(scope="module")
def texture_lesson():
    """Notebook 02's texture loop, run in a namespace holding the globals it reads (a tiny style image)."""
    import keras

    style_img = data.load("hubble_deep_field", SIZE)
    extractor = build_extractor(STYLE_LAYERS)
    grams = {k: losses.gram_matrix(v) for k, v in extractor(preprocess(style_img)).items()}
    noise = np.random.default_rng(0).uniform(0, 255, style_img.shape).astype("float32")  # the notebook's
    texture = Config.for_task("texture")  # the notebook reads its weights from here
    ns = dict(
        np=np, tf=tf, keras=keras, losses=losses, optimize=optimize_module, extractor=extractor, grams=grams,
        STYLE_LAYERS=STYLE_LAYERS, STYLE_WEIGHT=texture.style_weight, TV_WEIGHT=texture.tv_weight,
        x=tf.Variable(preprocess(noise)), style_img=style_img,
        adam=keras.optimizers.Adam(learning_rate=KNOWN_GOOD["adam"]["learning_rate"], epsilon=1e-8),
    )  # fmt: skip
    module = ast.Module(
        body=list(_definitions(TEXTURE_NOTEBOOK, TEXTURE_FUNCTIONS).values()), type_ignores=[]
    )
    exec(compile(module, TEXTURE_NOTEBOOK.name, "exec"), ns)
    return ns


def test_notebook_texture_loop_is_the_package_texture(texture_lesson):
    before = [float(texture_lesson["texture_step"]()) for _ in range(STEPS)]  # the loss before each step
    by_hand = before[1:] + [float(texture_lesson["texture_loss"](texture_lesson["x"])[0])]  # after each
    # the package's texture defaults (weights, layers, the noise start of seed 0), with its Adam
    package = synthesize_texture(
        texture_lesson["style_img"], size=SIZE, steps=STEPS, optimizer="adam",
        learning_rate=KNOWN_GOOD["adam"]["learning_rate"], precision="float32", progress=False,
    )  # fmt: skip
    assert package.history.loss[-1] < before[0]
    np.testing.assert_allclose(by_hand, package.history.loss, rtol=1e-4)
