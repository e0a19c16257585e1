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

# The measurements behind benchmarks/results, each writing its results file (hours on 2 CPU cores). The learn2learn
# rows need learn2learn 0.2.0 in .venv; without it the speed table has our rows only and the Reptile curve stops.
benchmarks: $(STAMP_DEV)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/speed/run.py --device cpu
	OMP_NUM_THREADS=2 $(BIN)/python -m benchmarks.reptile.ablation --iterations 1500 --seeds 0 1 --out benchmarks/results/reptile_ablation.jsonl
	OMP_NUM_THREADS=2 $(BIN)/python -m benchmarks.reptile.curve --iterations 1500 --every 500
	$(BIN)/python benchmarks/hpo/regret.py --jobs 2
	$(BIN)/python benchmarks/hpo/families_lofo.py --workers 2
	$(BIN)/python benchmarks/hpo/refit_stream.py --workers 2
	$(BIN)/python benchmarks/pool_load.py --processes 8 --trials 200

clean:
	rm -rf $(VENV) logs outputs multirun .pytest_cache build
