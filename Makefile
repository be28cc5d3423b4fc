# finflows: two commands do everything on a fresh machine.
#   make demo   venv + pinned install + local stack + Airflow DB, then every flow end to end, with a summary
#   make test   venv + pinned install + local stack + the full test suite, then the stack is stopped
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
LOCAL := .local
STACK := $(PY) -m devstack
WITH_ENV := set -a && . $(LOCAL)/stack.env && set +a &&
PYTEST_ARGS ?=

.PHONY: help venv lock stack-up stack-down stack-status airflow-db test test-unit test-fast demo up lint bench chaos clean

help:
	@echo "make demo        set everything up and run every flow end to end, printing a summary"
	@echo "make test        set everything up, run the full test suite, stop the stack"
	@echo "make up          the Airflow UI on :8080 against the local stack: api-server, scheduler, dag-processor,"
	@echo "                 triggerer as separate processes; EXECUTOR=celery [WORKERS=2] adds Celery workers on redis"
	@echo "make test-unit   formats and DAG integrity only: no service started (under a minute)"
	@echo "make stack-up | stack-down | stack-status    the local stand-ins only"
	@echo "make chaos       a chaos day for seeds 1, 2 and 3 (SEEDS=\"4 5\" for others): the banking day on Celery"
	@echo "                 under worker kills, restarts, stalled and refusing banks, a database restore; invariants proven"
	@echo "make lint | bench | lock | clean"

$(STAMP): requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3.11 is required"; exit 1; }
	@command -v gpg >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnupg </dev/null; }
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium </dev/null \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium </dev/null; }; }; } \
		|| { echo "chromium (Debian package) is needed by the UI test: apt-get install chromium"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip sync -q --require-hashes --python $(PY) requirements-dev.txt
	@# finflows' provider entry point (the pgp connection type): metadata only, built outside the tree
	d=$$(mktemp -d) && cp pyproject.toml $$d/ && $(VENV)/bin/uv pip install -q --no-deps --no-build-isolation --python $(PY) $$d \
		&& rm -rf $$d
	touch $@

venv: $(STAMP)

# Re-resolve the pins (needs the package registry; commit the result): requirements-dev.txt from
# requirements-dev.in (runtime + stand-ins + tests), then requirements.txt, the runtime alone, held to
# the same versions. Existing pins are kept unless requirements*.in asks for something else.
LOCK := $(VENV)/bin/uv pip compile -q --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock:
	$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(LOCK) requirements-dev.in -o requirements-dev.txt
	$(LOCK) requirements.in -c requirements-dev.txt -o requirements.txt

stack-up: $(STAMP)
	$(STACK) up

stack-down:
	@if [ -x $(PY) ]; then $(STACK) down && $(STACK) verify-down; fi

stack-status: $(STAMP)
	$(STACK) status

airflow-db: stack-up
	@$(WITH_ENV) mkdir -p "$$AIRFLOW_HOME" && $(VENV)/bin/airflow db migrate >$(LOCAL)/logs/airflow-db.log 2>&1 \
		|| { tail -n 40 $(LOCAL)/logs/airflow-db.log; exit 1; }
	@echo "[airflow] metadata database migrated (PostgreSQL database airflow on the local stack)"

# typed to mypy --strict, with everything they import (issue #42)
STRICT_CORE = plugins/finflows/formats plugins/finflows/flows plugins/finflows/inbox.py plugins/finflows/files.py

# The full suite; the stack is stopped afterwards whatever the outcome, and proven stopped.
test: airflow-db
	@rc=0; $(VENV)/bin/ruff check . || rc=1; $(VENV)/bin/ruff format --check . || rc=1; $(VENV)/bin/mypy || rc=1; \
	$(VENV)/bin/mypy --strict $(STRICT_CORE) || rc=1; \
	$(WITH_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	$(STACK) down; $(STACK) verify-down || rc=1; exit $$rc

# Formats and DAG integrity: pure Python and a DagBag parse, no PostgreSQL, servers or stack.
test-unit: $(STAMP)
	FINFLOWS_UNIT=1 $(VENV)/bin/pytest tests/formats tests/dags $(PYTEST_ARGS)

# The suite without the slow end-to-end DAG runs, leaving the stack up (for development).
test-fast: airflow-db
	$(WITH_ENV) $(VENV)/bin/pytest -m "not e2e" $(PYTEST_ARGS)

demo: airflow-db
	$(WITH_ENV) $(PY) -m devstack.demo

# make up stops the local stack when it ends, unless the stack was already up before it started;
# exec: Ctrl-C and SIGTERM reach make up itself, which stops what it started
up: $(STAMP)
	@was_up=no; $(STACK) is-up && was_up=yes; $(MAKE) --no-print-directory airflow-db; \
	$(WITH_ENV) FINFLOWS_STACK_WAS_UP=$$was_up PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(PY) -m devstack.standalone

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict $(STRICT_CORE)

bench: airflow-db
	$(WITH_ENV) $(PY) -m bench

SEEDS ?= 1 2 3
chaos: airflow-db
	$(WITH_ENV) $(PY) -m devstack.chaos $(foreach s,$(SEEDS),--seed $(s))

clean: stack-down
	rm -rf $(LOCAL)
