# One entry point for people and CI. `make run` and `make test` do all the set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo replay-samples test test-unit test-integration test-e2e lint fmt bench clean

install: $(STAMP)

# pip prints each package as it goes (about half a minute on a first install).
$(STAMP): pyproject.toml
	@# A half-made environment (an install interrupted while creating it) is made again.
	@$(PY) -m pip --version >/dev/null 2>&1 || { echo "creating $(VENV)/"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@echo "updating pip in $(VENV)/"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "installing khook and its development tools into $(VENV)/"
	@$(PY) -m pip install --progress-bar on -e '.[dev]'
	@touch $@
	@echo "installed: $(VENV)/bin/khook --version says $$($(VENV)/bin/khook --version)"

# The whole system on this machine until Ctrl-C: every function under functions-framework,
# the Pub/Sub emulator (or an in-process bus), SQLite state and a demo A2A agent under .khook/.
run: install
	$(VENV)/bin/khook up --config config

# With `make run` going in another terminal: every bundled sample of every source, through
# the running stack, timestamps moved to now; the agent prints the prompts it receives.
DEMO_SOURCES := kubernetes alertmanager webhook kafka cdc gcp
demo: install
	@set -e; for source in $(DEMO_SOURCES); do \
		$(VENV)/bin/khook send --shift-to-now $$source config/samples/$$source/*; done

# Replays the bundled sample Kubernetes events through the example hooks in dry-run,
# with the clock fixed to when the samples were recorded, and prints what would fire and why.
replay-samples: install
	$(VENV)/bin/khook validate --config config
	$(VENV)/bin/khook replay --source kubernetes --config config --state memory \
		--now 2026-01-05T10:35:00Z config/samples/kubernetes/events.jsonl 2>&1 \
		| $(PY) scripts/explain.py

# lint-imports checks the import contracts in pyproject.toml (layers, heavy clients, the local
# stack); it takes about a second, so it runs without a cache directory.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(VENV)/bin/pytest

# One kind of test at a time; the marker is set from the directory (tests/unit, tests/integration,
# tests/e2e) by tests/conftest.py.
test-unit: install
	$(VENV)/bin/pytest -m unit

test-integration: install
	$(VENV)/bin/pytest -m integration

test-e2e: install
	$(VENV)/bin/pytest -m e2e

# Every benchmark, each figure printed beside its budget; then docs/benchmarks.md from the run.
# Every benchmark runs even when one misses or fails (its exit status is recorded), the report
# is always written, and then the target fails if anything missed or was not measured.
BENCH_RESULTS := $(or $(KHOOK_BENCH_RESULTS),.khook/bench-results.jsonl)
bench: install
	@rm -f $(BENCH_RESULTS)
	@for bench in benchmarks/*.py; do \
		case $$bench in */_*) continue;; esac; \
		echo "== $$bench"; $(PY) $$bench; status=$$?; \
		KHOOK_BENCH_RESULTS=$(BENCH_RESULTS) $(PY) benchmarks/_report.py exited $$bench $$status; \
	done
	$(PY) scripts/bench_report.py --results $(BENCH_RESULTS) --output docs/benchmarks.md

clean:
	rm -rf $(VENV) .khook build .cache .mypy_cache .pytest_cache .ruff_cache .import_linter_cache

-include make/*.mk
