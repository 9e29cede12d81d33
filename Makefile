# Two commands matter: `make run` (demo on http://127.0.0.1:8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Under CI the suite runs on SQLite and again on PostgreSQL with the services tests.
CI_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cairn
CI_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format install migrate worker beat clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet '.[test]'
	@touch $@

install: $(VENV)/.installed

run: export DEBUG = true
run: export CAIRN_DEMO = true
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py load_demo_metrics
	@echo "Cairn: admin http://127.0.0.1:8000/admin/  API http://127.0.0.1:8000/api/v1/  docs http://127.0.0.1:8000/api/docs/"
	$(BIN)/python manage.py runserver 127.0.0.1:8000

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(VENV)/.installed-test lint
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run
ifeq ($(CI),true)
	env -u DATABASE_URL $(BIN)/pytest -m "not services"
	DATABASE_URL=$(CI_DATABASE_URL) CAIRN_TEST_BROKER_URL=$(CI_BROKER_URL) $(BIN)/pytest
else
	$(BIN)/pytest
endif

# Benchmarks against their targets on SQLite, then on PostgreSQL too when BENCH_DATABASE_URL is set.
BENCH_DATABASE_URL ?=
bench: $(VENV)/.installed-test
	env -u DATABASE_URL $(BIN)/python -m benchmarks.run
ifneq ($(BENCH_DATABASE_URL),)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m benchmarks.run
endif

# Production-like processes for a local PostgreSQL + Redis setup (see README).
worker: $(VENV)/.installed
	$(BIN)/celery -A cairn worker -Q default,evidence,reports --loglevel INFO

beat: $(VENV)/.installed
	$(BIN)/celery -A cairn beat --loglevel INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
