# medalflow: one command surface. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
.ONESHELL:

UV_VERSION := 0.12.3
VENV := .venv
UV := $(VENV)/uv/bin/uv
AIRFLOW_VENV := $(VENV)/airflow
DBT_VENV := $(VENV)/dbt
PYTHON := $(AIRFLOW_VENV)/bin/python
DBT := $(DBT_VENV)/bin/dbt
# MWAA's constraint URL is unreachable offline: local installs read the copy in requirements/constraints/.
MWAA_CONSTRAINT_URL := https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt
LOCK_PLATFORM := --python-version 3.12 --python-platform x86_64-manylinux_2_28

# The same settings the tests set (tests/conftest.py): Airflow reads the project in place, no telemetry calls out.
export AIRFLOW_HOME ?= $(CURDIR)/.local/airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1
export PYTHONPATH := $(CURDIR)/dags:$(CURDIR)/plugins:$(CURDIR)/tools
export MEDALFLOW_DBT_EXECUTABLE ?= $(CURDIR)/$(DBT)
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

# --- environments ------------------------------------------------------------------------------------------------

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION)"
	python312=$$(scripts/find_python312.sh)
	"$$python312" -m venv $(VENV)/uv
	$(VENV)/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/requirements.local.txt: requirements/requirements.txt
	@mkdir -p $(VENV)
	sed 's#^--constraint .*#--constraint ../requirements/constraints/airflow_constraints.txt#' $< > $@

$(AIRFLOW_VENV)/.synced: requirements/lock/airflow.lock.txt | $(UV)
	@echo "==> Airflow virtualenv ($(AIRFLOW_VENV))"
	$(UV) venv --quiet --allow-existing --python "$$(scripts/find_python312.sh)" $(AIRFLOW_VENV)
	$(UV) pip sync --quiet --python $(PYTHON) $<
	touch $@

$(DBT_VENV)/.synced: requirements/lock/dbt-dev.lock.txt scripts/build_dbt_venv.sh | $(UV)
	@echo "==> dbt virtualenv ($(DBT_VENV))"
	UV=$(UV) PYTHON="$$(scripts/find_python312.sh)" scripts/build_dbt_venv.sh $(DBT_VENV) $<
	touch $@

.PHONY: system-packages
system-packages: ## Debian packages the tests need (Chromium and chromedriver for the UI tests)
	scripts/install_system_packages.sh

.PHONY: install
install: $(AIRFLOW_VENV)/.synced $(DBT_VENV)/.synced ## Build both virtualenvs from the lock files (no-op when current)

.PHONY: lock
lock: $(VENV)/requirements.local.txt | $(UV) ## Re-resolve the lock files from requirements/*.txt
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		$(VENV)/requirements.local.txt requirements/dev.txt -o requirements/lock/airflow.lock.txt
	# dbt's dev lock first, then production's within it: both venvs get the same version of every shared package.
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		requirements/dbt.txt requirements/dbt-dev.txt -o requirements/lock/dbt-dev.lock.txt
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		requirements/dbt.txt -c requirements/lock/dbt-dev.lock.txt -o requirements/lock/dbt.lock.txt

# --- dbt ---------------------------------------------------------------------------------------------------------

DBT_SOURCES := $(shell find dbt_project -type f \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*' 2>/dev/null)

dbt_project/target/manifest.json: $(DBT_SOURCES) profiles/profiles.yml $(DBT_VENV)/.synced
	@echo "==> dbt manifest"
	$(PYTHON) -m medalflow_cli dbt parse

.PHONY: manifest
manifest: install dbt_project/target/manifest.json ## Build dbt's manifest.json, which Cosmos renders the DAG from

# --- the two commands --------------------------------------------------------------------------------------------

.PHONY: demo
demo: manifest ## Run the whole pipeline on the embedded default (DuckDB + local lake) and print what it built
	$(PYTHON) -m medalflow_cli demo $(DEMO_ARGS)

.PHONY: docs-serve
docs-serve: ## Serve the dbt docs built by `make demo` on http://127.0.0.1:8081
	$(PYTHON) -m medalflow_cli dbt docs serve --host 127.0.0.1 --port 8081 --no-browser

.PHONY: lint
lint: install ## ruff (with Airflow's AIR rules) and sqlfluff (dbt templater)
	$(AIRFLOW_VENV)/bin/ruff check .
	$(AIRFLOW_VENV)/bin/ruff format --check .
	$(PYTHON) -m medalflow_cli sqlfluff

.PHONY: test
test: lint manifest system-packages ## Set up and run every test, lint included
	$(PYTHON) -m pytest $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove virtualenvs, local Airflow home, demo data and dbt artifacts
	rm -rf $(VENV) .local dbt_project/target dbt_project/logs
