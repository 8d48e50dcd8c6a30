# Everything a fresh machine needs: `make book` (set up + build the book), `make test` (set up + every test),
# `make lab` (set up + JupyterLab on the exercise notebooks).
PYTHON ?= python3
VENV ?= .venv
# The Pythons whose set-up was verified (README, Quick start); requirements.txt's pins need 3.11+.
PYTHONS := 3.11 3.12 3.13
BIN := $(VENV)/bin
TORCH := $(shell grep -E '^torch==' requirements.txt)
# Test processes: three on 2 cores, since a third of the suite's wall time is spent waiting (time limits
# at their defaults, a browser, a package index), and each process computes on one torch thread
# (tests/conftest.py); two left a core idle through those waits (80% of the 2 cores used, 88% with three);
# four gained nothing (13 min 24 s against 13 min 25 s, 2026-12-08)
JOBS ?= 3

.PHONY: setup bytecode lab book mathjax test test-fast exercises grade bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(check_python)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: anything unpinned would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# The grader and the book's helpers compiled once, for every process that imports them (each grading
# starts two, and the worker runs with -B). checked-hash: a file's bytecode is used while its source is
# unchanged, whatever the files' times (the worker imports a copy); an edited file is compiled again.
bytecode: setup
	$(BIN)/python -m compileall -q -j 0 --invalidation-mode checked-hash grader bench book/bookutils.py

# Expanded before the recipe's first line runs, so an unsupported Python stops make (one line,
# exit 2) before anything is created.
python_found = $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
define check_python
$(eval found := $(python_found))
$(if $(filter $(PYTHONS),$(basename $(found))),,$(error found $(if $(found),Python $(found) ($(PYTHON)),no Python at '$(PYTHON)'); the course needs Python $(subst $(space),$(comma) ,$(PYTHONS)): choose one with e.g. `make book PYTHON=python3.12`))
endef
comma := ,
space := $(subst ,, )

# JupyterLab on exercises/, in .venv: its kernel `python3` (registered above) is .venv's Python, the
# kernel every exercise notebook names. Options go to jupyter-lab, e.g. on a machine without a browser:
#   make lab LAB_OPTIONS="--no-browser --ip=127.0.0.1 --port=8899 --IdentityProvider.token=TOKEN"
LAB_OPTIONS ?=
lab: $(VENV)/.lab-installed
	$(BIN)/jupyter-lab --ServerApp.root_dir=exercises $(LAB_OPTIONS)

# requirements.txt again with it, so that pip keeps every pin of the course while it adds JupyterLab
$(VENV)/.lab-installed: requirements-lab.txt $(VENV)/.installed
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-lab.txt
	touch $@

book: bytecode mathjax
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

# MathJax served with the book (html_extra_path), so formulas render offline; from the npm registry
mathjax: _mathjax/mathjax/tex-mml-chtml.js

_mathjax/mathjax/tex-mml-chtml.js: | $(VENV)/.installed
	rm -rf _mathjax && mkdir -p _mathjax/tmp
	cd _mathjax/tmp && npm pack --silent mathjax@3.2.2 >/dev/null && tar xzf mathjax-3.2.2.tgz
	mkdir -p _mathjax/mathjax && cd _mathjax/tmp/package/es5 && \
		cp -r tex-mml-chtml.js input output ui a11y adaptors ../../../mathjax/
	rm -rf _mathjax/tmp

test: bytecode mathjax
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile

# The unit tier, while working (a few minutes): every test but those tests/conftest.py marks slow.
# `make test` (CI) runs both tiers.
test-fast: bytecode
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile -m "not slow"

exercises: setup
	$(BIN)/python -m grader.authoring.exercises
	$(BIN)/python -m grader.authoring.launch

grade: bytecode
	$(BIN)/python -m grader $(or $(SUBMISSIONS),exercises/*.ipynb)

# How fast the course's tools are, each as a ratio to `python -c "import torch"` (a few minutes;
# bench/__main__.py). What an activation costs, in full: $(BIN)/python bench/activation_cost.py
bench: bytecode mathjax
	$(BIN)/python -m bench

clean:
	rm -rf _build .pytest_cache
