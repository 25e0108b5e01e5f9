# One entry point for the no-Docker path. Every target builds what it needs first.
#   make demo   run the eltml pipeline end to end on the embedded local dbt Cloud
#   make test   run the test suite (the same one CI runs); make test-fast: the everyday lane
#   make break-model [MODEL=stg_orders] / make fix-model   the demo failure switch (see README)
#   make dbt-manifest   refresh the stored manifest of the models-as-tasks DAG (docs/models-as-tasks.md)
# The Astro path needs none of this: `astro dev start` builds the image from Dockerfile.

SHELL := /bin/bash
PYTHON ?= python3
# The virtualenvs, all named .venv*, which .gitignore, .dockerignore and ruff's exclude match as a family:
# Airflow and the tools, dbt Core, dbt-jobs-as-code, and the image's packages only (make test-image).
VENV := .venv
DBT_VENV := .venv-dbt
JOBS_VENV := .venv-jobs-as-code
IMAGE_VENV := .venv-image
VENVS := $(VENV) $(DBT_VENV) $(JOBS_VENV) $(IMAGE_VENV)
UV_VERSION := 0.13.9
# The oldest Python the code and the locks support (datetime.UTC, tomllib...); the locks are resolved for
# every Python from it on, the Astro Runtime image's included. local/tests/test_python_support.py checks it.
PYTHON_MIN := 3.11
UV := $(VENV)/bin/uv

# All local state lives in .state/ (git-ignored): the Airflow home, the local dbt Cloud's data
# (dbt-cloud-local/), the task data (data/), the container rehearsal's files. `make clean` removes it.
export LOCALDEV_STATE_DIR ?= $(CURDIR)/.state
export AIRFLOW_HOME ?= $(LOCALDEV_STATE_DIR)
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# Import roots: the project, as on the Astro image's PYTHONPATH (`import include.…`), and local/, the code
# that only runs on your machine (`import dbt_cloud_local`, `import localdev`).
export PYTHONPATH := $(CURDIR):$(CURDIR)/local$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help venv demo break-model fix-model test test-fast test-image astro-rehearsal lint lock specs clean distclean

help:
	@grep -E '^#   make' $(MAKEFILE_LIST) | sed 's/^#   //'

venv: $(VENV)/.synced $(DBT_VENV)/.synced $(JOBS_VENV)/.synced

# The Airflow venv: Airflow 3.3.2 + the image's requirements.txt + test tools, from the lock.
$(VENV)/.synced: constraints/local.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < tuple(map(int, "$(PYTHON_MIN)".split("."))) and "Python >= $(PYTHON_MIN) is required, found " + sys.version.split()[0] + "; pass another: make PYTHON=python3.12 ...")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(VENV)/bin/python constraints/local.lock
	@# The import roots (PYTHONPATH above) in the venv itself, so `.venv/bin/python -m localdev.stack ...`
	@# works from any shell, as the README shows.
	$(VENV)/bin/python -c 'import site; open(site.getsitepackages()[0] + "/airflow-dbt-cloud.pth", "w").write("$(CURDIR)\n$(CURDIR)/local\n")'
	touch $@

# dbt Core in its own venv, as the guide recommends ("avoid dependency hell").
$(DBT_VENV)/.synced: constraints/dbt.lock $(VENV)/.synced
	test -x $(DBT_VENV)/bin/python || $(UV) venv --quiet --python $(VENV)/bin/python $(DBT_VENV)
	$(UV) pip sync --quiet --python $(DBT_VENV)/bin/python constraints/dbt.lock
	touch $@

# dbt Labs' dbt-jobs-as-code CLI (jobs.yml plan/sync), in its own venv: it pins croniter and
# importlib-metadata far below Airflow's. `make jobs-plan` / `make jobs-sync` run it.
$(JOBS_VENV)/.synced: constraints/jobs-as-code.lock $(VENV)/.synced
	test -x $(JOBS_VENV)/bin/python || $(UV) venv --quiet --python $(VENV)/bin/python $(JOBS_VENV)
	$(UV) pip sync --quiet --python $(JOBS_VENV)/bin/python constraints/jobs-as-code.lock
	touch $@

