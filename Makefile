# One entry point for the book. Every target creates the local environment (.venv) first.
#   make book            run every chapter on the embedded data (demo profile) and build the book
#   make test            run the test suite
#   make lab             open JupyterLab on notebooks/ with the project's kernel
#   make bench           run the benchmarks and write bench/RESULTS.md (QUICK=1: a few minutes)
#   make book PROFILE=smoke      a 3-minute version; PROFILE=full is the study's protocol
#   make book DATA_DIR=/path/to/bone_marrow_cell_dataset    the real data (see data/README.md)

PYTHON ?= python3
VENV   ?= .venv
PROFILE ?= demo
DATA_DIR ?=
RUN_DIR ?= runs/$(PROFILE)
BIN     := $(VENV)/bin

.PHONY: env book smoke test lab bench clean-runs

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "Python 3.11 or 3.12 is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name cytokit --display-name "cytokit (Python 3)" > /dev/null
	touch $@

book: env
	$(BIN)/cytokit run --profile $(PROFILE) --out $(RUN_DIR) --force $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

smoke:
	$(MAKE) book PROFILE=smoke

test: env
	$(BIN)/python -m pytest

lab: env
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: env
	$(BIN)/python bench/run_all.py $(if $(QUICK),--quick,)

clean-runs:
	rm -rf runs/
