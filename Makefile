# `make run`  - install, migrate, seed demo data, serve http://127.0.0.1:8000
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

.PHONY: run test lint install install-dev migrate seed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/alembic upgrade head

seed: migrate
	$(BIN)/python -m app seed

run: seed
	$(BIN)/uvicorn app.main:create_app --factory --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m tests.legs --leg $(LEG) -- $(PYTEST_ARGS)
