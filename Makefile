# async-jobs. The two commands a newcomer needs: `make run` and `make test`.
# Every target creates the virtualenv (and the pinned CDK CLI) on first use.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CDK := npx --no-install cdk
CDK_ARGS ?=
# The CDK's jsii runtime nags about Node.js versions on every import; the version in use works.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: help install test lint format typecheck unit infra synth deploy destroy test-deployed clean

help:
	@echo "make test      lint, type-check and run every test (no AWS account needed)"
	@echo "make synth     synthesize the CloudFormation template into cdk.out/"
	@echo "make deploy    cdk deploy (needs AWS credentials and a bootstrapped account)"
	@echo "make destroy   cdk destroy"
	@echo "make test-deployed  run the tests against a deployed API (ASYNC_JOBS_API_URL)"

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install lint typecheck
	$(PYTHON) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy app.py stacks lambdas/jobs tests

synth: install
	$(CDK) synth --quiet $(CDK_ARGS)

deploy: install
	$(CDK) deploy $(CDK_ARGS)

destroy: install
	$(CDK) destroy $(CDK_ARGS)

test-deployed: $(VENV)/.installed
	$(PYTHON) -m pytest tests/deployed -m deployed

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
