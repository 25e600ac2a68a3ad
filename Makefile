# Two commands on a fresh machine: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Installed without their declared requirements (pyproject.toml's engine extra has what they need; docs/licences.md):
# mediapipe 0.10.21 (pose from a photo, engine/pose.py) pins numpy<2 and pulls jax, matplotlib, opencv-contrib,
# sounddevice and sentencepiece, none of which pose detection uses; spandrel 0.4.2 (super-resolution models)
# declares torchvision, which is kept out (its import then needs a stand-in torchvision module: docs/licences.md).
NO_DEPS := 'mediapipe==0.10.21' 'spandrel==0.4.2'
# `make test` runs the suite in this many processes (pytest-xdist, a test file per process at a time; each has its
# own test database, DATA_DIR and queue names: tests/pytest_workers.py). PYTEST_WORKERS=0 runs it in one.
PYTEST_WORKERS ?= 2

.PHONY: run test install lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The demo does the whole job on the CPU: the engine (torch CPU build, diffusers, peft) is part of it.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[engine]'
	$(PIP) install --no-deps $(NO_DEPS)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps $(NO_DEPS)
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

# The demo: migrate, demo studio + owner (login printed), then the web server, the task worker and a gpu
# worker (on the CPU here); Ctrl-C stops all three.
run: $(VENV)/.installed
	$(PY) manage.py compile_catalogues
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo_setup
	$(PY) manage.py runall

# Browser tests drive Debian's chromium; install it where it is missing (needs root or sudo).
/usr/bin/chromium:
	@if command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    ( $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium ) ) || \
	  echo "chromium could not be installed: browser tests will be skipped"; \
	else echo "no apt-get: browser tests will be skipped"; fi

# The translation catalogues (locale/*/LC_MESSAGES/*.po) compiled to .mo with babel: no GNU gettext needed.
test: $(VENV)/.installed-test /usr/bin/chromium
	@$(PY) manage.py compile_catalogues >/dev/null
	@DBURL=$$($(PY) scripts/test_database_url.py); \
	echo "Test database: $${DBURL:-SQLite (no PostgreSQL)}"; \
	DATABASE_URL="$$DBURL" DATA_DIR=$$(mktemp -d) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed-test
	$(PY) bench/web.py
	$(PY) bench/intake.py

clean:
	rm -rf $(VENV) var
