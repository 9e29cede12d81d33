# Two commands matter: `make run` (demo on http://127.0.0.1:8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Under CI the suite runs on SQLite and again on PostgreSQL with the services tests.
CI_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cairn
CI_BROKER_URL ?= redis://127.0.0.1:6379/15
CI_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/cairn_test

.PHONY: run test lint format install migrate worker beat clean bench soak

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
	env -u DATABASE_URL $(BIN)/pytest -m "not services and not heavy and not browser"
	DATABASE_URL=$(CI_DATABASE_URL) CAIRN_TEST_BROKER_URL=$(CI_BROKER_URL) CAIRN_TEST_AMQP_URL=$(CI_AMQP_URL) $(BIN)/pytest
else
	$(BIN)/pytest
endif

# Benchmarks against their targets on SQLite, then on PostgreSQL: BENCH_DATABASE_URL, or the local server when it
# answers (the web benchmarks run only there). Both passes run; either one failing fails the target.
BENCH_DATABASE_URL ?=
BENCH_DEFAULT_DATABASE_URL := postgres://postgres@127.0.0.1:5432/cairn
bench: $(VENV)/.installed-test
	@status=0; env -u DATABASE_URL $(BIN)/python -m benchmarks.run || status=1; \
	url="$(BENCH_DATABASE_URL)"; \
	if [ -z "$$url" ] && $(BIN)/python -c "import psycopg; psycopg.connect('$(BENCH_DEFAULT_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', connect_timeout=2).close()" 2>/dev/null; then \
		url="$(BENCH_DEFAULT_DATABASE_URL)"; fi; \
	if [ -n "$$url" ]; then DATABASE_URL="$$url" $(BIN)/python -m benchmarks.run || status=1; \
	else echo "no PostgreSQL at $(BENCH_DEFAULT_DATABASE_URL) (set BENCH_DATABASE_URL): PostgreSQL pass skipped"; fi; \
	exit $$status

# Load test (not in CI): recreates SOAK_DATABASE_URL (default cairn_soak), loads the demo, drives gunicorn 60 s.
soak: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.soak

# Production-like processes for a local PostgreSQL + Redis setup (see README).
worker: $(VENV)/.installed
	$(BIN)/celery -A cairn worker -Q default,evidence,reports --loglevel INFO

beat: $(VENV)/.installed
	$(BIN)/celery -A cairn beat --loglevel INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
