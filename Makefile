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
INFRA_VENV := $(VENV)/infra
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

# cfn-lint and checkov: their own virtualenv, since checkov's pins conflict with MWAA's constraints.
$(INFRA_VENV)/.synced: requirements/lock/infra.lock.txt | $(UV)
	@echo "==> infra lint virtualenv ($(INFRA_VENV))"
	$(UV) venv --quiet --allow-existing --python "$$(scripts/find_python312.sh)" $(INFRA_VENV)
	$(UV) pip sync --quiet --python $(INFRA_VENV)/bin/python $<
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
	# The compose image's: what MWAA installs (plus the Celery executor its image has), no dev tools, within the above.
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		$(VENV)/requirements.local.txt requirements/mwaa-image.txt -c requirements/lock/airflow.lock.txt \
		-o requirements/lock/airflow-runtime.lock.txt
	# dbt's dev lock first, then production's within it: both venvs get the same version of every shared package.
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		requirements/dbt.txt requirements/dbt-dev.txt -o requirements/lock/dbt-dev.lock.txt
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		requirements/dbt.txt -c requirements/lock/dbt-dev.lock.txt -o requirements/lock/dbt.lock.txt
	$(UV) pip compile --quiet $(LOCK_PLATFORM) --custom-compile-command "make lock" \
		requirements/infra.txt -o requirements/lock/infra.lock.txt

# --- dbt ---------------------------------------------------------------------------------------------------------

DBT_SOURCES := $(shell find dbt_project -type f \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*' 2>/dev/null)

dbt_project/target/manifest.json: $(DBT_SOURCES) profiles/profiles.yml $(DBT_VENV)/.synced
	@echo "==> dbt manifest"
	$(PYTHON) -m medalflow_cli dbt parse

.PHONY: manifest
manifest: install dbt_project/target/manifest.json ## Build dbt's manifest.json, which Cosmos renders the DAG from

# --- the two commands --------------------------------------------------------------------------------------------

# OpenLineage events of the runs started here go to a local file (docs/operations.md, "Lineage"); set
# AIRFLOW__OPENLINEAGE__TRANSPORT= (empty) to turn them off, or to an http/amazon_datazone_api transport to send them.
LINEAGE_EVENTS := $(CURDIR)/.local/lineage/events.jsonl
demo extract: export AIRFLOW__OPENLINEAGE__TRANSPORT ?= {"type": "file", "log_file_path": "$(LINEAGE_EVENTS)", "append": true}
demo extract: export AIRFLOW__OPENLINEAGE__NAMESPACE ?= medalflow-local
demo extract: export AIRFLOW__OPENLINEAGE__EXTRACTORS ?= medalflow.governance.openlineage.ExtractionTaskExtractor

.PHONY: demo
demo: manifest ## Run the whole pipeline on the embedded default (DuckDB + local lake) and print what it built
	@mkdir -p $(dir $(LINEAGE_EVENTS))
	$(PYTHON) -m medalflow_cli demo $(DEMO_ARGS)

.PHONY: ui
ui: install ## After `make demo`: Airflow's UI over the demo's runs and its Pipeline health page, http://127.0.0.1:8080
	$(PYTHON) -m medalflow_cli ui $(UI_ARGS)

.PHONY: docs-serve
docs-serve: ## Serve the dbt docs built by `make demo` on http://127.0.0.1:8081
	$(PYTHON) -m medalflow_cli dbt docs serve --host 127.0.0.1 --port 8081 --no-browser

# One run of the source's generated DAG per interval of its schedule that starts from START to END (docs/sources.md).
.PHONY: extract
extract: install ## Extract a source by hand: SOURCE=<name or dag id> START=YYYY-MM-DD [END=YYYY-MM-DD, inclusive]
	@[ -n "$(SOURCE)" ] && [ -n "$(START)" ] || { echo "usage: make extract SOURCE=erp START=2026-01-05 [END=2026-01-07]" >&2; exit 2; }
	@mkdir -p $(dir $(LINEAGE_EVENTS))
	$(PYTHON) -m medalflow_cli extract $(SOURCE) $(START) $(END)

# Samples the lake's raw zone (MEDALFLOW_LAKE_URI; the demo's by default): fails on a personal-looking column that the
# dbt sources do not classify. `make test` runs the same check over a lake landed from the demo world.
.PHONY: pii-scan
pii-scan: install ## Scan the raw zone for personal data not classified in the dbt sources (PII_SCAN_ARGS=--threshold 0.3)
	$(PYTHON) -m medalflow_cli pii-scan $(PII_SCAN_ARGS)

# From the dbt manifest and the source configs; the pictures go to .local/lineage/<asset>.{mmd,svg}.
.PHONY: lineage
lineage: manifest ## Print a dataset's upstream chain to raw and the extraction tasks, and draw it (ASSET=agg_monthly_cash_flow)
	@[ -n "$(ASSET)" ] || { echo "usage: make lineage ASSET=agg_monthly_cash_flow" >&2; exit 2; }
	$(PYTHON) -m medalflow_cli lineage $(ASSET)

# From the dbt manifest, the source configs and the DAG files; English or Portuguese (dbt_project/glossary.yml).
.PHONY: catalog
catalog: manifest ## Search the data catalog, accents and case ignored (q="risco cambial"); without q, list every asset
	$(PYTHON) -m medalflow_cli catalog "$(q)"

# --- deploying (docs/deploy.md) -----------------------------------------------------------------------------------

.PHONY: secrets
secrets: install ## Push deploy/connections.<env>.yml to AWS Secrets Manager (make secrets ENV=dev)
	@[ -n "$(ENV)" ] || { echo "usage: make secrets ENV=dev|hom|prod" >&2; exit 2; }
	./deploy.sh secrets $(ENV)

# Grafana dashboards as code (docs/operations.md, "Is my pipeline healthy?"); the token from GRAFANA_TOKEN, never echoed.
.PHONY: dashboards
dashboards: install ## Publish the Grafana dashboards (GRAFANA_URL=https://<workspace>, token in GRAFANA_TOKEN)
	@[ -n "$(GRAFANA_URL)" ] || { echo "usage: GRAFANA_TOKEN=... make dashboards GRAFANA_URL=https://<grafana workspace>" >&2; exit 2; }
	$(PYTHON) -m medalflow_dashboards publish --url "$(GRAFANA_URL)"

.PHONY: dashboards-json
dashboards-json: install ## Write the Grafana dashboards' JSON to .local/dashboards/ (to review or import by hand)
	$(PYTHON) -m medalflow_dashboards build --out .local/dashboards

.PHONY: lint
lint: install ## ruff (with Airflow's AIR rules) and sqlfluff (dbt templater)
	$(AIRFLOW_VENV)/bin/ruff check .
	$(AIRFLOW_VENV)/bin/ruff format --check .
	$(PYTHON) -m medalflow_cli sqlfluff

# Offline: no API key, no platform download (mappings, guidelines), no package scan, no PyPI version check.
.PHONY: infra-lint
infra-lint: $(INFRA_VENV)/.synced ## cfn-lint and checkov on the CloudFormation templates in infra/
	$(INFRA_VENV)/bin/cfn-lint infra/*.yaml
	env -u BC_API_KEY BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
		$(INFRA_VENV)/bin/checkov --config-file infra/.checkov.yaml -d infra --framework cloudformation --quiet --compact

.PHONY: test
test: lint manifest system-packages infra-lint ## Set up and run every test, lint included
	$(PYTHON) -m pytest $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove virtualenvs, local Airflow home, demo data and dbt artifacts
	rm -rf $(VENV) .local dbt_project/target dbt_project/logs
