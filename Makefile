# The human entry point. `make demo` and `make test` each work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format docs bench install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install gristmill with every extra, pinned

demo: $(STAMP) ## run the example pipeline on the embedded defaults and print a summary
	$(BIN)/python examples/penguins/make_data.py
	cd examples/penguins && ../../$(BIN)/gristmill run pipeline.yaml

lint: $(STAMP) ## ruff, mypy (strict) and the import-layer contracts
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

docs: $(STAMP) ## write docs/spec.md's tables of algorithms and metrics from the registries
	$(BIN)/python -m gristmill.training.spec_reference docs/spec.md

test: lint ## lint, then the whole test suite (real services; in CI an absent one fails)
	$(BIN)/pytest

bench: $(STAMP) ## the benchmarks; figures go to bench/RESULTS.md
	$(BIN)/python bench/bench_ingestion.py
	$(BIN)/python bench/bench_bus.py
	$(BIN)/python bench/bench_metadata.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_preparation.py
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_online.py   # Feast peer: python3 -m venv bench/.venv-feast && bench/.venv-feast/bin/pip install -r bench/feast/requirements.txt
	$(BIN)/python bench/bench_serving.py  # needs wrk (apt-get install wrk); peers: bench/serving/requirements-{mlflow,mlserver}.txt
	$(BIN)/python bench/bench_batch.py    # peer: MLflow's venv bench/.venv-mlflow (bench/serving/requirements-mlflow.txt)
	$(BIN)/python bench/bench_monitoring.py drift  # peer: Evidently's venv bench/.venv-evidently (bench/evidently/requirements.txt)

clean:
	rm -rf $(VENV) .gristmill examples/*/.gristmill examples/*/data .pytest_cache .mypy_cache .ruff_cache
