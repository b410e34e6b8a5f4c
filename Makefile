# Each target bootstraps .venv itself, so both work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean browser

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
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests of `mediawatch serve` drive Debian's Chromium (never a browser download).
browser:
	@test -x /usr/bin/chromium || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "mediawatch: installing Debian's chromium for the browser tests..."; \
	    apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }; \
	  else \
	    echo "mediawatch: the browser tests need Chromium at /usr/bin/chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu)"; exit 1; \
	  fi; }

test: lint browser
	$(BIN)/pytest -q -p no:cacheprovider

# The inner loop: everything but the tests that start processes or crawls (marked slow).
test-fast: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/real_pages.py
	$(BIN)/python bench/real_recurring.py
	$(BIN)/python bench/extract_quality.py
	$(BIN)/python bench/promo_quality.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
