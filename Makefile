# The two commands of the quick start (`make run`, `make test`) each set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXCHANGE_HOME ?= $(CURDIR)/var
EXCHANGE_PORT ?= 8000

# Debian packages some targets need: nginx with its njs module (the TLS proxy test,
# tests/exchange/test_nginx_e2e.py) and the PostgreSQL client (pg_dump/pg_restore for
# `exchange admin backup|restore`). Installed when missing and we are root; otherwise a loud
# warning (those tests then skip, and fail under CI=true).
SYSTEM_PACKAGES := nginx-light libnginx-mod-http-js postgresql-client

.PHONY: install system-deps run test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

system-deps:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -e /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing="$$missing libnginx-mod-http-js"; \
	command -v pg_dump >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: installing$$missing (Debian)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			-o DPkg::Lock::Timeout=600 --no-install-recommends $$missing >/dev/null; \
	else \
		echo "!!! system-deps: missing$$missing and not root: the nginx and backup tests will be SKIPPED (they fail under CI=true)"; \
	fi

run: install
	EXCHANGE_HOME="$(EXCHANGE_HOME)" EXCHANGE_PORT="$(EXCHANGE_PORT)" \
		$(BIN)/exchange dev up --home "$(EXCHANGE_HOME)" --port "$(EXCHANGE_PORT)"

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install system-deps
	$(BIN)/pytest -n 2

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
