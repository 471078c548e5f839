"""Keep the notebooks committed without outputs and with stable metadata.

    python scripts/notebook_tools.py normalize notebooks/*.ipynb   # rewrite in place
    python scripts/notebook_tools.py check notebooks/*.ipynb       # exit 1 and list offenders
    python scripts/notebook_tools.py colab notebooks/*.ipynb       # canonical Colab cell + badge
    python scripts/notebook_tools.py student notebooks/*.ipynb --output student   # without answers

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

``student`` writes the *student edition* (``make student``): each notebook with every
exercise's answer replaced by a cell to write one's own (see :func:`student_edition`), the
prompts and the ``check(...)`` cells kept, so the coding exercises still grade themselves.
The notebooks in ``notebooks/`` are the full edition and are only read. An existing file
that differs (a student's work) is replaced only with ``--overwrite``.
``tests/test_editions.py`` checks that no answer text reaches the student edition.

:func:`readable` turns an executed quality run into the copy a reader sees on GitHub
(``docs/notebooks/``, written by ``make readable`` through ``scripts/run_notebooks.py --readable``).
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


#: Lines of a cell's printed output that are the runtime's noise, not the lesson (TensorFlow's C++
#: log, its CPU-feature notice): left out of the readable copies.
NOISE = re.compile(
    r"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl|"
    r"To enable the following instructions:|rebuild TensorFlow with the appropriate compiler flags)"
)
#: Longest side of an image in a readable copy, and its JPEG quality: a notebook's copy stays a few MB.
READABLE_SIDE, READABLE_QUALITY = 900, 80
#: Outputs that only echo an object (a figure's path, a matplotlib Figure): nothing to read.
_ECHO = re.compile(r"^(?:\w*Path\(|<Figure size|<matplotlib\.)")


def _jpeg(png_b64: str) -> str:
    import base64
    import io

    from PIL import Image  # only the readable copies need Pillow

    with Image.open(io.BytesIO(base64.b64decode(png_b64))) as im:
        im = im.convert("RGB")
        im.thumbnail((READABLE_SIDE, READABLE_SIDE))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=READABLE_QUALITY, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _clean_text(text: str, paths: dict[str, str]) -> str:
    lines = [line for line in text.splitlines(keepends=True) if not NOISE.match(line)]
    out = "".join(lines)
    for local, shown in paths.items():  # no machine's folders in a published page
        out = out.replace(local, shown)
    return out


def readable(nb: dict, name: str, run: dict, paths: dict[str, str] | None = None) -> dict:
    """The readable copy of an executed notebook (issue #24 item 4): its outputs as the quality run
    printed and drew them, for a reader on GitHub, without the runtime's noise: stderr left out,
    TensorFlow's log lines dropped, echoed paths and Figure reprs dropped, PNG pictures as JPEG
    (:data:`READABLE_SIDE` px), local folders replaced by ``paths``. A header cell says what ran
    where (``run``: cpu, date, wall_s, commit). Refuses a run that used local images
    (``run["extra_images"]``: paintings we may not redistribute would be in its pictures) or quick mode.
    """
    if run.get("extra_images"):
        raise ValueError(
            f"{name}: this run used NST_EXTRA_IMAGES, whose pictures may not be published: "
            "rerun with bundled images only (scripts/run_notebooks.py --readable does)"
        )
    if run.get("quick"):
        raise ValueError(f"{name}: a quick-mode run; readable copies show the quality run (unset NST_QUICK)")
    paths = paths or {}
    cells = []
    for cell in nb["cells"]:
        cell = json.loads(json.dumps(cell))
        cell["metadata"] = {
            k: cell["metadata"][k] for k in KEEP_CELL_METADATA if k in cell.get("metadata", {})
        }
        if cell["cell_type"] == "code":
            outputs = []
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "stream":
                    if out.get("name") == "stderr":
                        continue
                    text = _clean_text(_source({"source": out.get("text", "")}), paths)
                    if text.strip():
                        outputs.append({**out, "text": _split_lines(text)})
                elif kind in ("display_data", "execute_result"):
                    data = dict(out.get("data", {}))
                    if "image/png" in data:
                        data["image/jpeg"] = _jpeg(_source({"source": data.pop("image/png")}))
                    plain = _source({"source": data.get("text/plain", "")})
                    if _ECHO.match(plain):
                        data.pop("text/plain")
                    if data:
                        outputs.append({**out, "data": data, "metadata": {}})
                else:
                    outputs.append(out)
            cell["outputs"] = outputs
        cells.append(cell)
    header = (
        f"> **Executed copy, for reading.** `notebooks/{name}` as its quality run printed and drew it "
        f"on {run.get('cpu', '?')} ({run.get('cores', '?')} cores), {run.get('date', '?')}, in "
        f"{run.get('wall_s', 0) / 60:.1f} min, from commit `{str(run.get('commit', '?'))[:12]}`, with the "
        "bundled images only (the notebook uses local paintings when it finds them). Times printed below "
        f"are that machine's. To run it yourself open [the notebook](../../notebooks/{name}); to "
        "regenerate these copies, `make readable`."
    )
    cells.insert(
        0, {"cell_type": "markdown", "id": "readable", "metadata": {}, "source": _split_lines(header)}
    )
    meta = json.loads(json.dumps(NOTEBOOK_METADATA))
    meta["nst_tf_run"] = run
    return {"cells": cells, "metadata": meta, "nbformat": NBFORMAT, "nbformat_minor": NBFORMAT_MINOR}


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


# ----------------------------------------------------------------------------- student edition
#: A markdown cell holding an exercise's answer: ``<details><summary>Answer NN.k</summary>``, the
#: convention of every notebook (``tests/test_exercises.py`` enforces it).
ANSWER = re.compile(r"<summary>\s*Answer\s+(\d+\.\d+)\s*</summary>")
#: Cells tagged with one of these are answers too, whatever their kind (a worked solution in code).
ANSWER_TAGS = frozenset({"answer", "solution"})
#: The call that grades a coding exercise: ``check("NN.k", my_function)``.
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d+\.\d+)["']""")
#: The full edition's sentence saying where the answers are; the student edition says otherwise.
_WHERE_ANSWERS = re.compile(r"Each answer is [^.]*below its \w+\.")
STUDENT_WHERE = "In this edition the answers are left out: write yours in the cell below each exercise."
STUDENT_NOTE = (
    "> **Student edition** (`make student`, from `notebooks/{name}`): the exercises' answers are left "
    "out. Write yours in the cell below each exercise; the coding exercises still check themselves."
)
STUDENT_CODE_ANSWER = (
    "**Your answer {ex}.** Write your function in the code cell above, in place of "
    "`raise NotImplementedError`, and run it: `check` says whether it is correct."
)
STUDENT_ANSWER = (
    "**Your answer {ex}.**\n\n*Your prediction, before running anything:* ...\n\n*What you saw:* ..."
)
STUDENT_CODE_STUB = "# your code here"


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def answer_cells(nb: dict) -> dict[int, str | None]:
    """The cells of ``nb`` that hold an answer: cell index -> exercise id (None for a tagged
    cell that names none)."""
    found = {}
    for index, cell in enumerate(nb.get("cells", [])):
        match = ANSWER.search(_source(cell)) if cell.get("cell_type") == "markdown" else None
        if match or _tags(cell) & ANSWER_TAGS:
            found[index] = match.group(1) if match else None
    return found


