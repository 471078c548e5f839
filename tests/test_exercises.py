"""The graded exercises: frozen answers, the checker, and the notebooks' exercise conventions.

(a) the frozen answers in ``nst_tf/exercise_answers.json`` equal what the package's
    reference functions compute now (so a student is graded against the package);
(b) ``check`` grades: the reference is correct, a perturbed copy is not, a stub that
    raises NotImplementedError or any other error returns None without raising, and
    a wrong-shaped output returns inf;
(c) in every notebook, every ``**Exercise NN.k**`` cell has an answer cell
    (``<summary>Answer NN.k</summary>``), every ``(code)`` exercise has a code cell
    calling ``check("NN.k", ...)`` with an id the checker knows, every id the checker
    knows appears in a notebook, ids are unique and NN is the notebook's number;
(d) the one ```python block of each code exercise's answer, executed, defines the
    stub's function and ``check`` grades it correct;
(e) each notebook opens with learning objectives, prerequisites and a time estimate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from nst_tf import notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = sorted(notebook.EXERCISES)

EXERCISE = re.compile(r"^\s*\*\*Exercise (\d+)\.(\d+)(\s*\(code\))?\**")
ANSWER = re.compile(r"<summary>\s*Answer (\d+\.\d+)\s*</summary>")
CHECK = re.compile(r"""check\(\s*["'](\d+\.\d+)["']\s*,\s*([A-Za-z_]\w*)""")
STUB = re.compile(r"^def ([A-Za-z_]\w*)\(", re.MULTILINE)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _cells(path: Path) -> list[tuple[str, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        src = cell.get("source", "")
        out.append((cell["cell_type"], "".join(src) if isinstance(src, list) else src))
    return out


def _exercises(path: Path) -> list[dict]:
    """Every exercise of a notebook: id, code or not, its cell index, and the cells after it."""
    cells = _cells(path)
    found = []
    for index, (kind, text) in enumerate(cells):
        match = EXERCISE.match(text) if kind == "markdown" else None
        if match:
            ident = f"{int(match.group(1)):02d}.{int(match.group(2))}"
            found.append(
                {"id": ident, "code": bool(match.group(3)), "index": index, "number": match.group(1)}
            )
    for i, ex in enumerate(found):
        end = found[i + 1]["index"] if i + 1 < len(found) else len(cells)
        ex["after"] = cells[ex["index"] + 1 : end]
    return found


def _answer_text(ex: dict) -> str | None:
    for kind, text in ex["after"]:
        match = ANSWER.search(text) if kind == "markdown" else None
        if match and match.group(1) == ex["id"]:
            return text
    return None


def _check_cell(ex: dict) -> tuple[str, str] | None:
    """(stub function name, code) of the code cell that grades this exercise."""
    for kind, text in ex["after"]:
        match = CHECK.search(text) if kind == "code" else None
        if match and match.group(1) == ex["id"]:
            return match.group(2), text
    return None


def _code_exercises() -> list[tuple[Path, dict]]:
    return [(path, ex) for path in NOTEBOOKS for ex in _exercises(path) if ex["code"]]


def _nb_ids(paths):
    return [p.stem for p in paths]


# --- (a) frozen answers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answers():
    return notebook.frozen_answers()


@pytest.fixture(scope="module")
def same_weights(answers):
    """The frozen answers hold for the VGG19 weights they were frozen with (the CI's); with other
    weights ``check`` computes the answer live, which the checker tests below cover."""
    if answers.get("_weights_sha256") != notebook._weights_sha256():
        pytest.skip("this machine's VGG19 weights differ from the frozen answers' (check computes live)")


def test_every_exercise_has_a_frozen_answer(answers):
    assert IDS, "nst_tf.notebook.EXERCISES is empty"
    assert sorted(k for k in answers if not k.startswith("_")) == IDS, (
        "exercise_answers.json and EXERCISES differ: run python -m nst_tf.notebook --freeze"
    )


@pytest.mark.parametrize("exercise", IDS)
def test_frozen_answer_matches_the_package(exercise, answers, same_weights):
    frozen = answers[exercise]
    now = np.asarray(notebook._reference(exercise)(*notebook._inputs(exercise)), np.float64)
    assert list(now.shape) == frozen["shape"]
    want = np.asarray(frozen["values"], np.float64).reshape(frozen["shape"])
    np.testing.assert_allclose(now, want, rtol=1e-5, atol=1e-7 * float(np.abs(want).max()))


# --- (b) the checker ---------------------------------------------------------------------------


@pytest.mark.parametrize("exercise", IDS)
def test_check_grades_the_reference_correct(exercise, capsys):
    error = notebook.check(exercise, notebook._reference(exercise))
    assert error is not None and error <= notebook.TOLERANCE
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", IDS)
def test_check_rejects_a_perturbed_function(exercise, capsys):
    reference = notebook._reference(exercise)

    def perturbed(*args):
        return np.asarray(reference(*args)) * (1 + 20 * notebook.TOLERANCE)

    error = notebook.check(exercise, perturbed)
    assert error is not None and error > notebook.TOLERANCE
    assert "NOT YET" in capsys.readouterr().out


def test_check_stub_not_written_returns_none(capsys):
    def stub(*args):
        raise NotImplementedError  # exercise

    assert notebook.check(IDS[0], stub) is None
    assert "not written yet" in capsys.readouterr().out


def test_check_failing_function_returns_none_without_raising(capsys):
    def broken(*args):
        return args[0] @ "oops"

    assert notebook.check(IDS[0], broken) is None
    assert "failed" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", IDS)
def test_check_wrong_shape_is_inf(exercise, capsys):
    reference = notebook._reference(exercise)

    def wrong_shape(*args):
        value = np.asarray(reference(*args))
        return np.stack([value, value])

    assert notebook.check(exercise, wrong_shape) == float("inf")
    assert "shape" in capsys.readouterr().out


def test_check_with_other_weights_grades_against_a_live_answer(monkeypatch, capsys):
    monkeypatch.setattr(notebook, "_weights_sha256", lambda: "not-the-frozen-weights")
    exercise = IDS[0]
    reference = notebook._reference(exercise)
    assert notebook.check(exercise, reference) <= notebook.TOLERANCE
    assert notebook.check(exercise, lambda *a: np.asarray(reference(*a)) * 1.01) > notebook.TOLERANCE
    assert "computed live" in capsys.readouterr().out


def test_check_unknown_exercise_raises():
    with pytest.raises(KeyError):
        notebook.check("99.9", lambda *a: 0)


# --- (c) notebook conventions --------------------------------------------------------------------


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_nb_ids(NOTEBOOKS))
def test_exercise_ids_match_the_notebook_and_are_unique(path):
    found = _exercises(path)
    number = path.name[:2]
    has_section = any(kind == "markdown" and re.match(r"^##\s+Exercises", t) for kind, t in _cells(path))
    assert found or not has_section, f"{path.name} has an '## Exercises' section without exercises"
    ids = [ex["id"] for ex in found]
    assert len(ids) == len(set(ids)), f"duplicate exercise ids in {path.name}: {ids}"
    wrong = [i for i in ids if i[:2] != number]
    assert not wrong, f"{path.name}: exercise ids {wrong} do not start with {number}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_nb_ids(NOTEBOOKS))
def test_every_exercise_has_an_answer(path):
    missing = [ex["id"] for ex in _exercises(path) if _answer_text(ex) is None]
    assert not missing, f"{path.name}: no '<summary>Answer NN.k</summary>' cell after exercises {missing}"
    for ex in _exercises(path):
        text = _answer_text(ex)
        assert "<details>" in text and "</details>" in text, f"answer {ex['id']} is not collapsed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_nb_ids(NOTEBOOKS))
def test_every_code_exercise_checks_itself(path):
    for ex in _exercises(path):
        if not ex["code"]:
            continue
        cell = _check_cell(ex)
        assert cell is not None, f"{path.name}: exercise {ex['id']} (code) has no cell calling check()"
        name, code = cell
        assert ex["id"] in notebook.EXERCISES, f"{ex['id']} is not in nst_tf.notebook.EXERCISES"
        stubs = STUB.findall(code)
        assert name in stubs, f"{path.name}: exercise {ex['id']}: check() grades {name}, no stub defines it"
        assert "raise NotImplementedError" in code, (
            f"{path.name}: exercise {ex['id']}: the stub is not a stub"
        )


def test_every_checked_exercise_appears_in_a_notebook():
    in_notebooks = {ex["id"] for _, ex in _code_exercises()}
    missing = sorted(set(IDS) - in_notebooks)
    assert not missing, f"EXERCISES {missing} are not a (code) exercise in any notebook"


# --- (d) the answers pass the checker ------------------------------------------------------------


def _namespace() -> dict:
    import keras
    import tensorflow as tf

    import nst_tf
    from nst_tf import data, images, losses, models

    return {"tf": tf, "np": np, "keras": keras, "nst_tf": nst_tf} | {
        "data": data,
        "images": images,
        "losses": losses,
        "models": models,
    }


@pytest.mark.parametrize(
    "path,ex", _code_exercises(), ids=[f"{p.name[:2]}-{ex['id']}" for p, ex in _code_exercises()]
)
def test_code_answer_is_graded_correct(path, ex, capsys):
    text = _answer_text(ex)
    assert text is not None, f"{path.name}: exercise {ex['id']} has no answer"
    blocks = PYTHON_BLOCK.findall(text)
    assert len(blocks) == 1, f"{path.name}: answer {ex['id']} has {len(blocks)} ```python blocks, not 1"
    cell = _check_cell(ex)
    assert cell is not None, f"{path.name}: exercise {ex['id']} has no check() cell"
    name = cell[0]
    namespace = _namespace()
    exec(compile(blocks[0], f"<answer {ex['id']}>", "exec"), namespace)  # noqa: S102 - our own notebooks
    assert callable(namespace.get(name)), f"answer {ex['id']} does not define {name}()"
    error = notebook.check(ex["id"], namespace[name])
    assert error is not None and error <= notebook.TOLERANCE, capsys.readouterr().out


# --- (e) the opening cell ----------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_nb_ids(NOTEBOOKS))
def test_notebook_opens_with_objectives_prerequisites_and_time(path):
    first = next(text for kind, text in _cells(path) if kind == "markdown")
    missing = [word for word in ("Learning objectives", "Prerequisites", "Time") if word not in first]
    assert not missing, f"{path.name}: the first markdown cell lacks {missing}"