# Re-resolve the locks after editing requirements*.txt.
lock: $(VENV)/.synced
	$(UV) pip compile --quiet --universal --python-version $(PYTHON_MIN) requirements-dev.txt -o constraints/local.lock
	$(UV) pip compile --quiet --universal --python-version $(PYTHON_MIN) requirements-dbt.txt -o constraints/dbt.lock
	$(UV) pip compile --quiet --universal --python-version $(PYTHON_MIN) requirements-jobs-as-code.txt -o constraints/jobs-as-code.lock

demo: venv
	$(VENV)/bin/python -m localdev.demo

# The demo failure switch: a Production environment variable of the local dbt Cloud that `make up`
# runs (state in $(LOCALDEV_STATE_DIR)), set the way you would set one in dbt Cloud. Takes effect at
# the next dbt Cloud run; no restart needed.
break-model: venv
	$(VENV)/bin/python -m dbt_cloud_local env-var set DBT_FAIL_MODEL $(or $(MODEL),stg_orders) \
		--environment Production --data-dir $(LOCALDEV_STATE_DIR)/dbt-cloud-local

fix-model: venv
	$(VENV)/bin/python -m dbt_cloud_local env-var unset DBT_FAIL_MODEL --data-dir $(LOCALDEV_STATE_DIR)/dbt-cloud-local

# Both trees (pyproject's testpaths): tests/ (the image's suite) and local/tests/ (what needs local tools), on
# TEST_WORKERS pytest-xdist workers, a test file at a time per worker (its servers and dbt runs are shared by
# its tests), longest files first (local/tests/conftest.py). Most of a test's time is spent waiting on dbt,
# servers and Airflow, so two workers fit 2 cores.
# `browser` (defined below) makes sure the UI test has a Chromium.
TEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: venv browser
	$(VENV)/bin/pytest --timeout=900 $(PYTEST_PARALLEL)

# The everyday lane: everything but the slow suites (e2e, browser, stack, parity; see local/tests/conftest.py).
test-fast: venv
	$(VENV)/bin/pytest --timeout=300 $(PYTEST_PARALLEL) -m "not (e2e or browser or stack or parity)"

# What bare `astro dev pytest` and `astro dev parse` run, without Docker: `pytest tests/` in a copy of what the image
# holds at /usr/local/airflow (the folders the CLI copies in, the image's top-level files; never local/), with only
# the image's packages (Airflow 3.3.2 + requirements.txt + pytest), an empty AIRFLOW_HOME, no services and (where
# `unshare -n` is allowed, as root in CI) no network at all.
IMAGE_FILES := dags tests plugins include .astro pyproject.toml requirements.txt packages.txt Dockerfile
$(IMAGE_VENV)/.synced: requirements.txt constraints/local.lock $(VENV)/.synced
	test -x $(IMAGE_VENV)/bin/python || $(UV) venv --quiet --python $(VENV)/bin/python $(IMAGE_VENV)
	$(UV) pip install --quiet --python $(IMAGE_VENV)/bin/python -c constraints/local.lock \
		apache-airflow==3.3.2 -r requirements.txt pytest
	touch $@

test-image: $(IMAGE_VENV)/.synced
	@image=$$(mktemp -d) && home=$$(mktemp -d) && isolate=$$(unshare -n true 2>/dev/null && echo "unshare -n") ; \
	cp -r $(IMAGE_FILES) $$image/ && find $$image -name __pycache__ -prune -exec rm -rf {} + ; \
	echo "Image copy: $$image, AIRFLOW_HOME=$$home, network isolation: $${isolate:-not available}" ; \
	cd $$image && for target in tests/ .astro/test_dag_integrity_default.py; do \
		echo "pytest $$target" ; \
		$$isolate env -i PATH=/usr/bin:/bin HOME=$$home AIRFLOW_HOME=$$home PYTHONPATH=$$image \
			AIRFLOW__CORE__DAGS_FOLDER=$$image/dags \
			$(CURDIR)/$(IMAGE_VENV)/bin/python -m pytest $$target -p no:cacheprovider || exit 1 ; \
	done ; rm -rf $$image $$home

