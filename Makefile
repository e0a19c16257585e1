# Two commands do all the set-up on a fresh machine (Python >= 3.10 and pip):
#   make run    install into .venv, then meta-train ProtoNet on the shipped Omniglot and print test accuracy ± 95% CI
#   make test   install into .venv (with test extras and a PostgreSQL server), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# One stamp per install: `make run` needs the package and its dependencies only, `make test` the [dev] extras too.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test install install-dev benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP_RUN)

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP_DEV) $(STAMP_RUN)

install: $(STAMP_RUN)

install-dev: $(STAMP_DEV)

run: $(STAMP_RUN)
	$(BIN)/python train.py +experiment=quickstart

test: $(STAMP_DEV)
	scripts/ensure-postgres.sh
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

benchmarks: $(STAMP_DEV)
	$(BIN)/python -m pytest -q -m benchmark

clean:
	rm -rf $(VENV) logs outputs multirun .pytest_cache build
