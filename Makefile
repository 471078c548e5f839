# Two commands do everything on a fresh machine:
#   make demo   install, fetch the VGG19 weights, stylise the bundled default images
#   make test   install and run the test suite (notebooks in quick mode included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRA := $(firstword $(NST_EXTRA_IMAGES) $(wildcard ../shared/images))
export NST_EXTRA_IMAGES := $(EXTRA)

.PHONY: setup demo test test-quick lint gallery figures bench clean-output

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
