# One entry point for the book. Every target creates the local environment (.venv) first.
#   make book            run every chapter on the embedded data (demo profile) and build the book
#   make test            run the whole test suite (about 20 minutes on 2 cores)
#   make test-fast       the unit tests only: every test not marked slow (under 3 minutes)
#   make test-slow       the rest: the tests marked slow (end-to-end runs, books, kills and resumes)
#   make lab             open JupyterLab on notebooks/ with the project's kernel
#   make bench           run the benchmarks into bench/results/, then write bench/RESULTS.md from them
#                        (QUICK=1: a few minutes, into bench/out/, the results left alone)
#   make book PROFILE=smoke      a 3-minute version; PROFILE=full is the study's protocol
#   make book DATA_DIR=/path/to/bone_marrow_cell_dataset    the real data (see data/README.md)

PYTHON ?= python3
VENV   ?= .venv
PROFILE ?= demo
DATA_DIR ?=
RUN_DIR ?= runs/$(PROFILE)
BIN     := $(VENV)/bin
# JupyterLab's settings for this project (no news pop-up), installed where `make lab` reads them.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: env book smoke test test-fast test-slow lab bench clean-runs

env: $(VENV)/.installed $(LAB_SETTINGS)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "Python 3.11 or 3.12 is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name cytokit --display-name "cytokit (Python 3)" > /dev/null
	touch $@

$(LAB_SETTINGS): lab/overrides.json $(VENV)/.installed
	install -D -m 644 $< $@

book: env
	$(BIN)/cytokit run --profile $(PROFILE) --out $(RUN_DIR) --force $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

smoke:
	$(MAKE) book PROFILE=smoke

test: env
	$(BIN)/python -m pytest

# The two tiers split the suite by the `slow` marker (pyproject.toml): a test is fast unless
# marked, so the tiers together run every test exactly once.
test-fast: env
	$(BIN)/python -m pytest -m "not slow" --durations=10

test-slow: env
	$(BIN)/python -m pytest -m slow --durations=10

lab: env
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: env
	$(BIN)/python bench/run_all.py $(if $(QUICK),--quick,)

clean-runs:
	rm -rf runs/
