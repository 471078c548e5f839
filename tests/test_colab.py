"""The notebooks' Colab set-up cell, run under a simulated Colab in a clean folder.

The canonical cell (``scripts/notebook_tools.py``: ``COLAB_CELL``) runs in a fresh
Python process whose working folder is an empty temporary directory, with a
simulated ``google.colab`` module on the path, ``git`` replaced by a shim that
copies this working tree instead of cloning, and ``pip`` replaced by a shim that
records its arguments. In the same process, ``import nst_tf`` must then load the
clone (no restart), the bundled images must resolve inside the clone's data/src,
and the MP4 extra must have been requested. Outside Colab the cell does nothing.
The ``colab`` subcommand writes the cell and an Open-in-Colab badge idempotently,
and ``check`` flags a notebook whose cell differs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]

#: ``git clone ... DEST``: copy the working tree's package, bundled images and notebooks.
GIT_SHIM = """\
#!{python}
import json, os, shutil, sys
from pathlib import Path
log = Path(os.environ["SHIM_LOG"])
with log.open("a") as f:
    f.write(json.dumps(["git", *sys.argv[1:]]) + "\\n")
if sys.argv[1] != "clone":
    sys.exit("git shim: only clone")
src, dest = Path(os.environ["SHIM_SOURCE"]), Path(sys.argv[-1])
ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
for part in ("nst_tf", "data/src", "notebooks"):
    shutil.copytree(src / part, dest / part, ignore=ignore)
for name in ("pyproject.toml", "requirements.txt", "utils.py"):
    shutil.copy2(src / name, dest / name)
"""
#: ``python -m pip ...``: record the arguments, install nothing.
PIP_SHIM = """\
import json, os, sys
with open(os.environ["SHIM_LOG"], "a") as f:
    f.write(json.dumps(["pip", *sys.argv[1:]]) + "\\n")
