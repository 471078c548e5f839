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
# function runs on frozen inputs made from a bundled image (deterministic, no download), and
# its output is compared with the value the package's own function gave when the answers were
# frozen (``exercise_answers.json``; ``python -m nst_tf.notebook --freeze`` rewrites it and
# ``tests/test_exercises.py`` checks that the package still agrees with it).

#: Largest relative error that counts as correct (float32 arithmetic in another order).
TOLERANCE = 1e-4
ANSWERS_FILE = Path(__file__).with_name("exercise_answers.json")


def _photo(size: int = 32):
    """(1, 16, 24, 3) preprocessed (VGG: BGR, mean removed) top-left crop of chelsea at 24 px."""
    from nst_tf import data, images

    return images.preprocess(data.load("chelsea", size)[:16, :24])


def _features(layer: str, name: str = "chelsea", size: int = 32):
    """(1, H, W, C) VGG19 features at ``layer`` of a bundled image's 20x32 top-left crop."""
    from nst_tf import data, images, models

    extractor = models.build_extractor([layer])
    return extractor(images.preprocess(data.load(name, size)[:20, :32]))[layer]


def _pixels(name: str, size: int = 32):
    """(16, 24, 3) float32 RGB 0-255: the top-left crop of a bundled image at ``size`` px."""
    from nst_tf import data

    return data.load(name, size)[:16, :24]


def _fade(hw=(20, 32)):
    """(20, 32) float32 mask in [0, 1] that fades from 0 at the left to 1 at the right (exercise 04.8)."""
    return np.tile(np.linspace(0.0, 1.0, hw[1], dtype=np.float32), (hw[0], 1))


def _pan(name: str = "coffee", frames: int = 4):
    """(frames, 16, 24, 3) float32 RGB 0-255: a 2-px-per-frame pan across a bundled image at 32 px."""
    from nst_tf import data

    img = data.load(name, 32)
    return np.stack([img[:16, 2 * i : 2 * i + 24] for i in range(frames)])


#: exercise id -> (the nst_tf function the student rewrites, builder of its frozen inputs).
#: Adding an exercise: one line here, then ``python -m nst_tf.notebook --freeze``.
EXERCISES = {
    "01.4": ("losses.content_loss", lambda: (_features("block2_conv1"), _features("block2_conv1", "coffee"))),
    "01.5": ("losses.total_variation_loss", lambda: (_photo(),)),
    "02.4": ("losses.gram_matrix", lambda: (_features("block1_conv1", "gravel"),)),
    "02.5": (
        "losses.style_layer_loss",
        lambda: (_features("block1_conv1"), _reference("02.4")(_features("block1_conv1", "gravel"))),
    ),
    "03.5": ("losses.mean_square", lambda: (_features("block3_conv1", "astronaut"),)),
    "04.7": ("color.match_color", lambda: (_pixels("astronaut"), _pixels("chelsea"))),
    "04.8": ("losses.guided_gram_matrix", lambda: (_features("block1_conv1"), _fade())),
    "05.4": ("fast.flicker", lambda: (_pan(),)),
}


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


def freeze(path: Path = ANSWERS_FILE) -> dict:
    """Recompute every answer with the package's reference functions and write them."""
    answers = {"_weights_sha256": _weights_sha256()}
    for exercise in exercises():
        value = np.asarray(_reference(exercise)(*_inputs(exercise)), dtype=np.float64)
        values = [float(f"{v:.8g}") for v in value.ravel()]  # float32 precision is all there is
        answers[exercise] = {"shape": list(value.shape), "values": values}
    from nst_tf.files import write_text

    write_text(path, json.dumps(answers, indent=1) + "\n")
    return answers


def _weights_sha256() -> str | None:
    """Hash of the VGG19 weights this machine resolves (the exercises' features depend on them)."""
    from nst_tf import models

    return models.get_weights(None)[1].get("sha256")


def _answer(exercise: str) -> np.ndarray:
    """The frozen answer; computed live by the package when this machine's VGG19 weights differ."""
    answers = frozen_answers()
    if exercise not in answers:
        raise KeyError(f"no frozen answer for exercise {exercise!r}: run python -m nst_tf.notebook --freeze")
    if answers.get("_weights_sha256") != _weights_sha256():
        print("(your VGG19 weights differ from those the answers were frozen with: answer computed live)")
        return np.asarray(_reference(exercise)(*_inputs(exercise)), np.float64)
    frozen = answers[exercise]
    return np.asarray(frozen["values"], np.float64).reshape(frozen["shape"])


def relative_error(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12))


def check(exercise: str, student) -> float | None:
    """Run ``student`` on the exercise's frozen inputs and grade it against the frozen answer.

    Prints one line (correct / not yet, with the relative error) and returns the
    relative error, or None when the function is not written yet or fails.
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
    error = relative_error(got, want)
    verdict = "correct" if error <= TOLERANCE else "NOT YET"
    print(f"exercise {exercise}: {verdict} (relative error {error:.1e}; correct below {TOLERANCE:.0e})")
    return error


if __name__ == "__main__":
    if sys.argv[1:] != ["--freeze"]:
        sys.exit("usage: python -m nst_tf.notebook --freeze   (rewrites nst_tf/exercise_answers.json)")
    print(f"froze {len(freeze())} answers into {ANSWERS_FILE}")
