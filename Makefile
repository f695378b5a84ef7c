# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install test integration e2e demo bench lint generate check clean

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

# Against a real kube-apiserver + etcd built from the Go module in e2e/cluster/ (Go needed): builds what is
# missing into ${XDG_CACHE_HOME:-~/.cache}/tfs-gitops/bin/ (minutes, once per pinned version), then the tests.
e2e: install
	$(BIN)/python -m devtools.kubecluster build
	$(BIN)/pytest -m e2e tests/e2e

# Uses the real API server when `make e2e` has built it (TFS_DEMO_BUILD=1 builds it); says so when it cannot.
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
