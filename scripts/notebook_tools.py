"""Keep the notebooks committed without outputs and with stable metadata.

    python scripts/notebook_tools.py normalize notebooks/*.ipynb   # rewrite in place
    python scripts/notebook_tools.py check notebooks/*.ipynb       # exit 1 and list offenders
    python scripts/notebook_tools.py colab notebooks/*.ipynb       # canonical Colab cell + badge

A normalised notebook has no outputs and no execution counts, only the cell
metadata worth keeping (``tags``), notebook metadata reduced to a fixed
``python3`` kernelspec and ``language_info`` name, stable cell ids, and is
written as nbformat does by default (sorted keys, 1-space indent, trailing
newline). ``tests/test_notebooks.py`` runs ``check`` on every notebook, so
run ``normalize`` before committing (after ``ruff format notebooks`` if you
use it).

``colab`` makes :data:`COLAB_CELL` the first code cell of each notebook (replacing
an older set-up cell that mentions ``google.colab``) and puts an "Open in Colab"
badge under the title; it is idempotent and ``check`` flags a notebook whose
Colab cell or badge differs. ``tests/test_colab.py`` runs the cell under a
simulated Colab.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

#: The kernelspec every notebook declares (the venv's ``python3`` kernel).
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: Notebook-level metadata after normalising (``version`` etc. are machine-specific).
NOTEBOOK_METADATA = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
#: Cell metadata keys that survive; everything else (execution times, scrolled,
#: collapsed, Colab/VS Code state) is volatile and removed.
KEEP_CELL_METADATA = ("tags",)
NBFORMAT = 4
NBFORMAT_MINOR = 5
_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")

#: Where the notebooks live on GitHub (Colab opens them from there).
GITHUB_REPO = "nst-tf/nst-tf"
COLAB_URL = "https://colab.research.google.com/github/" + GITHUB_REPO + "/blob/main/notebooks/{name}"
COLAB_BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](" + COLAB_URL + ")"
)
_BADGE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)[ \t]*$", re.MULTILINE)
#: The first code cell of every notebook. In Colab it clones the repository (code and the
#: bundled images in data/src), installs what Colab lacks (the package's dependencies and
#: the MP4 extra, imageio-ffmpeg) and puts the clone on sys.path, so ``import nst_tf``
#: works in the same kernel (an editable install alone is importable only after a restart).
#: Plain Python, no IPython magics, so tests/test_colab.py can run it. Outside Colab: nothing.
COLAB_CELL = """\
# Colab only: fetch the repository (code and bundled images) and install what Colab lacks,
# MP4 writer included. Nothing to restart; outside Colab this cell does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO = os.environ.get("NST_COLAB_REPO", "/content/nst-tf")
    if not os.path.isdir(os.path.join(REPO, "nst_tf")):
        subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "https://github.com/nst-tf/nst-tf", REPO], check=True
        )
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[mp4]"], check=True)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)  # importable now; the editable install takes over after a restart
    os.chdir(os.path.join(REPO, "notebooks"))
"""


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _split_lines(text: str) -> list[str]:
    """Source as nbformat stores it on disk: a list of lines, each keeping its newline."""
    return text.splitlines(keepends=True)


def normalized(nb: dict) -> dict:
    """Return a normalised copy of a notebook given as a JSON dict (nbformat 4)."""
    if nb.get("nbformat") != NBFORMAT:
        raise ValueError(f"only nbformat {NBFORMAT} notebooks are supported, got {nb.get('nbformat')!r}")
    cells, seen = [], set()
    for index, cell in enumerate(nb.get("cells", [])):
        kind = cell.get("cell_type")
        text = _source(cell)
        out = {
            "cell_type": kind,
            "metadata": {k: cell["metadata"][k] for k in KEEP_CELL_METADATA if k in cell.get("metadata", {})},
            "source": _split_lines(text),
        }
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not _ID.match(cell_id) or cell_id in seen:
            # deterministic: the same notebook always gets the same ids
            cell_id = hashlib.sha1(f"{index}:{kind}:{text}".encode()).hexdigest()[:8]
            while cell_id in seen:
                cell_id = hashlib.sha1(cell_id.encode()).hexdigest()[:8]
        seen.add(cell_id)
        out["id"] = cell_id
        if kind == "code":
            out["execution_count"] = None
            out["outputs"] = []
        elif "attachments" in cell and kind in ("markdown", "raw"):
            out["attachments"] = cell["attachments"]
        cells.append(out)
    return {
        "cells": cells,
        "metadata": json.loads(json.dumps(NOTEBOOK_METADATA)),
        "nbformat": NBFORMAT,
        "nbformat_minor": NBFORMAT_MINOR,
    }


def dumps(nb: dict) -> str:
    """Serialise like nbformat: sorted keys, 1-space indent, UTF-8 as is, trailing newline."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False, separators=(",", ": ")) + "\n"


