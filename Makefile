# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench faults clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncline demo --workspace syncline-demo

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

faults: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m faults_full tests/faults -s

bench: $(STAMP)
	$(BIN)/python bench/sqlite_to_duckdb.py

clean:
	rm -rf $(VENV) syncline-demo
