# The two commands of the quick start (`make run`, `make test`) each set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXCHANGE_HOME ?= $(CURDIR)/var
EXCHANGE_PORT ?= 8000

# Debian packages some targets need: nginx with its njs module (the TLS proxy test,
# tests/exchange/cli/test_nginx_e2e.py) and the PostgreSQL client (pg_dump/pg_restore for
# `exchange admin backup|restore`). Installed when missing and we are root; otherwise a loud
# warning (those tests then skip, and fail under CI=true).
SYSTEM_PACKAGES := nginx-light libnginx-mod-http-js postgresql-client

.PHONY: install system-deps run test lint typecheck pytest bench clean browser-deps catalogues

# The console's message catalogues: compiled at install, never committed (.gitignore).
LOCALE := exchange/console/locale
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard $(LOCALE)/*/LC_MESSAGES/messages.po))
# Debian packages the browser tests drive: Chromium and a CJK font for the Chinese pages.
BROWSER_PACKAGES := chromium fonts-wqy-microhei

install: $(STAMP) catalogues

catalogues: $(CATALOGUES)

$(LOCALE)/%/LC_MESSAGES/messages.mo: $(LOCALE)/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --statistics -d $(LOCALE) -D messages -l $*

$(STAMP): pyproject.toml requirements.lock requirements-codegen.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	test -x $(VENV)/codegen/bin/python || $(PYTHON) -m venv $(VENV)/codegen
	$(VENV)/codegen/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-codegen.lock
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

# Installs Chromium and the font with apt when missing (as root, non-interactive). Elsewhere it
# says what is missing; the browser tests then skip loudly, or fail under CI=true.
browser-deps:
	@missing=""; \
	for p in $(BROWSER_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
			|| { echo "apt-get could not install$$missing"; [ "$$CI" != true ] || exit 1; }; \
	else \
		echo "browser tests need$$missing (apt-get install as root); they will skip"; \
	fi

pytest: install browser-deps system-deps
	$(BIN)/pytest -n 2

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
