# One entry point per habit. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_SECONDS ?= 300

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev tools

run: $(STAMP) ## Start the broker on the embedded SQLite database (./.brokkr)
	$(BIN)/brokkr serve

test: $(STAMP) ## Run the whole test suite (SQLite and PostgreSQL)
	$(BIN)/pytest

lint: $(STAMP) ## ruff, ruff format --check, mypy, import-linter
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test ## Everything CI runs

bench: $(STAMP) ## Authenticated GET /agents/{id} vs a bare Litestar+asyncpg ceiling (PostgreSQL)
	$(BIN)/python bench/auth_get_agent.py

fuzz: $(STAMP) ## Schemathesis over the broker's OpenAPI on SQLite for FUZZ_SECONDS (300); not in test
	$(BIN)/python bench/fuzz.py --seconds $(FUZZ_SECONDS)

.PHONY: help install run test lint check bench fuzz
