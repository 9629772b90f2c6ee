# Two commands on a fresh machine: `make up` and `make test` (see README.md).
.PHONY: up test lint down samples

VENV := .venv

up:
	@bash scripts/bootstrap.sh
	@$(VENV)/bin/lis up

test:
	@bash scripts/bootstrap.sh --tests
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/python -m pytest

lint:
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports --no-cache

down:
	@$(VENV)/bin/lis db stop

samples:
	@$(VENV)/bin/lis samples generate