# The Astro path rehearsed in containers (local/astro_rehearsal): the project image from the unchanged
# Dockerfile on a stand-in of the Runtime image, `astro dev pytest tests/dags` and `astro dev parse` in
# it, then the stack `astro dev start` runs (with docker-compose.override.yml), the eltml DAG triggered
# and awaited. Podman, no Docker engine; setup-podman.sh installs it (as root, Debian/Ubuntu).
astro-rehearsal: venv
	@if [ "$$(id -u)" = 0 ]; then local/astro_rehearsal/setup-podman.sh; \
	elif ! command -v podman >/dev/null; then \
		echo "astro-rehearsal needs podman: run 'sudo local/astro_rehearsal/setup-podman.sh' once" >&2; exit 2; fi
	$(VENV)/bin/python -m astro_rehearsal

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check --preview --select AIR .
	$(VENV)/bin/ruff format --check .
	@# The import contracts of pyproject.toml ([tool.importlinter]): layers, include apart, no cycles.
	$(VENV)/bin/lint-imports --no-cache --no-logo

# The prose-free copy of dbt Cloud's official OpenAPI specs the contract tests walk
# (local/tests/dbt_cloud_local/specs/SOURCE.md), regenerated from a folder holding openapi-v2.yaml and
# openapi-v3.yaml (e.g. a checkout of dbt-labs/dbt-cloud-openapi-spec): make specs SPECS_FROM=<folder>
specs: venv
	@test -n "$(SPECS_FROM)" || { echo "usage: make specs SPECS_FROM=<folder with openapi-v2.yaml and openapi-v3.yaml>" >&2; exit 2; }
	$(VENV)/bin/python local/tests/dbt_cloud_local/specs/vendor.py "$(SPECS_FROM)"

# Removes every piece of local state and the tools' caches, keeping the virtualenvs: .state/ (the
# Airflow home and logs, the stack's PostgreSQL database, the local dbt Cloud's runs, the task data,
# the rehearsal's files; its cached images stay in Podman). `make distclean` removes the venvs too.
clean:
	@if [ -x $(VENV)/bin/python ] && [ -d "$(LOCALDEV_STATE_DIR)" ]; then $(VENV)/bin/python -m localdev.stack clean; fi
	rm -rf "$(LOCALDEV_STATE_DIR)" .pytest_cache .ruff_cache docs/screenshots/.tmp local/demo_dbt_project/target \
		local/demo_dbt_project/dbt_packages local/demo_dbt_project/logs
	find . -path './.venv*' -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENVS)

# --- The full local Airflow stack without Docker (localdev/stack.py) ------------------------------
# What `astro dev start` runs, natively from .venv: api-server, scheduler, dag-processor, triggerer on
# PostgreSQL (127.0.0.1:5432, database airflow_local; SQLite when none answers), airflow_settings.yaml
# seeded, plus the local dbt Cloud. State and logs in .state/ (logs/stack/<component>.log).
#   make up         start it in the background: UI http://localhost:8080 (no login), dbt Cloud :8443
#                   (DBT_CLOUD_LOCAL_PORT moves the latter, as under astro dev start)
#   make up-celery  the same on CeleryExecutor with two workers on the local Redis (= make up EXECUTOR=celery)
#   make status     components and health
#   make down       stop everything it started and free the ports
# Ports, state folder, database and Redis move with LOCALDEV_* variables: python -m localdev.stack up -h
.PHONY: up up-celery down status

up: venv
	$(VENV)/bin/python -m localdev.stack up $(if $(EXECUTOR),--executor $(EXECUTOR))

up-celery: venv
	$(VENV)/bin/python -m localdev.stack up --executor celery

down: venv
	$(VENV)/bin/python -m localdev.stack down

status: venv
	$(VENV)/bin/python -m localdev.stack status
# --- end of the local Airflow stack section ---------------------------------------------------------

# --- Browser tests: the Airflow UI in a real headless Chromium (local/tests/browser) ---------------
#   make browser      make a Chromium available to Playwright (nothing to do when one is installed)
#   make screenshots  regenerate the README screenshots (docs/screenshots/*.png) with the browser test
# A system Chromium is used when there is one ($CHROMIUM, default /usr/bin/chromium); as root with
# apt-get (CI) Debian's package is installed; elsewhere Playwright downloads its own.
CHROMIUM ?= /usr/bin/chromium
.PHONY: browser screenshots

