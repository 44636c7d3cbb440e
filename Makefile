# The two commands of the quick start (`make run`, `make test`) each set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXCHANGE_HOME ?= $(CURDIR)/var
EXCHANGE_PORT ?= 8000

.PHONY: install run test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-codegen.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	test -x $(VENV)/codegen/bin/python || $(PYTHON) -m venv $(VENV)/codegen
	$(VENV)/codegen/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-codegen.lock
	touch $(STAMP)

run: install
	EXCHANGE_HOME="$(EXCHANGE_HOME)" EXCHANGE_PORT="$(EXCHANGE_PORT)" \
		$(BIN)/exchange dev up --home "$(EXCHANGE_HOME)" --port "$(EXCHANGE_PORT)"

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -n 2

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
