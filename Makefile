# `make run`  - install, migrate, seed demo data, serve http://127.0.0.1:8000 (fastapi dev)
# `make lock` - re-resolve requirements*.lock within pyproject.toml's ranges
# `make test` - install with dev tools, then ruff, mypy and the whole test suite on
#               both stacks: SQLite + local media, then PostgreSQL + S3 (moto_server)
#               `make test LEG=sqlite` or `LEG=postgres` runs one;
#               `PYTEST_ARGS="-k images -x"` passes options to pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
LEG ?= all

.PHONY: run test lint install install-dev migrate seed lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Exact versions from the lock files, then the app itself (its dependencies
# are already there).
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

# Resolve the newest versions that pyproject.toml allows into the lock files.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --upgrade --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links --extra dev --output-file requirements-dev.lock pyproject.toml

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/alembic upgrade head

seed: migrate
	$(BIN)/python -m app seed

run: seed
	$(BIN)/fastapi dev app/main.py --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m tests.legs --leg $(LEG) -- $(PYTEST_ARGS)
