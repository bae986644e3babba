# Every target bootstraps .venv on first use (idempotent: reinstalls only when pyproject.toml changes).
# Another Python: make test PYTHON=python3.10 VENV=.venv-3.10
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-smoke fuzz-long scaling docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Main job: replay the bundled example streams and show their final usage.
demo: $(STAMP)
	$(BIN)/usagetally replay examples/*.sse

## Full test gate: tests (with doc examples), mypy strict, ruff, docs build (warnings are errors).
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/python -m mypy
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

## Benchmarks side by side; writes docs/performance.md and docs/_static/performance.png.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## Scaling campaign: time per byte and peak memory of every stream shape, 64 KiB to 16 MiB
## (fails when one grows; its table is in docs/guarantees.md).
scaling: $(STAMP)
	$(BIN)/python benchmarks/scaling.py --markdown

## Long fuzzing campaign (100,000+ examples per property).
fuzz-long: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_fuzz.py --fuzz-long

clean:
	rm -rf $(VENV) docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis
