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


def _png(side: int) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side * 2, 3), np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_readable_copy_keeps_the_lesson_and_drops_the_noise():
    """notebook_tools.readable (issue #24 item 4): pictures as small JPEG, printed numbers kept,
    TensorFlow's log, stderr, echoed paths and local folders gone, a header naming the run."""
    tools = load_script("notebook_tools")
    log = "I0000 00:00:1796670799.477975   32005 port.cc:153] oneDNN custom operations are on.\n"
    nb = {"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {"scrolled": True}, "source": ["# 01\n"]},
        {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": 3, "source": ["f()"], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": [log, "loss 1.25 in /work/main/x.png\n"]},
            {"output_type": "stream", "name": "stderr", "text": ["train: 100%|####| 9/9\n"]},
            {"output_type": "stream", "name": "stdout", "text": [log]},
            {"output_type": "execute_result", "execution_count": 3, "metadata": {},
             "data": {"text/plain": ["PosixPath('/work/main/data/output/figures/a.png')"]}},
            {"output_type": "display_data", "metadata": {"image/png": {"width": 1}},
             "data": {"image/png": _png(1200), "text/plain": ["<Figure size 800x360 with 2 Axes>"]}},
        ]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    run = {"cpu": "AMD EPYC", "cores": 2, "date": "2026-12-07", "wall_s": 360.0, "commit": "0123456789abcdef"}
    copy = tools.readable(nb, "01_x.ipynb", run, {"/work/main": "."})
    header, title, code = copy["cells"]
    assert "AMD EPYC" in "".join(header["source"]) and "6.0 min" in "".join(header["source"])
    assert title["metadata"] == {} and copy["metadata"]["nst_tf_run"] == run
    text, picture = code["outputs"]
    assert text["text"] == ["loss 1.25 in ./x.png\n"] and code["execution_count"] == 3
    assert set(picture["data"]) == {"image/jpeg"}
    import base64
    import io

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(picture["data"]["image/jpeg"]))) as im:
        assert im.format == "JPEG" and max(im.size) == tools.READABLE_SIDE
    for bad, match in (({"extra_images": True}, "NST_EXTRA_IMAGES"), ({"quick": True}, "quick")):
        with pytest.raises(ValueError, match=match):
            tools.readable(nb, "01_x.ipynb", run | bad)


READABLE = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.stem)
def test_committed_readable_copy_is_publishable_and_current(path):
    """docs/notebooks/: a quality run with bundled images only, small, no noise, and still the
    notebook it claims to be (its code cells are the notebook's, bar a few edits since)."""
    copy = json.loads(path.read_text(encoding="utf-8"))
    run = copy["metadata"]["nst_tf_run"]
    assert run["extra_images"] is False and run["quick"] is False
    assert path.stat().st_size < 4e6, "readable copy over 4 MB: lower notebook_tools.READABLE_SIDE"
    outputs = [o for c in copy["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert outputs and not any(o.get("output_type") == "error" for o in outputs)
    assert not any("image/png" in o.get("data", {}) or o.get("name") == "stderr" for o in outputs)
    assert any("image/jpeg" in o.get("data", {}) for o in outputs)
    text = path.read_text(encoding="utf-8")
    assert "/work/" not in text and "/root/" not in text and "/home/" not in text
    source = json.loads((NOTEBOOK_DIR / path.name).read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code"]
    copied = ["".join(c["source"]) for c in copy["cells"] if c["cell_type"] == "code"]
    same = sum(c in code for c in copied)
    assert len(copied) == len(code) and same >= 0.9 * len(code), (
        f"{path.name} is stale ({same} of {len(code)} code cells as in the notebook): run `make readable`"
    )
