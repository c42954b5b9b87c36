# One entry point for people and CI. `make run` and `make test` do all the set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test test-unit lint fmt bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Replays the bundled sample Kubernetes events through the example hooks in dry-run,
# with the clock fixed to when the samples were recorded, and prints what would fire and why.
run: install
	$(VENV)/bin/khook validate --config config
	$(VENV)/bin/khook replay --source kubernetes --config config --state memory \
		--now 2026-01-05T10:35:00Z config/samples/kubernetes/events.jsonl \
		| $(PY) scripts/explain.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(VENV)/bin/pytest

test-unit: install
	$(VENV)/bin/pytest tests/unit

bench: install
	@set -e; for bench in benchmarks/*.py; do \
		echo "== $$bench"; $(PY) $$bench; done

clean:
	rm -rf $(VENV) .khook build .cache .mypy_cache .pytest_cache .ruff_cache

-include make/*.mk
