PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test lint format bench clean

help: ## Show the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## Serve the registry on http://127.0.0.1:5000 (SQLite + files in ./data)
	$(BIN)/cargohold serve

# Test files run on several workers, each file on one worker (its module fixtures start
# servers once); most tests wait on servers and clients, so more workers than cores pay.
TEST_WORKERS ?= 3

test: $(STAMP) ## Lint and run the whole test suite (TEST_WORKERS=3 in parallel)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP) ## Lint only
	$(BIN)/ruff check .

format: $(STAMP) ## Format the code
	$(BIN)/ruff format .

bench: $(STAMP) ## cargohold vs CNCF Distribution and the machine limits (BENCH_ARGS=--quick/--smoke)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
