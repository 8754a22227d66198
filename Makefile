# One command trains on the built-in synthetic receipts (`make train`), one runs the tests (`make test`).
# pip + venv on purpose: the locally cached torch wheels are only visible to pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=
# Unit and integration tests run on this many pytest-xdist processes (one file per process, so a
# file's module fixtures are built once): most tests wait on subprocesses or one core, so 2 cores
# fit 2. The performance suite always runs alone afterwards: it times things.
TEST_JOBS ?= 2
DEMO_ARGS ?=
BASELINE ?= tests/performance/baselines/baseline.json
ARGS ?=

.PHONY: venv train demo test test-all perf perf-baseline lint typecheck bench-targets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: cleval and timm import it at install time
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Train on the built-in synthetic receipts (short default run; extra Hydra overrides via ARGS="...").
train: $(STAMP)
	$(BIN)/ocr train $(ARGS)

## The newest run's best checkpoint on unseen synthetic receipts (+ SROIE val when ../shared exists): overlays.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

## The test suite: unit and integration (in parallel), then the fast part of the performance suite.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile tests/unit tests/integration $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not perf_full" tests/performance --baseline $(BASELINE) --ci $(PYTEST_ARGS)

## Everything, including the slow performance checks.
test-all: $(STAMP)
	$(BIN)/python -m pytest --baseline $(BASELINE) $(PYTEST_ARGS)

## The performance regression suite against the committed baseline.
perf: $(STAMP)
	$(BIN)/python -m pytest -m performance tests/performance --baseline $(BASELINE) $(PYTEST_ARGS)

## Refresh the committed baseline (on the machine it should describe; see docs/performance.md).
perf-baseline: $(STAMP)
	$(BIN)/ocr bench --save-baseline tests/performance/baselines/baseline.json

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

bench-targets: $(STAMP)
	$(BIN)/ocr bench targets --data ../shared/datasets/sroie/val --size 1024

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .mypy_cache .ruff_cache
