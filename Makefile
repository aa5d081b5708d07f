# Every target that runs code installs first, so a fresh clone needs nothing done by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo test test-unit test-integration bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Prometheus and Alertmanager binaries from Debian for the tests that run the real servers.
system-deps:
	bash scripts/install-system-deps.sh

demo: install
	$(BIN)/livewatch demo

test: install system-deps
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install system-deps
	$(BIN)/python -m pytest -q tests/integration

bench: install
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check detector producers tests benchmarks
	$(BIN)/ruff format --check detector producers tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
