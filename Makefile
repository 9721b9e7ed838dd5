# Every target bootstraps .venv first, so each works from a fresh clone.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv run demo test check bench clean

venv:
	@sh scripts/bootstrap-venv.sh

## The main job: migrate the ledger (SQLite ./treasury.db by default) and watch mainnet.
run: venv
	$(BIN)/treasury db upgrade
	$(BIN)/treasury run

## The same pipeline offline on bundled recorded mainnet data.
demo: venv
	$(BIN)/treasury demo

## The whole test suite; starts a throwaway PostgreSQL when none listens on 127.0.0.1:5432.
## The report test needs Debian's Chromium: installed here when missing.
test: venv
	@sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: venv
	$(BIN)/ruff check indexer pricing reconcile ledger_client tests bench scripts
	$(BIN)/ruff format --check indexer pricing reconcile ledger_client tests bench scripts
	$(BIN)/mypy

## Benchmarks; results are written to docs/BENCHMARKS.md.
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
