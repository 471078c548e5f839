"""The package's import graph (issue #12.3): no module imports, directly or through others, itself.

Every ``import`` statement of ``nst_tf/*.py`` counts, at module level or inside a function: a
function-level import that closes a cycle still ties the modules together.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "nst_tf"


def _target(name: str) -> str | None:
    """The nst_tf module ``name`` (dotted) refers to, as a file stem, or None outside the package."""
    parts = name.split(".")
    if parts[0] != "nst_tf":
        return None
    if len(parts) > 1 and (PKG / f"{parts[1]}.py").is_file():
        return parts[1]
    return "__init__"


def imports_of(source: str) -> set[str]:
    """The nst_tf modules that ``source`` imports anywhere (``from nst_tf import x`` names module x)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_target(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "nst_tf" + (f".{node.module}" if node.module else "") if node.level else node.module or ""
            if base == "nst_tf":
                found.update(_target(f"nst_tf.{alias.name}") for alias in node.names)
            else:
                found.add(_target(base))
    found.discard(None)
    return found


def import_graph() -> dict[str, set[str]]:
    return {path.stem: imports_of(path.read_text()) for path in sorted(PKG.glob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_nst_tf_has_no_import_cycle():
    graph = import_graph()
    assert {"models", "weights", "transfer", "config", "vgg19"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_parser_sees_every_kind_of_import_and_the_finder_finds_cycles():
    source = (
        "import os\nimport nst_tf.models\nfrom nst_tf import weights, __version__\n"
        "from .config import Config\n"
        "def f():\n    from nst_tf.transfer import run\n"
    )
    assert imports_of(source) == {"models", "weights", "__init__", "config", "transfer"}
    # the cycles this issue removed: models <-> weights, and transfer -> __init__ -> transfer
    assert find_cycle({"models": {"weights"}, "weights": {"models"}}) == ["models", "weights", "models"]
    assert find_cycle({"__init__": {"config", "transfer"}, "transfer": {"__init__"}, "config": set()})
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# ----------------------------------------------------------------------------- a fast --help (#12.6)
_PROBE = """
import runpy, sys
sys.argv = ["nst_tf", *sys.argv[1:]]
try:
    runpy.run_module("nst_tf", run_name="__main__", alter_sys=True)
except SystemExit as exit_:
    print("exit", exit_.code, file=sys.stderr)
print("imported:", sorted(m for m in ("tensorflow", "keras", "numpy") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        (["transfer", "--help"], 0),
        (["texture", "--help"], 0),
        (["transfer", "--size", "big"], 2),  # argparse usage error
        (["paint"], 2),
        ([], 2),
    ],
)
def test_help_and_usage_errors_do_not_import_tensorflow(argv, code):
    """`python -m nst_tf --help` and every argparse error answer without TensorFlow's ~15 s import."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert f"exit {code}" in out.stderr, out.stderr[-2000:]
    assert "imported: []" in out.stderr, out.stderr[-2000:]


def test_public_names_load_lazily_and_tensorflow_is_imported_quietly():
    script = (
        "import sys, nst_tf\n"
        "assert 'tensorflow' not in sys.modules\n"
        "from nst_tf import Config, transfer_style\n"  # imports TensorFlow, through nst_tf's quiet loader
        "import tensorflow as tf\n"
        "assert transfer_style.__module__ == 'nst_tf.transfer' and Config().task == 'transfer'\n"
        "assert tf.__spec__.loader is tf.__loader__ and type(tf.__loader__).__name__ == 'SourceFileLoader'\n"
        "assert tf.get_logger().level >= 40\n"  # ERROR: no retracing warnings
        "print('ok', 'tensorflow' in sys.modules, sorted(set(nst_tf.__all__) - set(dir(nst_tf))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NST_VERBOSE_TF", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok True []", out.stderr[-2000:]
    assert out.stderr == "", out.stderr[-2000:]  # TensorFlow's C++ start-up lines were hidden
