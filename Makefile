# Two commands do all the set-up on a fresh machine (Python >= 3.10 and pip):
#   make run    install into .venv, then meta-train ProtoNet on the shipped Omniglot and print test accuracy ± 95% CI
#   make test   install into .venv (with test extras and a PostgreSQL server), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install benchmarks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python train.py +experiment=quickstart

test: $(STAMP)
	scripts/ensure-postgres.sh
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

benchmarks: $(STAMP)
	$(BIN)/python -m pytest -q -m benchmark

clean:
	rm -rf $(VENV) logs outputs multirun .pytest_cache
