"""Keep the notebooks committed without outputs and with stable metadata.

    python scripts/notebook_tools.py normalize notebooks/*.ipynb   # rewrite in place
    python scripts/notebook_tools.py check notebooks/*.ipynb       # exit 1 and list offenders

A normalised notebook has no outputs and no execution counts, only the cell
metadata worth keeping (``tags``), notebook metadata reduced to a fixed
``python3`` kernelspec and ``language_info`` name, stable cell ids, and is
written as nbformat does by default (sorted keys, 1-space indent, trailing
newline). ``tests/test_notebooks.py`` runs ``check`` on every notebook, so
run ``normalize`` before committing (after ``ruff format notebooks`` if you
use it).
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


def normalize(path) -> bool:
    """Normalise the notebook at ``path`` in place; return True if the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = dumps(normalized(json.loads(text)))
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


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
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("normalize", "check"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "normalize":
        for path in args.notebooks:
            print(f"{'normalised' if normalize(path) else 'unchanged '} {path}")
        return 0
    bad = {path: problems(path) for path in args.notebooks}
    bad = {path: found for path, found in bad.items() if found}
    for path, found in bad.items():
        print(f"{path}: {', '.join(found)}")
    if bad:
        print(f"fix with: python scripts/notebook_tools.py normalize {' '.join(map(str, bad))}")
        return 1
    print(f"{len(args.notebooks)} notebook(s) without outputs and normalised")
    return 0


if __name__ == "__main__":
    sys.exit(main())
