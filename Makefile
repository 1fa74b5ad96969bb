# socred — two commands do all set-up on a fresh machine:
#   make run    the platform on the embedded default (SQLite + DuckDB) with demo data, on 127.0.0.1:8000
#   make test   install everything and run the whole test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DB ?= socred.db
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test lint typecheck fmt bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	touch $(STAMP)

install: system-deps $(STAMP)

# A JVM for Spark (local mode in tests): installed from Debian's packages when missing.
system-deps:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime for Spark"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless; }
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the portal's browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; }

run: install
	$(BIN)/socred --db $(DB) init
	$(BIN)/socred --db $(DB) demo
	$(BIN)/socred --db $(DB) serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck:
	$(BIN)/mypy

fmt:
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# wrk drives the HTTP load benchmarks (without it the suite falls back to a slower Python load generator).
bench: install
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk for the HTTP benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk || true; }
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
