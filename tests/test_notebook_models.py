"""Notebook 01 writes VGG19's multi-output model by hand; it must agree with ``models.build_extractor``.

The notebook builds ``keras.applications.VGG19(include_top=False, weights=None)``,
loads the weights file that ``nst_tf.weights`` resolves, and defines
``vgg19_features(vgg, layers)``: a ``keras.Model`` whose outputs are a dict keyed
by layer name. Here that function is taken from the notebook's source (by AST,
as ``tests/test_notebooks.py`` does for the loss functions) and run on a bundled
image, so the lesson and the package cannot drift apart.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_content_reconstruction.ipynb"
FUNCTION = "vgg19_features"


def _code() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def _notebook_function():
    """The notebook's ``vgg19_features``, compiled on its own (it may use only ``keras``)."""
    found = []
    for source in _code():
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell with IPython magics (the Colab cell)
            continue
        found += [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == FUNCTION]
    assert len(found) == 1, f"{NOTEBOOK.name} should define {FUNCTION} exactly once, found {len(found)}"
    import keras

    namespace = {"keras": keras}
    exec(compile(ast.Module(body=found, type_ignores=[]), NOTEBOOK.name, "exec"), namespace)
    return namespace[FUNCTION]


def test_notebook_builds_vgg19_from_keras_applications():
    code = "\n".join(_code())
    assert "keras.applications.VGG19(include_top=False, weights=None)" in code
    assert "weights.resolve_vgg19_weights()" in code and "load_weights(info.path)" in code
    assert "models.build_extractor" in code and "assert_allclose" in code  # the notebook's own check


def test_hand_written_model_matches_build_extractor():
    import keras

    from nst_tf import data, images, models, weights

    vgg19_features = _notebook_function()
    vgg = keras.applications.VGG19(include_top=False, weights=None)
    vgg.load_weights(weights.resolve_vgg19_weights(verbose=False).path)
    layers = ["block1_conv1", "block3_conv2", "block5_conv1"]
    hand = vgg19_features(vgg, layers)
    assert isinstance(hand, keras.Model)
    x = images.preprocess(data.load("astronaut", 48))
    got, want = hand(x), models.build_extractor(layers)(x)
    assert isinstance(got, dict) and sorted(got) == sorted(layers), (
        f"outputs {type(got).__name__} {list(got)}"
    )
    for name in layers:
        assert got[name].shape == want[name].shape, name
        scale = float(np.max(np.abs(want[name])))
        assert scale > 0, f"{name}: all-zero features"
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