def student_edition(nb: dict, name: str) -> dict:
    """A copy of ``nb`` without the exercises' answers (``nb`` itself is not changed).

    Each answer cell (:data:`ANSWER`, or tagged with one of :data:`ANSWER_TAGS`) becomes a cell to
    write one's own: for an exercise graded by ``check`` a pointer to its stub, for a prediction a
    markdown cell with room for the prediction and what was seen, for a tagged code cell the stub
    ``# your code here``. Everything else stays as it is, the prompts and ``check(...)`` cells
    included, except the title (its Colab badge, which opens the full edition, gives way to a note
    saying this is the student edition) and the Exercises introduction (where the answers are).
    Raises ValueError if a ``check`` cell is not a stub (it would hand out the answer).
    """
    nb = json.loads(json.dumps(nb))
    cells = nb.get("cells", [])
    checked = set()
    for cell in cells:
        if cell.get("cell_type") == "code":
            graded = CHECK_CALL.findall(_source(cell))
            if graded and "raise NotImplementedError" not in _source(cell):
                raise ValueError(f"{name}: the cell that checks exercise {graded[0]} is not a stub")
            checked.update(graded)
    for index, ex in answer_cells(nb).items():
        old = cells[index]
        tags = [t for t in old.get("metadata", {}).get("tags", []) if t not in ANSWER_TAGS]
        new = {"cell_type": old["cell_type"], "id": old.get("id"), "metadata": {"tags": tags} if tags else {}}
        if old["cell_type"] == "code":
            new.update(execution_count=None, outputs=[], source=STUDENT_CODE_STUB)
        else:
            new["cell_type"] = "markdown"
            ex = ex or "(this exercise)"
            new["source"] = (STUDENT_CODE_ANSWER if ex in checked else STUDENT_ANSWER).format(ex=ex)
        cells[index] = new
    title = next((c for c in cells if c.get("cell_type") == "markdown"), None)
    if title is not None:
        lines = _BADGE.sub("", _source(title)).rstrip("\n").split("\n")
        at = 1 if lines and lines[0].startswith("# ") else 0
        lines[at:at] = ["", STUDENT_NOTE.format(name=name)] if at else [STUDENT_NOTE.format(name=name), ""]
        title["source"] = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    for cell in cells:
        text = _source(cell)
        if cell.get("cell_type") == "markdown" and re.match(r"##\s+Exercises", text):
            new_text, found = _WHERE_ANSWERS.subn(STUDENT_WHERE, text)
            cell["source"] = new_text if found else text.rstrip("\n") + "\n\n" + STUDENT_WHERE
    return nb


