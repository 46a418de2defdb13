# perfstack: `make up` runs the dev stack, `make test` runs every check CI runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
STATE_DIR ?= $(CURDIR)/.state
# The Debian programs the tests run for real (FACTS.md §7).
DEBIAN_PACKAGES := prometheus prometheus-alertmanager redis-server redis-tools prometheus-redis-exporter \
	prometheus-postgres-exporter postgresql jmeter

.PHONY: up down preview test lint venv debian-packages render validate docs clean api seed bench loadtest

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# Local file backend and a passphrase kept beside it (never committed): no account needed.
PULUMI_ENV = PULUMI_BACKEND_URL=file://$(STATE_DIR) PULUMI_SKIP_UPDATE_CHECK=true \
	$(if $(PULUMI_CONFIG_PASSPHRASE),,$(if $(PULUMI_CONFIG_PASSPHRASE_FILE),,PULUMI_CONFIG_PASSPHRASE_FILE=$(STATE_DIR)/passphrase))

$(STATE_DIR)/passphrase:
	mkdir -p $(STATE_DIR)
	umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@
	@echo "created $@: the passphrase for this machine's stack secrets (keep it; not in git)"

up: venv $(STATE_DIR)/passphrase
	$(PY) -m perfstack preflight
	$(PY) -m perfstack validate --stack $(STACK)
	$(PULUMI_ENV) pulumi stack select --create $(STACK)
	$(PULUMI_ENV) pulumi up --stack $(STACK) --yes

preview: venv $(STATE_DIR)/passphrase
	$(PY) -m perfstack preflight
	$(PULUMI_ENV) pulumi stack select --create $(STACK)
	$(PULUMI_ENV) pulumi preview --stack $(STACK) --diff

down: venv
	$(PULUMI_ENV) pulumi destroy --stack $(STACK) --yes

debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: venv
	$(PY) -m ruff check perfstack service alerts tests benchmarks loadtest __main__.py
	$(PY) -m ruff format --check perfstack service alerts tests benchmarks loadtest __main__.py
	$(PY) -m perfstack docs --check
	$(PY) -m perfstack alerts check
	$(PY) -m perfstack dashboards check
	$(PY) -m perfstack loadtest jmeter-plan --check

test: venv debian-packages lint
	$(PY) -m pytest

render: venv
	$(PY) -m perfstack render --stack $(STACK) --out build/$(STACK)

validate: venv
	$(PY) -m perfstack validate --stack $(STACK)

docs: venv
	$(PY) -m perfstack docs --write

# The reference API (DATABASE_URL, REDIS_URL; see service/__main__.py). It listens on every
# interface so the dev stack's Prometheus container reaches it as host.docker.internal:8000.
api: venv
	$(PY) -m service serve --host $${HOST:-0.0.0.0} --port $${PORT:-8000}

seed: venv
	$(PY) -m service seed

bench: venv debian-packages
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && SUDO= || SUDO=sudo; $$SUDO apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m benchmarks.overhead
	$(PY) -m benchmarks.pool

# Locust against a running API: make loadtest PROFILE=stress HOST=http://127.0.0.1:8000 PROMETHEUS=...
PROFILE ?= smoke
HOST ?= http://127.0.0.1:8000
loadtest: venv
	$(PY) -m perfstack loadtest run --profile $(PROFILE) --host $(HOST) $(if $(PROMETHEUS),--prometheus $(PROMETHEUS)) $(LOADTEST_ARGS)

clean:
	rm -rf build .pytest_cache .ruff_cache