"""

#: Runs after the cell, in the same process: what a notebook's next cells need.
AFTER = """
import json, os, sys
import nst_tf
from nst_tf import data
print("RESULT " + json.dumps({
    "nst_tf": nst_tf.__file__,
    "chelsea": str(data.resolve_image("chelsea", allow_download=False)),
    "bundled": str(data.BUNDLED_DIR),
    "cwd": os.getcwd(),
}))
"""


def _tools():
    return load_script("notebook_tools")


TOOLS = _tools()


@pytest.fixture
def sandbox(tmp_path):
    """An empty working folder, the shims, a fake google.colab, and the environment to use them."""
    bin_dir, fake, work = tmp_path / "bin", tmp_path / "fake", tmp_path / "work"
    for folder in (bin_dir, fake / "google" / "colab", fake / "pip", work):
        folder.mkdir(parents=True)
    git = bin_dir / "git"
    git.write_text(GIT_SHIM.format(python=sys.executable))
    git.chmod(0o755)
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text(PIP_SHIM)
    (fake / "google" / "colab" / "__init__.py").write_text('"""Simulated Colab."""\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NST_BUNDLED_DIR")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(fake),
        SHIM_LOG=str(tmp_path / "shim.log"),
        SHIM_SOURCE=str(ROOT),
        NST_COLAB_REPO=str(tmp_path / "content" / "nst-tf"),
        NST_OFFLINE="1",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return {"tmp": tmp_path, "work": work, "env": env, "repo": tmp_path / "content" / "nst-tf"}


def _run(sandbox, code: str) -> tuple[dict, list]:
    script = sandbox["tmp"] / "driver.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=sandbox["work"],
        env=sandbox["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = sandbox["tmp"] / "shim.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    result = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(result[len("RESULT ") :]), calls


def test_cell_in_colab_makes_nst_tf_and_bundled_images_work_without_restart(sandbox):
    repo = sandbox["repo"]
    code = "import google.colab\n" + TOOLS.COLAB_CELL + "\n" + TOOLS.COLAB_CELL + AFTER  # run twice
    result, calls = _run(sandbox, code)
    assert Path(result["nst_tf"]).resolve().is_relative_to(repo.resolve()), result
    chelsea = Path(result["chelsea"]).resolve()
    assert chelsea.is_relative_to((repo / "data" / "src").resolve()) and chelsea.is_file()
    assert Path(result["cwd"]).resolve() == (repo / "notebooks").resolve()
    clones = [c for c in calls if c[:2] == ["git", "clone"]]
    assert len(clones) == 1, f"the second run must not clone again: {calls}"
    assert "https://github.com/nst-tf/nst-tf" in clones[0]
    installs = [c for c in calls if c[:2] == ["pip", "install"]]
    assert installs and any(arg.endswith("[mp4]") for arg in installs[0]), installs
    assert any(str(repo) in arg for arg in installs[0])


def test_cell_outside_colab_does_nothing(sandbox):
    code = TOOLS.COLAB_CELL + "\nimport json, os\nprint('RESULT ' + json.dumps({'cwd': os.getcwd()}))\n"
    result, calls = _run(sandbox, code)
    assert calls == []
    assert Path(result["cwd"]).resolve() == sandbox["work"].resolve()
    assert not sandbox["repo"].exists()


def test_an_installed_copy_finds_the_bundled_images_of_the_clone_it_runs_in(sandbox):
    """A non-editable install (site-packages has no data/) run from inside a clone."""
    site = sandbox["tmp"] / "site"
    shutil.copytree(ROOT / "nst_tf", site / "nst_tf", ignore=shutil.ignore_patterns("__pycache__"))
    clone = sandbox["tmp"] / "clone"
    shutil.copytree(ROOT / "data" / "src", clone / "data" / "src")
    (clone / "notebooks").mkdir()
    sandbox["work"] = clone / "notebooks"
    sandbox["env"]["PYTHONPATH"] = str(site)
    result, _ = _run(sandbox, AFTER)
    assert Path(result["nst_tf"]).resolve().is_relative_to(site.resolve())
    assert Path(result["bundled"]).resolve() == (clone / "data" / "src").resolve()
    assert Path(result["chelsea"]).resolve().is_relative_to(clone.resolve())


def _notebook(tmp_path, first_code: str) -> Path:
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# 07 · A title\n\nIntro."},
            {"cell_type": "markdown", "metadata": {}, "source": "## Setup"},
            {
                "cell_type": "code",
                "metadata": {},
                "source": first_code,
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": "import nst_tf",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "07_example.ipynb"
    path.write_text(json.dumps(nb))
    return path


@pytest.mark.parametrize("old", ['import sys\nif "google.colab" in sys.modules:\n    pass', "import nst_tf"])
def test_colab_command_writes_the_cell_and_badge_idempotently(tmp_path, old):
    path = _notebook(tmp_path, old)
    assert any("Colab cell" in p for p in TOOLS.problems(path))
    assert TOOLS.colab(path) is True
    assert TOOLS.problems(path) == []
    first = path.read_text()
    assert TOOLS.colab(path) is False and path.read_text() == first
    nb = json.loads(first)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == TOOLS.COLAB_CELL.rstrip("\n")
    assert ["import nst_tf"] in [c["source"] for c in code[1:]]  # nothing else replaced or lost
    title = "".join(nb["cells"][0]["source"])
    assert title.startswith("# 07 · A title\n\n[![Open In Colab]")
    assert title.count("colab-badge.svg") == 1 and "notebooks/07_example.ipynb" in title
    assert title.endswith("Intro.")


def test_check_flags_an_edited_colab_cell(tmp_path):
    path = _notebook(tmp_path, "import nst_tf")
    TOOLS.colab(path)
    nb = json.loads(path.read_text())
    nb["cells"][2]["source"] = [*nb["cells"][2]["source"][:-1], "# changed by hand"]
    path.write_text(TOOLS.dumps(nb))
    assert TOOLS.problems(path) == ["its first code cell is not the canonical Colab cell"]


def test_cell_is_plain_python():
    compile(TOOLS.COLAB_CELL, "<colab cell>", "exec")
    assert "!" not in "".join(line.split("#")[0] for line in TOOLS.COLAB_CELL.splitlines()).replace("!=", "")
    assert "%" not in textwrap.dedent(TOOLS.COLAB_CELL).replace("%s", "")
