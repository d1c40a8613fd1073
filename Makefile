# Thin targets: the logic lives in Python modules. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
SERVE_LOCK := requirements-serve.lock
DEFAULT_CONFIG := training/configs/synthetic.toml
CONFIG ?= $(DEFAULT_CONFIG)
MODEL ?= models/price
SYNTHETIC_N ?= 20000
MODEL_DIR ?= models/price
HOST ?= 127.0.0.1
PORT ?= 8000
FUZZ_EXAMPLES ?= 400
SOAK_SECONDS ?= 300
SHARDS ?= 8
WORKERS ?= 2
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv lock data train predict evaluate test lint format clean serve browser-deps docker-build docker-run container-test container-tools container-model bench fuzz soak audit shards train-workers test-distributed

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# The virtual environment is (re)installed when the lock changes: pip alone, every package pinned
# and hash-checked, wheels only, so a fresh machine needs nothing but python3.11.
$(VENV)/.installed: $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --only-binary=:all: -r $(LOCK)
	@touch $@

venv: $(VENV)/.installed  ## create .venv with the locked packages (requirements.lock)

# The pins live in pyproject.toml ([project] dependencies: serving; optional groups: train, test,
# dev, bench, reliability). `make lock` resolves them with uv into the two hashed locks, for
# CPython 3.11 on x86_64 Linux (glibc >= 2.28): everything the .venv holds, and the container's
# serving set (resolved within the first, so both agree). A package that is already locked keeps
# its version unless UPGRADE=1 (or UPGRADE=name for one package). The commands, by hand:
#   F="--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28"
#   .venv/bin/uv pip compile pyproject.toml --all-extras -o requirements.lock $F
#   .venv/bin/uv pip compile pyproject.toml -c requirements.lock -o requirements-serve.lock $F
LOCK_FLAGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" $(if $(UPGRADE),$(if $(filter 1,$(UPGRADE)),--upgrade,--upgrade-package $(UPGRADE)),)
lock: $(VENV)/.installed  ## re-resolve pyproject.toml's pins into requirements.lock + requirements-serve.lock (UPGRADE=1)
	$(VENV)/bin/uv pip compile -q pyproject.toml --all-extras -o $(LOCK) $(LOCK_FLAGS)
	$(VENV)/bin/uv pip compile -q pyproject.toml -c $(LOCK) -o $(SERVE_LOCK) $(LOCK_FLAGS)

data/synthetic/items.csv: | $(VENV)/.installed
	$(PY) -m training.data.synthetic --n $(SYNTHETIC_N) --seed 0 --out data/synthetic

data: data/synthetic/items.csv  ## generate the embedded default data set

train: $(VENV)/.installed  ## train, evaluate and export (CONFIG=... for another data set)
	@if [ "$(CONFIG)" = "$(DEFAULT_CONFIG)" ]; then $(MAKE) --no-print-directory data; fi
	$(PY) -m training train --config $(CONFIG) $(if $(RESUME),--resume,) $(ARGS)

shards: $(VENV)/.installed  ## CONFIG=... SHARDS=N: the table and its photos as N TFRecord files per split + manifest.json
	$(PY) -m training shards --config $(CONFIG) --shards $(SHARDS) $(if $(OUT),--out $(OUT),) $(ARGS)

train-workers: $(VENV)/.installed  ## WORKERS=N local multi-worker training (TF_CONFIG set per process), restarted on failure
	@if [ "$(CONFIG)" = "$(DEFAULT_CONFIG)" ]; then $(MAKE) --no-print-directory data; fi
	$(PY) -m training launch --workers $(WORKERS) -- --config $(CONFIG) $(ARGS)

predict: $(VENV)/.installed  ## MODEL=models/price INPUT=items.csv OUTPUT=predictions.csv
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "error: give INPUT=table.csv OUTPUT=predictions.csv"; exit 2; }
	$(PY) -m training predict --model $(MODEL) --input $(INPUT) --output $(OUTPUT)

evaluate: $(VENV)/.installed  ## MODEL=models/price/1 CONFIG=...: score an exported model, write its report
	$(PY) -m training evaluate --model $(MODEL) --config $(CONFIG)

