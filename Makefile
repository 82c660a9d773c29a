# The README's two commands: `make demo` and `make test`. Both set up .venv first.
# `make install` is the base package with the [serve] extra (no PyTorch, no browser);
# `make test` adds the [dev] extra (tests, lint, PyTorch for the import parity tests, Playwright).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DIR ?= demo

.PHONY: install install-dev test lint demo clean

install: $(BASE_STAMP)

install-dev: $(DEV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(BASE_STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[serve]'
	touch $(BASE_STAMP)

$(DEV_STAMP): setup.cfg pyproject.toml .ci/constraints.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]' -c .ci/constraints.txt
	touch $(BASE_STAMP) $(DEV_STAMP)

# Tests run in TEST_WORKERS processes (pytest-xdist): much of a tiny test's time is tracing, start-up
# and waiting on subprocesses, so three processes keep two cores busier than two do (measured).
TEST_WORKERS ?= 3

test: install-dev
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

demo: install
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python scripts/demo.py --workdir $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
