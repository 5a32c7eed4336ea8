# Tandem: `make run` serves the demo, `make test` runs the suite. Everything installs into .venv from
# pyproject.toml, pinned by constraints.txt; nothing needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
# `make run` delivers the outbox from the API process (one worker thread), so "Replay" visibly does something.
DEV_WORKER ?= 1
export TANDEM_DATABASE_URL ?= $(if $(DATABASE_URL),$(DATABASE_URL),sqlite:///$(CURDIR)/var/tandem.db)

.PHONY: run test test-fast ci lint typecheck openapi openapi-check migrations-check docker-lint compose-check install \
	install-dev clean bench bench-smoke soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

# No access log: query strings can carry MRNs, and patient data never goes into logs.
run: install
	$(BIN)/tandem db upgrade
	$(BIN)/tandem demo load --if-empty
	@echo
	@echo "Tandem on http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/docs)"
	@echo "Development token:  $(BIN)/tandem dev-token --tenant demo --role coordinator"
	@echo "  then: curl -H \"Authorization: Bearer \$$TOKEN\" http://$(HOST):$(PORT)/api/v1/patients"
	@echo
	TANDEM_DEV_WORKER=$(DEV_WORKER) $(BIN)/uvicorn service.main:app --host $(HOST) --port $(PORT) --no-access-log

# Two workers: the machine has two cores; each worker gets its own databases.
PYTEST := $(BIN)/pytest -q -n 2

test: install-dev
	$(PYTEST)

# The fast pure suite (under a minute): mappings, plan status, instruments and the sync decisions, no database,
# app or server (tests/pure_suite.py lists the paths; conftest marks them `pure`), with a tenth of each hypothesis
# property's examples (tests/examples_budget.py). Run it while editing; `make test` is the suite that decides.
test-fast: install-dev
	TANDEM_FAST_TESTS=1 $(PYTEST) -m pure $(shell $(BIN)/python -m tests.pure_suite)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

openapi: install-dev
	$(BIN)/tandem openapi

openapi-check: install-dev
	$(BIN)/tandem openapi --check

# Models and migrations agree, and every migration goes up, down and up again (tests/test_migrations.py does
# the same on PostgreSQL).
migrations-check: install-dev
	rm -f var/migrations-check.db
	TANDEM_DATABASE_URL=sqlite:///$(CURDIR)/var/migrations-check.db $(BIN)/alembic upgrade head
	TANDEM_DATABASE_URL=sqlite:///$(CURDIR)/var/migrations-check.db $(BIN)/alembic check
	TANDEM_DATABASE_URL=sqlite:///$(CURDIR)/var/migrations-check.db $(BIN)/alembic downgrade base
	TANDEM_DATABASE_URL=sqlite:///$(CURDIR)/var/migrations-check.db $(BIN)/alembic upgrade head
	rm -f var/migrations-check.db*

docker-lint: install-dev
	$(BIN)/hadolint Dockerfile

# compose.yaml against the Compose Specification's JSON schema (docker compose is not needed; tests/test_compose.py
# adds the checks the schema cannot make).
compose-check: install-dev
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

ci: lint typecheck openapi-check migrations-check docker-lint compose-check
	REQUIRE_POSTGRES=1 REQUIRE_REDIS=1 REQUIRE_FIXTURES=1 REQUIRE_BROWSER=1 $(PYTEST)
	$(MAKE) bench-smoke

# The heavier reliability and sync runs (docs/reliability.md): more load, more faults, more SIGKILLs. Minutes, not
# seconds; `make ci` runs the reduced versions of the same tests. -rP prints each test's figures.
soak: install-dev
	TANDEM_SOAK=1 TANDEM_FAULTS_HEAVY=1 TANDEM_SYNC_HEAVY=1 REQUIRE_POSTGRES=1 $(BIN)/pytest -q -n 2 -rP \
		tests/reliability tests/sync

# Benchmarks (bench/): `make bench` measures and writes docs/benchmarks.md; the smoke run (tiny sizes, no
# judgement of timings) keeps the scripts from rotting and runs in CI.
bench: install-dev
	$(BIN)/python -m bench.run

bench-smoke: install-dev
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