browser: venv
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "browser: using $(CHROMIUM) ($$("$(CHROMIUM)" --version 2>/dev/null)), nothing to install"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "browser: no $(CHROMIUM); installing Debian's chromium with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
			&& echo "browser: installed $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else \
		echo "browser: no $(CHROMIUM) and no root apt-get; installing Playwright's Chromium"; \
		$(VENV)/bin/playwright install chromium && echo "browser: Playwright's Chromium is installed"; \
	fi

screenshots: venv browser
	BROWSER_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest local/tests/browser -p no:cacheprovider \
		--timeout=900
	@ls -l docs/screenshots/*.png
# --- end of the browser tests section ---------------------------------------------------------------

# --- Jobs as code: dbt-jobs-as-code (.venv-jobs-as-code) on dbt_cloud_jobs/jobs.yml ------------
#   make jobs-plan   what `dbt-jobs-as-code sync` would change (default: the local dbt Cloud of make up)
#   make jobs-sync   apply the jobs file
# Another host, the same file (README "Jobs as code"): the host, a token and your account's ids, e.g.
#   DBT_BASE_URL=https://cloud.getdbt.com DBT_API_KEY=<service token> make jobs-plan JOBS_VARS=<vars file>
JOBS_FILE ?= dbt_cloud_jobs/jobs.yml
JOBS_VARS ?= dbt_cloud_jobs/local.vars.yml
DBT_BASE_URL ?= $(LOCAL_DBT_CLOUD_URL)
.PHONY: jobs-plan jobs-sync

# Against the local dbt Cloud, its CA bundle (public CAs + the local CA) is trusted, whatever bundle
# the shell sets; another host keeps the shell's trust settings.
# DBT_CLOUD_LOCAL_PORT moves the local dbt Cloud's port on every path (dbt_cloud_local/client.py).
LOCAL_DBT_CLOUD_URL := https://localhost:$(or $(DBT_CLOUD_LOCAL_PORT),8443)
jobs-plan jobs-sync: $(JOBS_VENV)/.synced
	@bundle="$(LOCALDEV_STATE_DIR)/dbt-cloud-local/tls/ca-bundle.pem"; \
	if [ "$(DBT_BASE_URL)" = "$(LOCAL_DBT_CLOUD_URL)" ] && [ -f "$$bundle" ]; then export REQUESTS_CA_BUNDLE="$$bundle"; fi; \
	DBT_API_KEY="$${DBT_API_KEY:-dbtc_local_dev_token}" DBT_BASE_URL="$(DBT_BASE_URL)" \
		$(JOBS_VENV)/bin/dbt-jobs-as-code $(patsubst jobs-%,%,$@) $(JOBS_FILE) --vars-yml $(JOBS_VARS)
# --- end of the jobs-as-code section ----------------------------------------------------------------

# --- Models as tasks: the stored manifest the dbt_cloud_models_as_tasks DAG renders its tasks from ----
#   make dbt-manifest   refresh include/dbt_manifests/eltml_build.json from the job's latest successful run
#   make dbt-manifest-check   fail (writing nothing) when that file no longer matches the job, for CI
# Default: the local dbt Cloud of `make up` (started from .state for the refresh when nothing answers; a
# successful run must exist, e.g. after `make demo`). Your account: the same variables as jobs-plan,
#   DBT_BASE_URL=https://cloud.getdbt.com DBT_API_KEY=<service token> make dbt-manifest \
#       DBT_MANIFEST_ACCOUNT=<account id> DBT_MANIFEST_JOB=<job id> [DBT_MANIFEST=include/dbt_manifests/<name>.json]
DBT_MANIFEST ?= include/dbt_manifests/eltml_build.json
DBT_MANIFEST_ACCOUNT ?= 1
DBT_MANIFEST_JOB ?= 1
.PHONY: dbt-manifest dbt-manifest-check

# dbt-manifest-check writes nothing and fails when the stored file no longer matches the job (CI).
dbt-manifest dbt-manifest-check: venv
	DBT_BASE_URL="$(DBT_BASE_URL)" $(VENV)/bin/python -m localdev.dbt_manifest \
		--account-id $(DBT_MANIFEST_ACCOUNT) --job-id $(DBT_MANIFEST_JOB) --out $(DBT_MANIFEST) \
		$(if $(filter dbt-manifest-check,$@),--check)
# --- end of the models-as-tasks section -----------------------------------------------------------
