"""The notebooks: committed clean, run top to bottom, and teach the package's functions.

(a) every ``notebooks/*.ipynb`` is committed without outputs and normalised
    (``scripts/notebook_tools.py check``);
(b) every notebook executes top to bottom in quick mode (``NST_QUICK=1``: tiny
    images, few steps) in a real Jupyter kernel, from ``notebooks/``, writing
    only into a temporary output folder, offline and without NST_EXTRA_IMAGES
    (as in CI: a painting that cannot be found must fall back, not fail);
(c) the loss functions a notebook writes out inline (``gram_matrix``,
    ``content_loss``, ...) agree with their ``nst_tf.losses`` counterparts on
    random tensors, so the lesson and the package cannot drift apart.

New notebooks are picked up by the glob; nothing here needs editing.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Generous: one cell of a quick-mode notebook takes seconds on a 2-core CPU.
CELL_TIMEOUT_S = 600

#: Functions a notebook may define inline, the nst_tf function each must match,
#: and the shapes of the random tensors they are called with.
TAUGHT = {
    "gram_matrix": [(2, 5, 7, 6)],
    "content_loss": [(2, 5, 7, 6), (2, 5, 7, 6)],
    "style_layer_loss": [(2, 5, 7, 6), (1, 6, 6)],
    "total_variation_loss": [(2, 9, 11, 3)],
    "mean_square": [(2, 4, 4, 3)],
}
#: What each teaching notebook must write out itself (so test (c) is never empty for them).
MUST_TEACH = {
    "01_content_reconstruction": {"content_loss", "total_variation_loss"},
    "02_texture_synthesis": {"gram_matrix", "style_layer_loss"},
}


def _notebook_tools():
    return load_script("notebook_tools")


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


# ----------------------------------------------------------------------------- (a) committed clean
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_without_outputs_and_normalised(path):
    found = _notebook_tools().problems(path)
    assert not found, (
        f"{path.name}: {', '.join(found)} — run: python scripts/notebook_tools.py normalize {path.relative_to(ROOT)}"
    )


def test_normalize_strips_outputs_and_volatile_metadata(tmp_path):
    tools = _notebook_tools()
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {"collapsed": True}, "source": "# Title"},
            {
                "cell_type": "code",
                "execution_count": 7,
                "metadata": {"tags": ["parameters"], "ExecuteTime": {"end_time": "x"}},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
                "source": "print('hi')\nx = 1",
            },
        ],
        "metadata": {
            "kernelspec": {"name": "venv", "display_name": "venv"},
            "language_info": {"version": "3.11"},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    path = tmp_path / "demo.ipynb"
    path.write_text(json.dumps(nb))
    assert tools.problems(path)
    assert tools.normalize(path) is True
    colab_only = tools.colab_problems(json.loads(path.read_text()), path.name)
    assert colab_only and tools.problems(path) == colab_only  # normalised; only the Colab cell is missing
    assert tools.normalize(path) is False  # idempotent
    assert tools.colab(path) is True
    assert tools.problems(path) == []
    clean = json.loads(path.read_text())
    code = clean["cells"][-1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {"tags": ["parameters"]}
    assert code["source"] == ["print('hi')\n", "x = 1"]
    assert clean["metadata"]["kernelspec"]["name"] == "python3"
    assert tools.main(["check", str(path)]) == 0


# ----------------------------------------------------------------------------- (b) runs in quick mode
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("NST_QUICK", "1")
    monkeypatch.setenv("NST_PROGRESS", "0")
    monkeypatch.setenv("NST_OUTPUT_DIR", str(tmp_path))
    # what CI sees: bundled images only and no downloads, so paintings must fall back cleanly
    monkeypatch.setenv("NST_OFFLINE", "1")
    monkeypatch.delenv("NST_EXTRA_IMAGES", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",  # jupyter_client starts it with this interpreter (the venv's)
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},  # cwd = notebooks/, as for a reader
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.0f} s in quick mode")
    errors = _notebook_tools().errors(nb)
    assert not errors, f"{path.name} produced errors: {errors}"
    assert not (NOTEBOOK_DIR / "data").exists(), (
        "a notebook wrote into notebooks/data: use nst_tf.data.output_dir()"
    )


# ----------------------------------------------------------------------------- (c) lesson == package
def _code_cells(path):
    """Each code cell's source as plain Python (IPython magics translated, unparsable cells dropped)."""
    from IPython.core.inputtransformer2 import TransformerManager

    nb = json.loads(path.read_text(encoding="utf-8"))
    transform = TransformerManager().transform_cell
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        try:
            yield ast.parse(transform(source))
        except SyntaxError:
            continue


def taught_functions(path) -> dict:
    """{name: function} for the TAUGHT functions ``path`` defines at top level.

    They are executed together with all of the notebook's top-level imports
    and nothing else (one may call another, as ``style_layer_loss`` calls
    ``gram_matrix``): a taught function must not depend on other notebook state.
    """
    imports, defs = [], {}
    for tree in _code_cells(path):
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append(node)
            elif isinstance(node, ast.FunctionDef) and node.name in TAUGHT:
                assert node.name not in defs, f"{path.name} defines {node.name} twice"
                defs[node.name] = node
    namespace: dict = {"__name__": f"notebook_{path.stem}"}
    module = ast.Module(body=imports + list(defs.values()), type_ignores=[])
    exec(compile(module, path.name, "exec"), namespace)
    return {name: namespace[name] for name in defs}


def _pairs():
    pairs = []
    for path in NOTEBOOKS:
        names = set(MUST_TEACH.get(path.stem, set()))
        for tree in _code_cells(path):
            names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in TAUGHT}
        pairs += [(path, name) for name in sorted(names)]
    return pairs


PAIRS = _pairs()


@pytest.mark.parametrize("path,name", PAIRS, ids=[f"{p.stem}-{n}" for p, n in PAIRS])
def test_inline_function_matches_package(path, name):
    import tensorflow as tf

    from nst_tf import losses

    found = taught_functions(path)
    assert name in found, f"{path.name} should write out {name} (it teaches it) but defines no such function"
    inline, reference = found[name], getattr(losses, name)
    rng = np.random.default_rng(0)
    for scale in (1.0, 100.0):  # unit-size values, and activations as large as VGG19's
        inputs = [tf.constant(scale * rng.normal(size=shape), tf.float32) for shape in TAUGHT[name]]
        got, want = np.asarray(inline(*inputs)), np.asarray(reference(*inputs))
        assert got.shape == want.shape, f"{name}: shape {got.shape} in {path.name}, {want.shape} in nst_tf"
        np.testing.assert_allclose(
            got, want, rtol=1e-5, atol=1e-6 * scale**2, err_msg=f"{name} in {path.name}"
        )


# ----------------------------------------------------------------------------- (d) reference figures
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_linked_reference_figures_exist(path):
    """Every ``../docs/figures/...`` file a notebook links to is committed (made by scripts/run_notebooks.py)."""
    import re

    text = path.read_text(encoding="utf-8")
    links = set(re.findall(r"\.\./(docs/figures/[\w./-]+\.(?:jpg|png|gif|mp4))", text))
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert not missing, f"{path.name} links to missing reference figures: {missing}"
