# Everyday commands. `make demo` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.drypipe-installed
DEMO_DIR ?= demo-instance
BENCH_ARGS ?=
TORTURE_KILLS ?= 100
TORTURE_CRASH_N ?= $(shell echo $$((10 * $(TORTURE_KILLS))))
MODEL_EXAMPLES ?= 500
TORTURE_REPORT := $(CURDIR)/torture-report.jsonl

.PHONY: install demo test test-fast bench torture sql lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh $(PYTHON) $(VENV)
	@touch $(STAMP)

## demo: run the example pipeline of examples/demo.py on the local executor
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/drypipe run --pipeline-instance-dir $(DEMO_DIR) --generator examples.demo:pipeline
	$(BIN)/drypipe list-states --pipeline-instance-dir $(DEMO_DIR)

## test: the whole suite (as root it also installs and starts Slurm and sshd for their tests)
test: install
	scripts/run-tests.sh $(BIN)

## test-fast: unit tests and local integration tests only
test-fast: install
	$(BIN)/python -m pytest -q -m "not slurm and not ssh"

## bench: benchmarks of a wheel of this checkout installed in a fresh venv (BENCH_INSTALL=editable:
## the dev install) against a floor measured in the same run (median of 3), and the Slurm
## commands of 1000 tasks on the real cluster (as root it starts Slurm first and leaves it up;
## scripts/services-down.sh stops it). Arguments: make bench BENCH_ARGS="--quick --only slurm"
bench: install
	scripts/run-bench.sh $(BIN) $(BENCH_ARGS)

## sql: regenerate drypipe/state/sql.py (the store's SQL) from the model tables after changing
## drypipe/state/models.py (tests/test_schema.py fails until then)
sql: install
	$(BIN)/python -m drypipe.state.sqlgen > drypipe/state/sql.py.new && mv drypipe/state/sql.py.new drypipe/state/sql.py

## torture: the crash-safety tests run long, with figures: TORTURE_KILLS orchestrator kills of a
## pipeline of 2*TORTURE_CRASH_N+2 tasks (10 per kill by default), then MODEL_EXAMPLES examples
## of the model-based test; figures in torture-report.jsonl and a summary at the end.
## make torture TORTURE_KILLS=100 MODEL_EXAMPLES=20
torture: install
	rm -f $(TORTURE_REPORT)
	@rc=0; export DRYPIPE_TORTURE_REPORT=$(TORTURE_REPORT); \
	time DRYPIPE_TORTURE_KILLS=$(TORTURE_KILLS) CRASH_N=$(TORTURE_CRASH_N) \
		$(BIN)/python -m pytest -q -s tests/test_crash_safety.py || rc=1; \
	time DRYPIPE_MODEL_EXAMPLES=$(MODEL_EXAMPLES) $(BIN)/python -m pytest -q -s tests/test_model.py || rc=1; \
	$(BIN)/python scripts/torture-summary.py $(TORTURE_REPORT); exit $$rc

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info .pytest_cache
