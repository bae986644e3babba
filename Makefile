# Every target bootstraps .venv on first use (idempotent: reinstalls only when pyproject.toml changes).
# Another Python: make test PYTHON=python3.10 VENV=.venv-3.10
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test real-streams e2e-prometheus bench bench-smoke fuzz-long docs clean

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

## Replay the recorded API streams of ../shared/real-streams (when there) against the SDK.
real-streams: $(STAMP)
	$(BIN)/python tools/real_streams.py

## Fleet totals through a real Prometheus server (tests/e2e/test_prometheus.py): installs
## Debian's prometheus package first when it is not on PATH (needs root), then runs the test.
e2e-prometheus: $(STAMP)
	tools/install-prometheus
	$(BIN)/python -m pytest -q -m e2e tests/e2e/test_prometheus.py -p no:cacheprovider

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

## Benchmarks side by side; writes docs/performance.md and docs/_static/performance.png.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## Long fuzzing campaign (100,000+ examples per property).
fuzz-long: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_fuzz.py --fuzz-long

clean:
	rm -rf $(VENV) docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis
