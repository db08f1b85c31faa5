# The two commands a new machine needs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
export PATH := $(BIN):$(PATH)

.PHONY: install browser run test test-fast lint migrate clean bench bench-instructions

# Reinstall whenever a requirements file changes.
$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/prod.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed

## The console's browser test drives Debian's chromium and chromedriver; installed here when missing
## and this runs as root with apt-get (otherwise that test fails, naming what to install).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing chromium and chromium-driver for the console's browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "warning: $(CHROMIUM) or $(CHROMEDRIVER) missing: install Debian's chromium and chromium-driver" >&2; \
	  fi; \
	fi

migrate: install
	$(BIN)/python manage.py migrate --noinput

## make run: the service on embedded defaults (SQLite, filesystem broker, mail to var/mail/).
run: migrate
	$(BIN)/python manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/honcho start -f Procfile web worker beat

## make test: ruff, the apps' layering (pyproject.toml, [tool.importlinter]), then the whole suite
## against PostgreSQL and RabbitMQ on localhost, naming its 25 slowest steps.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo
	DJANGO_SETTINGS_MODULE=notifier.settings.test $(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

## make test-fast: the unit and API tests, for the edit-test loop: no end-to-end or `slow` test, no
## browser, and the test database kept between runs (--reuse-db: only new migrations are applied).
test-fast: install
	DJANGO_SETTINGS_MODULE=notifier.settings.test $(BIN)/python -m pytest --ignore=tests/e2e -m "not e2e and not slow" \
	  --reuse-db -q $(PYTEST_ARGS)

## make bench: the Procfile's processes on PostgreSQL and RabbitMQ under load (docs/performance.md).
$(VENV)/.bench-installed: $(VENV)/.installed requirements/bench.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

## make bench-instructions: the web process's instructions per notification, counted by valgrind
## (a figure the machine's load does not move; docs/performance.md).
bench-instructions: $(VENV)/.bench-installed
	@command -v valgrind >/dev/null || { echo "make bench-instructions needs valgrind (apt-get install valgrind)" >&2; exit 2; }
	$(BIN)/python -m bench.instructions $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf var .pytest_cache
