# FMN Studio: `make run` starts the app on the demo library, `make test` runs every check.
# Both set up everything on a fresh machine: Debian packages, a virtual environment, the package.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint format corpus clean

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints.txt .ci/system-deps.sh
	bash .ci/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c .ci/constraints.txt -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/fmn-app

test: setup
	$(BIN)/ruff check fmn_core app tests
	$(BIN)/ruff format --check fmn_core app tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check fmn_core app tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format fmn_core app tests
	$(BIN)/ruff check --fix fmn_core app tests

# Regenerate the shipped demo library (deterministic: same files every time).
demo: setup
	$(BIN)/fmn corpus --out assets/demo --videos-per-class 3 --utterances-per-class 3 --seed 7

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
