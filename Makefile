# Two commands do all the set-up on a fresh machine:
#   make run    create the venv, install, open the app (sandbox offered when empty)
#   make test   create the venv, install system test dependencies, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint system-deps python-deps bench screenshots clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || PYTHON=$(PYTHON) bash scripts/install-system-deps.sh --venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(VENV)/bin/tunnel-tui

demo: $(STAMP)
	$(VENV)/bin/tunnel-tui demo

system-deps:
	@PYTHON=$(PYTHON) bash scripts/install-system-deps.sh

# The stamp follows pyproject.toml's mtime; this also catches a venv that drifted from it.
python-deps: $(STAMP)
	@$(PY) tests/harness_deps.py dev || $(PY) -m pip install -q -e '.[dev]'

test: system-deps python-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) system-deps
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench

screenshots: $(STAMP)
	$(PY) scripts/export_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
