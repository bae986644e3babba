# make demo: its own environment (.venv-demo) with the runtime dependencies only, so that a first
# run takes seconds; it runs the library from src/. Every other target bootstraps .venv with the
# development extras on first use. Both are idempotent: reinstalled only when pyproject.toml changes.
# Another Python: make test PYTHON=python3.10 VENV=.venv-3.10
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
# The runtime dependencies, as pyproject.toml lists them (tests/test_install.py checks they agree).
DEMO_DEPS := 'attrs>=23.1' 'cattrs>=23.2.1' 'anyio>=4.11'

.PHONY: demo test quick real-streams e2e-prometheus bench bench-smoke fuzz-long scaling docs wheel clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A venv without pip of its own, filled by the interpreter's pip (--python, pip 22.3+): creating a
# venv with pip costs more than the install. Without a usable pip outside, the venv gets its own.
$(DEMO_STAMP): pyproject.toml
	rm -rf $(DEMO_VENV)
	$(PYTHON) -m venv --without-pip $(DEMO_VENV)
	$(PYTHON) -m pip --python $(DEMO_VENV)/bin/python install --quiet $(DEMO_DEPS) 2>/dev/null \
	  || { $(DEMO_VENV)/bin/python -m ensurepip --default-pip >/dev/null \
	       && $(DEMO_VENV)/bin/python -m pip install --quiet $(DEMO_DEPS); }
	touch $(DEMO_STAMP)

## Main job: replay the bundled example streams and show their final usage and cost.
demo: $(DEMO_STAMP)
	PYTHONPATH=src $(DEMO_VENV)/bin/python -m usagetally replay --prices examples/prices.json \
	  --total examples/*.sse

## Full test gate: tests (with doc examples), mypy strict, ruff, docs build (warnings are errors).
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/python -m mypy
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

## Quick loop (under 30 s; see docs/internals.md): the tests that mirror a module, with
## properties at 10 examples (--hypothesis-profile=quick, tests/conftest.py). Not the campaigns
## (fuzz, differential, catalogue, faults, hostile, scaling), the subprocess tests (CLI, pytest
## plugin, install, benchmarks smoke), the doctests, mypy, ruff or the docs: run make test before
## a commit.
QUICK_TESTS := accumulator sse framings converter models wire checks figures cost prices otel public_api \
  bad_arguments event_types testing sync aio worker hooks anthropic_interop
quick: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-profile=quick \
	  $(foreach t,$(QUICK_TESTS),tests/test_$(t).py)

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

## Scaling campaign: time per byte and peak memory of every stream shape, 64 KiB to 16 MiB
## (fails when one grows; its table is in docs/guarantees.md).
scaling: $(STAMP)
	$(BIN)/python benchmarks/scaling.py --markdown

## Long fuzzing campaign (100,000+ examples per property).
fuzz-long: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_fuzz.py --fuzz-long

## A wheel in dist/, to install into another project (README, "Install").
wheel:
	$(PYTHON) -m pip wheel --quiet --no-deps -w dist .

clean:
	rm -rf $(VENV) $(DEMO_VENV) dist docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis
