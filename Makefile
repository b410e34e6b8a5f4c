# Each target bootstraps .venv itself, so both work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@echo "mediawatch: creating $(VENV) and installing pinned dependencies (about 2-3 minutes on a first install)..."
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)
	@echo "mediawatch: installed in $(VENV) ($$($(BIN)/python -m pip list --format=freeze 2>/dev/null | wc -l) packages)"

run: $(STAMP)
	$(BIN)/mediawatch run --config $${MEDIAWATCH_CONFIG:-outlets.toml} --db $${MEDIAWATCH_DB:-data/archive.duckdb}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

# The inner loop: everything but the tests that start processes or crawls (marked slow).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/real_pages.py
	$(BIN)/python bench/real_recurring.py
	$(BIN)/python bench/extract_quality.py
	$(BIN)/python bench/promo_quality.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
