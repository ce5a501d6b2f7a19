# x0tta6bl4: the two commands that matter are `make up` (run the system) and
# `make test` (run every test). Both set up what they need on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv runs as a module of the machine's Python, so no PATH change is needed.
PYTHON ?= python3
UV := $(PYTHON) -m uv
STACK := deploy/local-stack/stack.sh
SERVICES := deploy/local-stack/services.sh
# Tests and benchmarks run on a stack instance of their own (.stack/test, ports
# 19092/19093/15432/16379), empty at each start: see docs/architecture.md.
TEST_STACK := deploy/local-stack/test-stack.sh
PYTEST_ARGS ?=
# Where `make up` keeps the development admin API key (mode 0600).
DEV_KEY_FILE := .stack/dev-admin-key
ONLY ?=

.PHONY: help setup up down status test test-unit lint bench eval

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup:  ## Install uv and the locked Python workspace.
	$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet 'uv>=0.5'
	$(UV) sync --frozen --all-packages

up: setup  ## Run the system: Kafka, PostgreSQL, Redis, then Jaeger, the services and their monitoring in the background.
	$(STACK) up
	$(SERVICES) up
	@# A development admin key (every scope, tenant default), made once and kept in a
	@# file only its owner reads; a production gateway refuses it (docs/security.md).
	@# As the gateway's own PostgreSQL role (stack.sh env gateway), like the gateway.
	@eval "$$($(STACK) env gateway)" && $(UV) run --frozen x0-gateway-admin dev-key --file $(DEV_KEY_FILE) >/dev/null
	@echo "API key (development admin, every scope): $(DEV_KEY_FILE)"
	@echo '  export X0_API_KEY=$$(cat $(DEV_KEY_FILE))'

down:  ## Stop the services and the stack (data stays in .stack/).
	$(SERVICES) down
	$(STACK) down

status:  ## One line per stack service and x0 service.
	$(STACK) status; $(SERVICES) status

test: setup  ## Run every test (unit, integration, e2e) on a fresh stack of their own.
	@# tests/jaeger runs Jaeger v2: built once into ~/.cache/x0-stack (about 11 CPU
	@# minutes on a fresh machine), here rather than inside a test's time limit.
	deploy/local-stack/jaeger.sh >/dev/null
	$(TEST_STACK) run $(UV) run --frozen pytest $(PYTEST_ARGS)

test-unit: setup  ## Only the tests that need no running services.
	$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

lint: setup  ## ruff (lint + format check), mypy (strict on libs/common and libs/client), pip-audit of uv.lock.
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy libs/common/src libs/client/src services/gateway/src services/crypto/src services/rag/src services/telemetry/src scripts
	@# Says "NOT checked" when no advisory source answers, rather than "no vulnerabilities".
	@locked=$$(mktemp); trap 'rm -f "$$locked"' EXIT; \
	  $(UV) export --frozen --all-packages --all-groups --no-hashes --no-emit-workspace \
	    --format requirements-txt --quiet --output-file "$$locked" && \
	  $(UV) run --frozen python scripts/audit_deps.py "$$locked"

bench: setup  ## Benchmarks against same-run baselines, on a fresh stack of their own (ONLY=<section>).
	@# A development PLAINTEXT listener beside the mTLS one, for kafka_tls's baseline only.
	X0_TEST_STACK_KAFKA_PLAINTEXT_PORT=$${X0_TEST_STACK_KAFKA_PLAINTEXT_PORT:-19094} \
	  $(TEST_STACK) run $(UV) run --frozen python -m bench $(if $(ONLY),--only $(ONLY),)

eval: setup  ## Retrieval quality and p50 per search mode on the man-page set (eval/README.md).
	$(UV) run --frozen python -m eval

# Container images without a Docker engine (README "Images", deploy/images): buildah
# builds them from local Debian bases, as root. Not in CI, for time (the rag image
# carries torch): make test-all runs both.
.PHONY: images test-images

images:  ## Build the four service images with buildah (local bases made once; root).
	deploy/images/build.sh

test-images: setup  ## Each image's service (buildah run) on a fresh stack, end-to-end smoke tests.
	$(TEST_STACK) run $(UV) run --frozen pytest deploy/images/tests $(PYTEST_ARGS)

# Load tests with SLOs (load/, docs/load.md). Results go to load/results/<time>-<profile>/.
.PHONY: load load-ci

load: setup  ## Load the running system (make up) and check its SLOs (DURATION=60 USERS=20 MIX= RATE= PROFILE=).
	$(UV) run --frozen python -m load.run $(if $(PROFILE),--profile $(PROFILE),) $(if $(DURATION),--duration $(DURATION),) $(if $(USERS),--users $(USERS),) $(if $(MIX),--mix $(MIX),) $(if $(RATE),--rate $(RATE),)

load-ci: setup  ## The short load run (~60 s) with CI SLOs, on a fresh stack and services of its own.
	$(TEST_STACK) run $(UV) run --frozen python -m load.ci $(if $(DURATION),--duration $(DURATION),) $(if $(USERS),--users $(USERS),)

# Chaos under load (load/chaos.py, docs/reliability.md): faults one at a time while the
# Locust mix runs, then every acknowledged write checked. Not in CI (make test-all).
.PHONY: chaos chaos-ci test-all

chaos: setup  ## Every fault under load, then zero acknowledged loss checked, on a fresh stack (FAULTS=a,b USERS=).
	$(TEST_STACK) run $(UV) run --frozen python -m load.chaos $(if $(FAULTS),--faults $(FAULTS),) $(if $(USERS),--users $(USERS),)

chaos-ci: setup  ## The reduced chaos set (one worker kill: kill-crypto), ~7 min on this machine.
	$(TEST_STACK) run $(UV) run --frozen python -m load.chaos --faults ci

test-all: test chaos-ci images test-images  ## make test, then what CI leaves out for time (chaos-ci, the images).

SOAK_MINUTES ?= 30
.PHONY: soak

soak: setup  ## Moderate load for SOAK_MINUTES (30); RSS and open fds per process as PNG; fails on >10% growth.
	$(TEST_STACK) run $(UV) run --frozen python -m load.soak --minutes $(SOAK_MINUTES)
