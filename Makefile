# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Singer taps live in venvs of their own, as in production: they pin their own dependencies.
TAPS := .venv-taps
TAP_STAMP := $(TAPS)/.installed

.PHONY: demo test lint bench faults mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncline demo --workspace syncline-demo

$(TAP_STAMP):
	$(PYTHON) -m venv $(TAPS)/tap-jsonl
	$(TAPS)/tap-jsonl/bin/pip install --quiet 'tap-jsonl==0.3.*'
	touch $(TAP_STAMP)

test: $(STAMP) $(TAP_STAMP)
	SYNCLINE_TEST_TAPS=$(CURDIR)/$(TAPS) $(BIN)/pytest -q -p no:cacheprovider --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

faults: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m faults_full tests/faults tests/orchestration -s

# a mutation test of the loaders' commit and merge code (tens of minutes; not part of `make test`)
mutants: $(STAMP)
	SYNCLINE_REQUIRE_SERVICES=1 $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

bench: $(STAMP)
	$(BIN)/python bench/sqlite_to_duckdb.py

clean:
	rm -rf $(VENV) $(TAPS) syncline-demo
