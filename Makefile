# dr-serving: every workflow a user types. `make help` lists them.
# Area-specific targets live in make/*.mk (model and serving, tools, cluster, image, load lab).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

## Settings (override on the command line, e.g. `make run MODEL_ARCH=vgg19`)
# Python 3.11 interpreter used to create the virtual environment.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Virtual environment folder (created by `make setup`).
VENV ?= .venv
# Python extras installed into the environment.
EXTRAS ?= serve,tf,lite,lab,dev
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k metrics -x"`.
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
DR := $(VENV)/bin/dr-serving
export PATH := $(CURDIR)/bin:$(PATH)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_.-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: setup
setup: $(VENV)/.installed ## Create .venv/ with the project and all extras installed (pinned by requirements/lock.txt).

$(VENV)/.installed: pyproject.toml requirements/lock.txt
	@echo ">> creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { echo "Error: '$(PYTHON) -m venv' failed; on Debian run: sudo apt-get install python3-venv" >&2; exit 1; }
	@$(PY) -m pip install --quiet --upgrade pip
	@echo ">> installing dr-serving[$(EXTRAS)] (TensorFlow is ~1.3 GB: this takes a few minutes the first time)"
	@$(PY) -m pip install --progress-bar on -c requirements/lock.txt -e ".[$(EXTRAS)]"
	@touch $@

.PHONY: test
test: setup tools system-deps ## Run the whole test suite (serving, load lab, chart, image). CI runs exactly this.
	@$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: setup ## Check code style with the pinned ruff.
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

.PHONY: fmt
fmt: setup ## Format code with the pinned ruff.
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

.PHONY: lock
lock: setup ## Re-freeze requirements/lock.txt from the current environment.
	@$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements/lock.txt

.PHONY: clean
clean: ## Remove build outputs (keeps .venv, bin/ and models/).
	rm -rf build dist runs .pytest_cache .ruff_cache

include make/system.mk
include $(filter-out make/system.mk,$(sort $(wildcard make/*.mk)))