test: $(VENV)/.installed browser-deps  ## make lint, then the test suite but for the two-worker runs (make test-distributed)
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q tests --ignore=tests/distributed/test_multi_worker.py

test-distributed: $(VENV)/.installed  ## two training workers on 127.0.0.1 vs one process; a worker killed and restarted
	$(PY) -m pytest -q tests/distributed/test_multi_worker.py

serve: $(VENV)/.installed  ## run the prediction service on MODEL_DIR (default models/price), HOST:PORT
	MODEL_DIR=$(MODEL_DIR) HOST=$(HOST) PORT=$(PORT) $(PY) -m service

browser-deps:  ## Debian's chromium + chromium-driver, for the browser test of the sellers' page
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

IMAGE ?= price-service:latest

container-tools:  ## podman, runc and debootstrap (Debian) when no Docker engine answers
	@docker info >/dev/null 2>&1 || { command -v podman && command -v runc && command -v debootstrap; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap; }

docker-build: container-tools  ## build the image IMAGE (BAKE=price bakes models/price in)
	python3 deploy/container/ctl.py build --tag $(IMAGE) $(if $(BAKE),--model $(BAKE),)

docker-run: container-tools  ## run IMAGE on 127.0.0.1:PORT with MODEL mounted read-only
	python3 deploy/container/ctl.py run --tag $(IMAGE) --model-dir $(MODEL) --port $(PORT)

container-model:  # stops with "run `make train` first" when MODEL holds no exported version
	@python3 deploy/container/ctl.py model --model-dir $(MODEL) >/dev/null

container-test: container-model container-tools $(VENV)/.installed  ## build the image, run it and check it from outside
	$(PY) deploy/container/container_test.py --model-dir $(MODEL) --tag $(IMAGE)

# PRETRAINED_MODEL_DIR: a model with the pretrained photo encoder to measure beside MODEL_DIR's;
# unset (or empty of versions), bench trains a small one once (models/bench-pretrained/...) and reuses it.
bench: $(VENV)/.installed  ## benchmarks -> bench/results/latest.{json,md} + plot (QUICK=1: the short CI version; PRETRAINED_MODEL_DIR=...)
	@ls -d $(MODEL_DIR)/[0-9]* >/dev/null 2>&1 || { echo "error: no model version under $(MODEL_DIR): run 'make train' first"; exit 2; }
	$(PY) -m bench --model-dir $(MODEL_DIR) $(if $(filter-out 0,$(QUICK)),--quick,) $(if $(PRETRAINED_MODEL_DIR),--pretrained-model-dir $(PRETRAINED_MODEL_DIR),)

fuzz: $(VENV)/.installed  ## schemathesis from /openapi.json against a real uvicorn on MODEL_DIR (FUZZ_EXAMPLES per route)
	$(PY) -m reliability.fuzz --model-dir $(MODEL_DIR) --max-examples $(FUZZ_EXAMPLES)

soak: $(VENV)/.installed  ## 32 clients of mixed traffic for SOAK_SECONDS; a good and a broken version dropped in
	$(PY) -m reliability.soak --model-dir $(MODEL_DIR) --seconds $(SOAK_SECONDS)

audit: $(VENV)/.installed  ## pip-audit of the pinned requirements and the installed .venv
	$(PY) -m reliability.audit

# The code that lint and format cover (the folders of it that exist).
LINT_DIRS := $(wildcard training service common tests bench reliability deploy harness)

lint: $(VENV)/.installed  ## ruff check, ruff format --check, lint-imports (the contracts in pyproject.toml)
	@status=0; \
	$(PY) -m ruff check $(LINT_DIRS) || status=1; \
	$(PY) -m ruff format --check $(LINT_DIRS) || status=1; \
	$(VENV)/bin/lint-imports || status=1; \
	exit $$status

format: $(VENV)/.installed  ## ruff format
	$(PY) -m ruff format $(LINT_DIRS)

clean:  ## remove generated data, runs and the venv (keeps exported models)
	rm -rf $(VENV) data/synthetic runs .pytest_cache
