# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install test integration demo bench lint generate check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: install
	$(BIN)/pytest

# The same S3 suite against Ceph RADOS Gateway (needs radosgw/ceph-mon/ceph-osd from Debian; see .ci/run).
integration: install
	scripts/rgw.sh run -- $(BIN)/pytest -m s3

demo: install
	$(BIN)/python scripts/demo.py

# The webhook bench drives the server with hey (Go, keep-alive connections like the API server's client).
HEY_VERSION := v0.1.5

$(BIN)/hey: | install
	GOBIN=$(CURDIR)/$(BIN) go install github.com/rakyll/hey@$(HEY_VERSION)

bench: install $(BIN)/hey
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/tfs-gitops check

generate: install
	$(BIN)/tfs-gitops generate

check: install
	$(BIN)/tfs-gitops check

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
