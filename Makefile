.DEFAULT_GOAL := help
PY := .venv/bin/python

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run:  ## Install and run on the embedded default (web + worker), printing a demo login
	./scripts/run.sh

test:  ## Run the tests (SQLite; set DATABASE_URL/REDIS_URL for PostgreSQL + Redis)
	./scripts/test.sh

lint:  ## ruff check + format check + migrations check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

scp:  ## Run the DICOM SCP (C-ECHO, C-STORE, C-FIND)
	$(PY) manage.py dicom_scp

bench:  ## Start the production-like benchmark server; the runs are listed in bench/README.md
	bash bench/serve.sh