def write_student(paths, output, *, overwrite: bool = False) -> dict[Path, str]:
    """Write the student edition of each notebook in ``paths`` into the folder ``output``.

    Returns target -> "written", "unchanged" or "kept" (it exists and differs, e.g. a student's
    answers, and ``overwrite`` is false). Every notebook is converted before any file is written.
    """
    output = Path(output)
    editions = {}
    for path in map(Path, paths):
        nb = json.loads(path.read_text(encoding="utf-8"))
        editions[output / path.name] = dumps(normalized(student_edition(nb, path.name)))
    output.mkdir(parents=True, exist_ok=True)
    done = {}
    for target, text in editions.items():
        if target.exists() and target.read_text(encoding="utf-8") == text:
            done[target] = "unchanged"
        elif target.exists() and not overwrite:
            done[target] = "kept"
        else:
            target.write_text(text, encoding="utf-8")
            done[target] = "written"
    return done


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
    parser.add_argument("command", choices=("normalize", "check", "colab", "student"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("student"), help="student: folder to write")
    parser.add_argument("--overwrite", action="store_true", help="student: replace files that differ")
    args = parser.parse_args(argv)
    if args.command == "student":
        try:
            done = write_student(args.notebooks, args.output, overwrite=args.overwrite)
        except ValueError as err:
            print(f"error: {err}")
            return 1
        for target, what in done.items():
            print(f"{what:10} {target}")
        kept = [str(target) for target, what in done.items() if what == "kept"]
        if kept:
            print(
                f"kept {len(kept)} file(s) that differ from the new edition (a student's work?): "
                "pass --overwrite (make student OVERWRITE=1) to replace them"
            )
            return 1
        return 0
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
