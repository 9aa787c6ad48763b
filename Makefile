# Everyday commands. `make demo` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.drypipe-installed
DEMO_DIR ?= demo-instance
BENCH_ARGS ?=

.PHONY: install demo test test-fast bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/bootstrap.sh drypipe/runtime/bash_builtins.c
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

## bench: benchmarks against a floor measured in the same run (median of 3), and the Slurm
## commands of 1000 tasks on the real cluster (as root it starts Slurm first and leaves it up;
## scripts/services-down.sh stops it). Arguments: make bench BENCH_ARGS="--quick --only slurm"
bench: install
	scripts/run-bench.sh $(BIN) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info drypipe/runtime/bash_builtins.so .pytest_cache
