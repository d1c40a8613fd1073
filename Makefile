# Thin targets: the logic lives in Python modules. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEFAULT_CONFIG := training/configs/synthetic.toml
CONFIG ?= $(DEFAULT_CONFIG)
MODEL ?= models/price
SYNTHETIC_N ?= 20000
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help venv data train predict evaluate test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# The virtual environment is rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-serve.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed  ## create .venv with the pinned packages

data/synthetic/items.csv: | $(VENV)/.installed
	$(PY) -m training.datasets.synthetic --n $(SYNTHETIC_N) --seed 0 --out data/synthetic

data: data/synthetic/items.csv  ## generate the embedded default data set

train: $(VENV)/.installed  ## train, evaluate and export (CONFIG=... for another data set)
	@if [ "$(CONFIG)" = "$(DEFAULT_CONFIG)" ]; then $(MAKE) --no-print-directory data; fi
	$(PY) -m training train --config $(CONFIG) $(if $(RESUME),--resume,) $(ARGS)

predict: $(VENV)/.installed  ## MODEL=models/price INPUT=items.csv OUTPUT=predictions.csv
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "error: give INPUT=table.csv OUTPUT=predictions.csv"; exit 2; }
	$(PY) -m training predict --model $(MODEL) --input $(INPUT) --output $(OUTPUT)

evaluate: $(VENV)/.installed  ## MODEL=models/price/1 CONFIG=...: score an exported model, write its report
	$(PY) -m training evaluate --model $(MODEL) --config $(CONFIG)

test: $(VENV)/.installed  ## the whole test suite
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed  ## ruff
	$(PY) -m ruff check training service tests

format: $(VENV)/.installed
	$(PY) -m ruff format training service tests

clean:  ## remove generated data, runs and the venv (keeps exported models)
	rm -rf $(VENV) data/synthetic runs .pytest_cache
