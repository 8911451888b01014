# Two entry points that work on a fresh machine with Python 3.11+ and make:
#   make demo   installs into .venv and runs the demo
#   make test   installs into .venv (with the dev tools) and runs lint, types and tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO_DIR ?= demo-output

.PHONY: demo test quick lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-models: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[models,report]'
	touch $@ $(VENV)/.installed-core

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-core $(VENV)/.installed-models

demo: $(VENV)/.installed-models
	$(BIN)/finintel demo --customers 5000 --seed 42 --out $(DEMO_DIR)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck unit

# The fast tests only (no lint, no types, nothing marked slow): under a minute.
quick: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m "not slow"

bench: $(VENV)/.installed-core
	$(BIN)/python benchmarks/bench_data_path.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
