# Function packaging and the offline Terraform checks. Included by the top-level Makefile,
# which defines PY (the project venv's python); `make install` must have run.

TF_DIR          ?= terraform
PYTEST          ?= .venv/bin/pytest
CHECKOV_VENV    ?= .cache/checkov-venv
# Pinned: a new checkov release can add checks, and tf-check must not fail by itself.
CHECKOV_VERSION ?= 3.3.30
CHECKOV         := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: package tf-check tf-fmt tf-schema tf-test tf-checkov

## package: build build/functions/<source>.zip for every functions/<source>/ (deterministic)
package:
	$(PY) scripts/package.py

## tf-check: terraform fmt, provider schema check, consistency tests, checkov (all offline
## once .cache/ is filled; the first run downloads the provider schema from npm and checkov from PyPI)
tf-check: tf-fmt tf-schema tf-test tf-checkov

tf-fmt:
	terraform fmt -check -recursive -diff $(TF_DIR)

tf-schema:
	$(PY) scripts/tf_check.py $(TF_DIR)

tf-test:
	$(PYTEST) tests/unit/terraform tests/integration/terraform -q

# checkov lives in its own venv: installed into the app venv it downgrades packaging and dateutil.
$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

tf-checkov: $(CHECKOV_STAMP)
	BC_SKIP_MAPPING=TRUE $(CHECKOV) -d $(TF_DIR) --framework terraform --skip-download --compact --quiet
