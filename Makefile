# One command each: set up, run, test, lint+typecheck (CI calls these too).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

.PHONY: setup run run-distributed test test-unit lint deploy-check format bench chaos infra-up infra-down schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install -q uv==0.13.8
	$(UV) pip install --python $(BIN)/python -q -r requirements.lock
	$(UV) pip install --python $(BIN)/python -q --no-deps -e .
	touch $@

## setup: create .venv with everything (idempotent); afterwards .venv/bin/tocsin works
setup: $(VENV)/.installed

## infra-up / infra-down: real Kafka (KRaft) and FerretDB on loopback, cached under .cache/
infra-up:
	scripts/infra.sh up

infra-down:
	scripts/infra.sh down

## run: the main job: Tocsin in one process (`tocsin up`) with examples/tocsin.yaml
run: setup
	scripts/run-embedded.sh

## run-distributed: the four services on a local Kafka + FerretDB with examples/tocsin.yaml
run-distributed: setup infra-up
	source .cache/infra.env && TOCSIN_ADMIN_TOKEN=$${TOCSIN_ADMIN_TOKEN:-dev-admin-token} \
		scripts/run-distributed.sh examples/tocsin.yaml

## test: setup, infra-up, every test (unit, integration, end-to-end), infra-down
## (scripts/alertmanager.sh builds the real Alertmanager of the e2e tests once into .cache/bin,
## scripts/prometheus.sh the real Prometheus of the dashboard test)
## (fresh Kafka and FerretDB data each run: tests need no old topics, and a broker with
## gigabytes of old benchmark logs takes 20 s to start instead of 3)
test: setup
	scripts/alertmanager.sh
	scripts/prometheus.sh
	scripts/image-tools.sh
	scripts/browser.sh
	TOCSIN_INFRA_FRESH=1 scripts/infra.sh up
	source .cache/infra.env && $(BIN)/pytest; status=$$?; scripts/infra.sh down; exit $$status

test-unit: setup
	$(BIN)/pytest tests/unit

## bench: ingest throughput and latency on real Kafka (a measurement, not a test; infra stays up)
bench: setup infra-up
	source .cache/infra.env && $(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/embedded_bench.py
	source .cache/infra.env && $(BIN)/python bench/pipeline_bench.py
	source .cache/infra.env && $(BIN)/python bench/triage_bench.py
	source .cache/infra.env && $(BIN)/python bench/memory_bench.py $(MEMORY_BENCH_ARGS)

## chaos: the long fault tests (two replicas of every service, 20 kill -9s one every 2 s, a
## webhook down for 60 s; Kafka, FerretDB and PostgreSQL restarted under load, 20 s each on a
## private set of servers); CI runs the short version of the same tests
chaos: setup infra-up
	source .cache/infra.env && TOCSIN_CHAOS_LONG=1 $(BIN)/pytest -s tests/e2e/test_replicas_and_faults.py tests/e2e/test_infra_restarts.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	scripts/deploy-check.sh

## deploy-check: hadolint, the Compose schema, helm lint/template and kubernetes-validate
## (Helm is built once from the Go module proxy into .cache/bin by scripts/helm.sh)
deploy-check: setup
	scripts/deploy-check.sh

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## schemas: regenerate schemas/json from the pydantic models
schemas: setup
	$(BIN)/python -m schemas.export

clean:
	scripts/infra.sh down --wipe || true
	rm -rf $(VENV) .cache
