# Everything a fresh machine needs: `make book` (set up + build the book), `make test` (set up + every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := $(shell grep -E '^torch==' requirements.txt)
JOBS ?= 2

.PHONY: setup book test exercises grade clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: anything unpinned would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: setup
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

test: setup
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile

exercises: setup
	$(BIN)/python -m grader.exercises

grade: setup
	$(BIN)/python -m grader $(or $(SUBMISSIONS),exercises/*.ipynb)

clean:
	rm -rf _build .pytest_cache