def errors(nb) -> list[dict]:
    """The error outputs of an executed notebook (nbformat node or JSON dict), in cell order."""
    return [
        out
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def normalize(path) -> bool:
    """Normalise the notebook at ``path`` in place; return True if the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = dumps(normalized(json.loads(text)))
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def _is_colab_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and "google.colab" in _source(cell)


def with_colab(nb: dict, name: str) -> dict:
    """A copy of ``nb`` whose first code cell is :data:`COLAB_CELL` and whose title has the badge."""
    nb = json.loads(json.dumps(nb))
    cells = nb.setdefault("cells", [])
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    new = {"cell_type": "code", "metadata": {}, "source": _split_lines(COLAB_CELL.rstrip("\n"))}
    new.update(execution_count=None, outputs=[])
    if code and _is_colab_cell(cells[code[0]]):
        new["id"] = cells[code[0]].get("id", "colab-setup")
        cells[code[0]] = new
    else:
        new["id"] = "colab-setup"
        cells.insert(code[0] if code else len(cells), new)
    title = next((c for c in cells if c.get("cell_type") == "markdown"), None)
    if title is not None:
        badge = COLAB_BADGE.format(name=name)
        text = _BADGE.sub("", _source(title)).rstrip("\n")
        lines = text.split("\n")
        at = 1 if lines and lines[0].startswith("# ") else 0
        lines[at:at] = ["", badge] if at else [badge, ""]
        title["source"] = _split_lines(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)))
    return nb


def colab(path) -> bool:
    """Write the canonical Colab cell and badge into the notebook at ``path``; True if it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = dumps(normalized(with_colab(json.loads(text), path.name)))
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def colab_problems(nb: dict, name: str) -> list[str]:
    """What differs from the canonical Colab set-up (cell and badge)."""
    found = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code or _source(code[0]) != COLAB_CELL.rstrip("\n"):
        found.append("its first code cell is not the canonical Colab cell")
    title = next((c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"), None)
    if title is None or COLAB_BADGE.format(name=name) not in _source(title):
        found.append("its title has no Open-in-Colab badge for this notebook")
    return found


def problems(path) -> list[str]:
    """What is wrong with the committed form of ``path`` (empty list: fine)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return [f"cannot read it as JSON ({err})"]
    found = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if any(c.get("outputs") for c in code):
        found.append("has outputs")
    if any(c.get("execution_count") is not None for c in code):
        found.append("has execution counts")
    try:
        if dumps(normalized(nb)) != text:
            found.append("is not normalised")
    except ValueError as err:
        found.append(str(err))
    found += colab_problems(nb, path.name)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("normalize", "check", "colab"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "normalize":
        for path in args.notebooks:
            print(f"{'normalised' if normalize(path) else 'unchanged '} {path}")
        return 0
    if args.command == "colab":
        for path in args.notebooks:
            print(f"{'updated   ' if colab(path) else 'unchanged '} {path}")
        return 0
    bad = {path: problems(path) for path in args.notebooks}
    bad = {path: found for path, found in bad.items() if found}
    for path, found in bad.items():
        print(f"{path}: {', '.join(found)}")
    if bad:
        names = " ".join(map(str, bad))
        print(
            f"fix with: python scripts/notebook_tools.py colab {names}  (Colab cell and badge; also normalises)"
        )
        print(f"      or: python scripts/notebook_tools.py normalize {names}")
        return 1
    print(f"{len(args.notebooks)} notebook(s) without outputs and normalised")
    return 0


if __name__ == "__main__":
    sys.exit(main())
