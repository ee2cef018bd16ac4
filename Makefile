# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser demo test test-sqlite test-postgres lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the console tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test-sqlite: install browser
	env -u OMNI_TEST_DATABASE_URL $(BIN)/python -m pytest

test-postgres: install browser
	@if [ -n "$$OMNI_TEST_DATABASE_URL" ]; then \
		echo "== suite on PostgreSQL: $$OMNI_TEST_DATABASE_URL"; \
		$(BIN)/python -m pytest; \
	else echo "OMNI_TEST_DATABASE_URL not set: PostgreSQL run skipped"; fi

test: lint test-sqlite test-postgres

demo: install
	rm -f omniretail.db omniretail.db-wal omniretail.db-shm
	$(BIN)/omni db upgrade
	$(BIN)/omni demo load
	$(BIN)/omni serve --host 127.0.0.1 --port 8000 --with-worker

bench: install
	@for f in bench/*.py; do echo "== $$f" >&2; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) omniretail.db* omniretail-jobs.db* .pytest_cache .mypy_cache .ruff_cache
