"""The student edition (``make student``, ``scripts/notebook_tools.py student``) and the full edition.

(a) the student edition of every notebook holds no answer text: no answer cell's marker, body or
    any of its lines that the rest of the full edition does not also contain (the lesson itself
    writes some functions out, and the stubs repeat the signatures), checked against the answer
    cells of the full edition as committed, found here independently of the tool;
(b) it keeps every exercise prompt and every ``check(...)`` cell, word for word and in order, and
    every other cell but the title and the Exercises introduction (which say it is the student
    edition); each answer's place holds a cell to write one's own;
(c) it is valid nbformat 4, normalised, without outputs;
(d) the full edition is unchanged: the tool only reads ``notebooks/`` and does not modify its input;
(e) the command: one file per notebook, rerunning is a no-op, a student's edited file is kept
    unless ``--overwrite``; cells tagged ``answer``/``solution`` are stripped too; a check cell
    that is not a stub is refused;
(f) the checks of (a) and (b) fail on the common wrong editions: nothing stripped, only the
    ``<details>`` wrapper stripped, only the code blocks stripped, the check cells stripped too.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: Found here, not taken from the tool, so that a bug in the tool's pattern cannot hide itself.
ANSWER_MARK = re.compile(r"<summary>\s*Answer\s+(\d+\.\d+)\s*</summary>")
EXERCISE = re.compile(r"^\s*\*\*Exercise (\d+\.\d+)")
CHECK = re.compile(r"""check\(\s*["'](\d+\.\d+)["']""")
#: An answer line shorter than this (a blank, ``</details>``, a lone bracket) says nothing.
MIN_LINE = 12


def _tools():
    return load_script("notebook_tools")


TOOLS = _tools()


def _text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _answers(nb: dict) -> dict[int, str]:
    """Cell index -> text of every answer cell of a full-edition notebook."""
    return {
        i: _text(c)
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "markdown" and ANSWER_MARK.search(_text(c))
    }


def _flat(text: str) -> str:
    """``text`` with every run of white space made one space (a sentence may be wrapped anywhere)."""
    return " ".join(text.split())


def _telling_pieces(answer: str, rest: str) -> list[str]:
    """The lines and the prose sentences of an answer that give something away: long enough to
    mean something and not also written elsewhere in the full edition (the lesson, a stub's
    signature), compared with white space made uniform."""
    prose = _flat(re.sub(r"```.*?```", " ", answer, flags=re.S))
    pieces = {line.strip() for line in answer.splitlines()} | set(re.split(r"(?<=[.!?:;])\s+", prose))
    rest = _flat(rest)
    return sorted(p for p in pieces if len(p) >= MIN_LINE and _flat(p) not in rest)


def leaks(full: dict, student: dict) -> list[str]:
    """What of the full edition's answers is still in ``student`` (empty: nothing)."""
    answers = _answers(full)
    rest = "\n".join(_text(c) for i, c in enumerate(full["cells"]) if i not in answers)
    text = "\n".join(_text(c) for c in student["cells"])
    flat = _flat(text)
    found = []
    for answer in answers.values():
        ex = ANSWER_MARK.search(answer).group(1)
        if ex in ANSWER_MARK.findall(text):
            found.append(f"{ex}: its <summary>Answer</summary> marker")
        if _flat(answer) in flat:
            found.append(f"{ex}: the whole answer cell")
        found += [f"{ex}: {piece!r}" for piece in _telling_pieces(answer, rest) if _flat(piece) in flat]
    return found


def missing(full: dict, student: dict) -> list[str]:
    """Exercise prompts and check cells of ``full`` that ``student`` lacks or has changed or reordered."""

    def kept(cells):
        return [
            _text(c)
            for c in cells
            if (c["cell_type"] == "markdown" and EXERCISE.match(_text(c)))
            or (c["cell_type"] == "code" and CHECK.search(_text(c)))
        ]

    want, got = kept(full["cells"]), kept(student["cells"])
    found = [f"missing: {text.splitlines()[0]!r}" for text in want if text not in got]
    if not found and want != got:
        found.append("the prompts and checks are out of order")
    return found


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """notebook name -> (full edition, student edition as the command wrote it)."""
    out = tmp_path_factory.mktemp("student")
    done = TOOLS.write_student(NOTEBOOKS, out)
    assert set(done.values()) == {"written"}
    return {path.name: (_load(path), _load(out / path.name)) for path in NOTEBOOKS}


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_notebooks_with_answers():
    assert NOTEBOOKS
    assert sum(len(_answers(_load(p))) for p in NOTEBOOKS) >= len(NOTEBOOKS)


# --- (a) no answer text ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_exercise_of_the_full_edition_has_an_answer_that_tells_something(path):
    """Otherwise (a) would pass vacuously: each exercise's answer is found and has telling lines."""
    nb = _load(path)
    exercises = [EXERCISE.match(_text(c)).group(1) for c in nb["cells"] if EXERCISE.match(_text(c))]
    answers = _answers(nb)
    assert sorted(ANSWER_MARK.search(a).group(1) for a in answers.values()) == sorted(exercises)
    rest = "\n".join(_text(c) for i, c in enumerate(nb["cells"]) if i not in answers)
    silent = [
        ANSWER_MARK.search(a).group(1)
        for a in answers.values()
        if not [piece for piece in _telling_pieces(a, rest) if not ANSWER_MARK.search(piece)]
    ]
    assert not silent, f"{path.name}: answers {silent} have no line of their own to look for"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_student_edition_contains_no_answer_text(path, editions):
    full, student = editions[path.name]
    found = leaks(full, student)
    assert not found, f"student edition of {path.name} gives away: " + "; ".join(found[:5])
    text = "\n".join(_text(c) for c in student["cells"])
    assert "<summary>Answer" not in text and "</details>" not in text


# --- (b) prompts, checks and everything else kept ----------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_student_edition_keeps_every_prompt_and_check(path, editions):
    full, student = editions[path.name]
    found = missing(full, student)
    assert not found, f"student edition of {path.name}: " + "; ".join(found)
    stubs = [_text(c) for c in student["cells"] if c["cell_type"] == "code" and CHECK.search(_text(c))]
    assert all("raise NotImplementedError" in s for s in stubs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_student_edition_changes_only_the_answers_title_and_exercises_introduction(path, editions):
    full, student = editions[path.name]
    assert len(student["cells"]) == len(full["cells"])
    answers = _answers(full)
    title = next(i for i, c in enumerate(full["cells"]) if c["cell_type"] == "markdown")
    intro = next(i for i, c in enumerate(full["cells"]) if re.match(r"##\s+Exercises", _text(c)))
    for i, (old, new) in enumerate(zip(full["cells"], student["cells"])):
        if i in answers:
            ex = ANSWER_MARK.search(_text(old)).group(1)
            assert new["cell_type"] == "markdown" and f"Your answer {ex}" in _text(new)
        elif i == title:
            assert _text(new).split("\n")[0] == _text(old).split("\n")[0]  # the same heading
            assert "Student edition" in _text(new)
            assert "colab.research.google.com/github" not in _text(new), "the badge opens the full edition"
            for word in ("Learning objectives", "Prerequisites", "Time"):
                assert word in _text(new)
        elif i == intro:
            assert "Each answer is" not in _text(new) and "answers are left out" in _text(new)
        else:
            assert new == old, f"{path.name}: cell {i} changed"


# --- (c) valid nbformat ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_student_edition_is_valid_normalised_nbformat(path, tmp_path):
    TOOLS.write_student([path], tmp_path)
    text = (tmp_path / path.name).read_text(encoding="utf-8")
    nbformat.validate(nbformat.reads(text, as_version=4))
    assert TOOLS.dumps(TOOLS.normalized(json.loads(text))) == text
    assert not any(c.get("outputs") for c in json.loads(text)["cells"] if c["cell_type"] == "code")


# --- (d) the full edition is unchanged ----------------------------------------------------------------


def test_full_edition_is_unchanged(tmp_path):
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    nbs = {p: _load(p) for p in NOTEBOOKS}
    copies = json.loads(json.dumps({str(p): nb for p, nb in nbs.items()}))
    assert TOOLS.main(["student", *map(str, NOTEBOOKS), "--output", str(tmp_path / "s")]) == 0
    for p, nb in nbs.items():
        TOOLS.student_edition(nb, p.name)
        assert nb == copies[str(p)], f"student_edition changed its input {p.name}"
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    assert after == before
    assert all(not TOOLS.problems(p) for p in NOTEBOOKS)
    for p in NOTEBOOKS:  # the full edition keeps its answers
        assert _answers(_load(p))


# --- (e) the command ------------------------------------------------------------------------------


def test_command_writes_one_file_per_notebook_and_reruns_as_a_no_op(tmp_path, capsys):
    out = tmp_path / "student"
    assert TOOLS.main(["student", *map(str, NOTEBOOKS), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in NOTEBOOKS]
    capsys.readouterr()
    assert TOOLS.main(["student", *map(str, NOTEBOOKS), "--output", str(out)]) == 0
    assert capsys.readouterr().out.count("unchanged") == len(NOTEBOOKS)


def test_a_students_work_is_kept_unless_overwrite(tmp_path, capsys):
    path = NOTEBOOKS[0]
    target = tmp_path / path.name
    TOOLS.write_student([path], tmp_path)
    work = target.read_text(encoding="utf-8").replace("raise NotImplementedError", "return 0", 1)
    target.write_text(work, encoding="utf-8")
    assert TOOLS.main(["student", str(path), "--output", str(tmp_path)]) == 1
    assert "--overwrite" in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == work
    assert TOOLS.main(["student", str(path), "--output", str(tmp_path), "--overwrite"]) == 0
    assert target.read_text(encoding="utf-8") != work


def _nb(*cells) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _cell(kind, text, tags=None, cell_id=None):
    cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": text}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if cell_id:
        cell["id"] = cell_id
    return cell


def test_tagged_solution_cells_are_stripped_too():
    nb = _nb(
        _cell("markdown", "# 09 · Test\n\n**Learning objectives** ..."),
        _cell("markdown", "## Exercises\n\nPredict first."),
        _cell("markdown", "**Exercise 09.1 (code)** Write `f`."),
        _cell("code", "def f(x):\n    return x * 42  # the secret\n", tags=["solution", "keep-me"]),
        _cell("markdown", "The answer is forty-two, by construction.", tags=["answer"]),
    )
    student = TOOLS.normalized(TOOLS.student_edition(nb, "09_test.ipynb"))
    text = json.dumps(student)
    assert "the secret" not in text and "forty-two" not in text
    assert TOOLS.STUDENT_CODE_STUB in _text(student["cells"][3])
    assert student["cells"][3]["metadata"] == {"tags": ["keep-me"]}
    nbformat.validate(nbformat.reads(json.dumps(student), as_version=4))


def test_a_check_cell_that_is_not_a_stub_is_refused(tmp_path, capsys):
    nb = _nb(
        _cell("markdown", "# 09 · Test"),
        _cell("markdown", "**Exercise 09.1 (code)** Write `f`."),
        _cell("code", 'def f(x):\n    return x * 42\n\n\ncheck("09.1", f)'),
    )
    with pytest.raises(ValueError, match="09.1"):
        TOOLS.student_edition(nb, "09_test.ipynb")
    path = tmp_path / "09_test.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert TOOLS.main(["student", str(path), "--output", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out" / "09_test.ipynb").exists()


# --- (f) the checks fail on wrong editions ----------------------------------------------------------


def _wrong_editions(full: dict) -> dict[str, dict]:
    answers = _answers(full)

    def edit(fn):
        nb = json.loads(json.dumps(full))
        for i in answers:
            nb["cells"][i]["source"] = fn(_text(nb["cells"][i]))
        return nb

    no_checks = json.loads(json.dumps(TOOLS.student_edition(full, "x.ipynb")))
    no_checks["cells"] = [c for c in no_checks["cells"] if not CHECK.search(_text(c))]
    return {
        "nothing stripped": full,
        "only the <details> wrapper stripped": edit(
            lambda t: re.sub(r"</?details>|<summary>.*?</summary>", "", t)
        ),
        "only the code blocks stripped": edit(lambda t: re.sub(r"```python\n.*?```", "", t, flags=re.S)),
        "only the code blocks kept": edit(
            lambda t: "\n".join(re.findall(r"```python\n.*?```", t, flags=re.S))
        ),
        "only the first line kept": edit(lambda t: t.split("\n")[0]),
        "only the first sentence of the prose kept": edit(
            lambda t: re.split(
                r"(?<=\.)\s", _flat(re.sub(r"<details>.*?</summary>|```.*?```", " ", t, flags=re.S))
            )[0]
        ),
        "the check cells stripped too": no_checks,
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_the_checks_catch_wrong_editions(path):
    full = _load(path)
    answers, checks = _answers(full), any(CHECK.search(_text(c)) for c in full["cells"])
    rest = "\n".join(_text(c) for i, c in enumerate(full["cells"]) if i not in answers)
    # code of its own: an answer's code that the lesson does not also write out
    code = "\n".join(re.findall(r"```python\n.*?```", "\n".join(answers.values()), flags=re.S))
    own_code = any(
        len(line.strip()) >= MIN_LINE and _flat(line) not in _flat(rest) for line in code.splitlines()
    )
    for name, wrong in _wrong_editions(full).items():
        if (name == "only the code blocks kept" and not own_code) or (
            name.startswith("the check") and not checks
        ):
            continue
        assert leaks(full, wrong) + missing(full, wrong), f"{path.name}: a student edition with {name} passes"
