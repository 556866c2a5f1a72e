# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project pinned by constraints.txt.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export GTO_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

CHROMIUM := /usr/bin/chromium
HAPROXY := /usr/sbin/haproxy
PROMETHEUS := /usr/bin/prometheus
# Debian puts PostgreSQL's server binaries under /usr/lib/postgresql/N/bin (N: its major version).
PG_CTL := $(or $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))),/usr/lib/postgresql/N/bin/pg_ctl)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv demo test test-long test-binder test-wheel lint typecheck pytest bench clean constraints readme

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name rollbackkit --display-name "Python (rollbackkit)" > /dev/null
	touch $@

demo: $(STAMP)
	$(BIN)/rollbackkit demo --dir demo-project

# The import contracts (pyproject.toml [tool.importlinter]) keep the layers pointing down.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check rollbackkit tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser test drives Debian's Chromium (never a downloaded browser build).
$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The replica tests start a real PostgreSQL (as the postgres user when root) and HAProxy,
# both Debian's packages, on 127.0.0.1 (tests/postgres.py, tests/haproxy.py).
$(PG_CTL) $(HAPROXY):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql haproxy

# The metrics test scrapes a server with Debian's Prometheus (its web assets are not needed).
$(PROMETHEUS):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus

# Two workers (this machine kind has 2 cores); worksteal keeps the long story tests from
# queueing behind each other. Timing-sensitive checks allow for a busy neighbour.
# One OpenMP/BLAS thread per process: two workers on two cores, and tests that score in
# loops would otherwise oversubscribe them (servers cap their own scoring threads anyway).
pytest: $(STAMP) $(CHROMIUM) $(PG_CTL) $(HAPROXY) $(PROMETHEUS)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist worksteal

test: lint typecheck pytest

# The few long runs whose coverage make test keeps in a shorter sibling (marked `long`): the
# 50-shift replica story and the duplicate label kinds of the whole-story matrix (~2.5 min).
test-long: $(STAMP) $(CHROMIUM) $(PG_CTL) $(HAPROXY) $(PROMETHEUS)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist worksteal -m long

# The binder/ check builds a fresh environment from PyPI (several minutes): kept out of
# `make test` to hold it under 15 minutes.
test-binder: $(STAMP)
	$(BIN)/pytest -q -m slow tests/test_binder.py

# The wheel a user installs, in a fresh venv, runs the demo (minutes: outside `make test`;
# tests/test_wheel.py checks the wheel's file list inside it).
test-wheel: $(STAMP)
	rm -rf build/wheel-check build/lib && mkdir -p build/wheel-check
	$(BIN)/pip wheel -q --no-deps -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/pip install -q -c constraints.txt build/wheel-check/rollbackkit-*.whl
	cd build/wheel-check && venv/bin/rollbackkit demo --dir demo-project

bench: $(STAMP)
	$(BIN)/python -m bench

# Regenerate the README's CLI reference from the CLI's own help.
readme: $(STAMP)
	$(BIN)/python -m rollbackkit.cli_reference README.md

# Refresh the pins after changing dependencies in pyproject.toml.
constraints: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^rollbackkit' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
