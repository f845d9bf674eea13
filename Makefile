# Everything runs from this file: `make demo` and `make test` are the two Quick start commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
MLSERVER_VENV := .venv-mlserver
BIN := $(VENV)/bin

# Local state (SQLite Airflow DB, SQLite MLflow store, data, audit log) lives under .local/ (git-ignored).
export MLOPS_HOME := $(CURDIR)/.local
export AIRFLOW_HOME := $(CURDIR)/.local/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
# The plugin is the installed package mlops_airflow (entry points in pyproject.toml); Airflow's plugins folder
# stays empty, so it never imports the package's files a second time as top-level modules.
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/.local/airflow/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(CURDIR)/.local/airflow/airflow.db
# The machines are offline: telemetry calls would only hang.
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export SCARF_ANALYTICS := false
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false

.PHONY: demo run serve airflow test test-fast install airflow-db ui lint bench-parse bench-many bench-demo bench-drift bench-serving schema docs pools clean

demo: airflow-db  ## sample data -> every model's training DAG for two logical dates -> champions table (VERBOSE=1: task logs on the console)
	$(BIN)/python -m tools.demo $(if $(VERBOSE),--verbose)

run: airflow-db  ## one model's training DAG for one logical date: make run MODEL=churn DATE=2026-01-15
	@test -n "$(MODEL)" -a -n "$(DATE)" || { echo "usage: make run MODEL=<model> DATE=<YYYY-MM-DD> (models: $$(ls include/models | sed -n 's/\.yaml$$//p' | tr '\n' ' '))" >&2; exit 2; }
	$(BIN)/python -m tools.demo --models $(MODEL) --dates $(DATE) --watch '' $(if $(VERBOSE),--verbose)

serve: install  ## serve the deployed model versions on loopback in the foreground until Ctrl-C (after make demo)
	$(BIN)/python -m mlops.serving serve $(MODELS)

airflow: airflow-db  ## any Airflow command on the project's settings: make airflow ARGS="dags test churn__train 2026-01-15"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/airflow $(ARGS)

# Lanes (scripts/test_lanes.sh): services+ui on one shared deployment, beside unit+dags then integration
# under pytest-xdist. PYTEST_ARGS runs one pytest over what it names instead. pytest's "no tests collected"
# (exit 5) fails a lane.
FAST_LANE := tests/unit tests/dags
test: install  ## the test suite (CI runs this); "no tests collected" is a failure, not a pass
	@if [ -n "$(PYTEST_ARGS)" ]; then $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc; fi; \
	PY=$(BIN)/python scripts/test_lanes.sh

test-fast: install  ## the unit and DAG tests only (the inner loop), on two xdist workers
	$(BIN)/python -m pytest $(FAST_LANE) -n 2 --durations=10

install: $(VENV)/.installed $(MLSERVER_VENV)/.installed  ## the runtime, the test and lint tools (.venv), and KServe's MLflow runtime for the emulated cluster (.venv-mlserver)

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" "setuptools>=68" wheel
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# MLServer with its MLflow runtime, apart from .venv (it needs an older FastAPI than Airflow): the emulated
# cluster's stand-in for the KServe runtime image (tests/integration/test_deploy_kserve.py).
$(MLSERVER_VENV)/.installed: include/mlserver-requirements.txt
	test -x $(MLSERVER_VENV)/bin/python || $(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install -q --upgrade "pip>=24"
	$(MLSERVER_VENV)/bin/pip install -q -r include/mlserver-requirements.txt
	touch $@

airflow-db: install
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)

ui: pools  ## the Airflow UI on http://localhost:8080 with the DAGs, the fleet page and the demo's models
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/local_airflow.py

lint: install  ## ruff over the tree, mypy (strict on include/mlops), hadolint, the specs and the platform settings
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m mlops.spec validate include/models/*.yaml
	$(BIN)/python -m mlops.settings check

schema: install  ## JSON Schema of the model spec, for editors
	$(BIN)/python -m mlops.spec schema --output include/models/model-spec.schema.json

docs: install  ## README's variable tables, generated from the platform settings (mlops.settings)
	$(BIN)/python -m mlops.settings docs --write README.md

pools: airflow-db  ## create or update the Airflow pools named in include/compute/pools.yaml
	$(BIN)/python -m mlops_airflow.pools sync

bench-parse: install  ## DagBag over dags/ with 1, 10 and 100 specs, here and on the commit before DAG sharding
	$(BIN)/python bench/dag_parse.py

bench-many: install  ## 1,000 generated specs over the DAG shard files: parse + serialise per file, a task's parse
	$(BIN)/python bench/many_models.py

bench-demo: airflow-db
	$(BIN)/python bench/demo_time.py

bench-serving: install  ## the deployed endpoint vs `mlflow models serve` by hand (rps, p50/p99 at 1/8/32), rollout timeline
	$(BIN)/python bench/serving.py

bench-drift: install  ## drift statistics on 10^6 rows x 12 columns, and 10^5..10^7 rows
	$(BIN)/python bench/drift_speed.py --scaling

clean:
	rm -rf .local
