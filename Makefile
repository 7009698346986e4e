# orchard — `make demo` and `make test` are the two commands of the README's quick start.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
VENV_PY := $(VENV)/bin/python
# Re-installs when any of these change; otherwise the venv is up to date and `make` goes straight on.
VENV_STAMP := $(VENV)/.installed
VENV_INPUTS := requirements.txt requirements-dev.txt constraints.txt

PYTEST_ARGS ?=
TEST_WORKERS ?= 2
DAGS ?=
DEMO_TIMEOUT ?= 3600
SANDBOX_PORT ?= 4566
PORT ?= 8080
SCHEDULES ?=
FOREGROUND ?=
SANDBOX_ATTACH ?=
EXECUTOR ?= local
WORKERS ?= 2
BENCH ?=
RUNS ?= 1
BUCKET ?=
IMAGE_TAG ?=

.PHONY: help venv .venv prereqs lint test demo up stop logs restart sandbox deploy bench compat clean distclean

help: ## list the targets
	@echo "orchard — make targets:"
	@grep -E '^[a-zA-Z_.-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'
	@echo
	@echo "variables: PYTEST_ARGS='-k x' (test), DAGS='id1 id2' and DEMO_TIMEOUT=s (demo),"
	@echo "           PORT=8080 (up, demo; 0: any free), SCHEDULES=1|0 FOREGROUND=1 (up), SANDBOX_PORT=4566"
	@echo "           (sandbox, up, demo), SANDBOX_ATTACH=1 (up, demo: use the sandbox on SANDBOX_PORT),"
	@echo "           EXECUTOR=celery WORKERS=2 (demo: CeleryExecutor, redis-server), BENCH=name RUNS=n (bench)"
	@echo "           BUCKET=artifacts-bucket IMAGE_TAG=tag (deploy; default: ORCHARD_ARTIFACTS_BUCKET, ORCHARD_IMAGE_TAG)"

.venv: $(VENV_STAMP) ## create .venv (python3.11) with requirements-dev.txt under constraints.txt
venv: .venv

$(VENV_STAMP): $(VENV_INPUTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: orchard needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

prereqs: $(VENV_STAMP) ## check Python 3.11, Java 17, unshare and disk space (run before test, demo, up)
	@$(VENV_PY) -m local_aws prereqs

lint: $(VENV_STAMP) ## the style gate: ruff check (pyflakes, isort, pyupgrade, Airflow 3 rules) and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two parts: every test but the `serial` ones on TEST_WORKERS processes (pytest-xdist, a file per worker:
# module fixtures such as the UI stack stay in one process), then the `serial` ones (timings) alone.
# pytest's exit status 5 means "no test selected" (e.g. a -k that matches no serial test): not a failure.
test: $(VENV_STAMP) prereqs lint ## run every test CI runs, the style gate first (PYTEST_ARGS passes through to pytest)
	$(VENV_PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --skip-serial $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(VENV_PY) -m pytest --only-serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

demo: $(VENV_STAMP) prereqs ## start the sandbox and Airflow, run every DAG (or DAGS="id1 id2") once, report, stop
	$(VENV_PY) -m local_aws demo --timeout $(DEMO_TIMEOUT) --sandbox-port $(SANDBOX_PORT) --port $(PORT) \
	  $(if $(filter celery,$(EXECUTOR)),--executor celery --workers $(WORKERS)) \
	  $(if $(filter 1 true yes,$(SANDBOX_ATTACH)),--attach-sandbox) $(if $(strip $(DAGS)),--dags $(DAGS))

up: $(VENV_STAMP) prereqs ## start the sandbox and Airflow (web UI on http://localhost:8080) in the background
	$(VENV_PY) -m local_aws up --port $(PORT) --sandbox-port $(SANDBOX_PORT) $(if $(filter 1 true yes,$(SANDBOX_ATTACH)),--attach-sandbox) \
	  $(if $(filter 1 true yes,$(SCHEDULES)),--schedules)$(if $(filter 0 false no,$(SCHEDULES)),--no-schedules) \
	  $(if $(filter 1 true yes,$(FOREGROUND)),,--detach)

stop: ## stop the stack `make up` started
	$(VENV_PY) -m local_aws stop

logs: ## follow the logs of the stack `make up` started (Ctrl-C ends)
	$(VENV_PY) -m local_aws logs

restart: ## make stop, then make up (same variables)
	$(MAKE) --no-print-directory stop
	$(MAKE) --no-print-directory up

sandbox: $(VENV_STAMP) ## run the local AWS sandbox alone in the foreground (port SANDBOX_PORT, default 4566)
	$(VENV_PY) -m local_aws serve --port $(SANDBOX_PORT)

deploy: $(VENV_STAMP) ## upload the job code AWS runs from S3 to s3://<BUCKET>/job-code/<IMAGE_TAG>/ (settings' defaults)
	$(VENV_PY) -m deploy job-code $(if $(strip $(BUCKET)),--bucket $(BUCKET)) $(if $(strip $(IMAGE_TAG)),--image-tag $(IMAGE_TAG))

bench: $(VENV_STAMP) ## run the benchmarks/ scripts (or only BENCH=name); make_test_time runs `make test` RUNS times
	@shopt -s nullglob; ran=0; \
	for script in benchmarks/*.py benchmarks/*.sh; do \
	  name=$$(basename "$${script%.*}"); \
	  if [[ "$$name" == _* ]]; then continue; fi; \
	  if [[ -n "$(BENCH)" && "$$name" != "$(BENCH)" ]]; then continue; fi; \
	  echo "== $$script"; ran=1; \
	  case "$$script" in \
	    *make_test_time*) RUNS=$(RUNS) bash "$$script" ;; \
	    *.py) PYTHONPATH=plugins:. $(VENV_PY) "$$script" ;; \
	    *.sh) bash "$$script" ;; \
	  esac; \
	done; \
	if [[ $$ran == 0 ]]; then echo "no benchmark named '$(BENCH)' in benchmarks/"; exit 1; fi

.PHONY: faults
# Fault harness (issue 14; docs/sandbox.md "Fault injection"): tests/faults/ — the sandbox's injection, the
# matrix (each pipeline task failed before / after its AWS calls, leftovers inventoried) and every pipeline's
# e2e under 30 % throttling. `make test` runs only the `faults_ci` sample. PYTEST_ARGS="-k edge" narrows it.
# Cells run on FAULT_WORKERS pytest-xdist workers (worksteal: one file's cells spread; 0 = one process), each
# with its own sandbox and Airflow home; the controller renders one table from every worker's records.
FAULT_WORKERS ?= 3
faults: $(VENV_STAMP) ## run the whole fault harness (FAULT_WORKERS in parallel); prints the matrix (.airflow/faults/matrix.md) and its wall time
	@start=$$SECONDS; status=0; \
	$(VENV_PY) -m pytest tests/faults -m "faults or not faults" -p no:cacheprovider \
	  $(if $(filter-out 0,$(FAULT_WORKERS)),-n $(FAULT_WORKERS) --dist worksteal) $(PYTEST_ARGS) || status=$$?; \
	echo "make faults: $$((SECONDS - start)) s wall time; matrix in .airflow/faults/matrix.md"; exit $$status

# MWAA compatibility (outside CI, not part of `make test`): the newest Airflow 3 Amazon MWAA offers, on its
# Python, under the pins of compat/mwaa-$(MWAA_AIRFLOW).txt (sources cited there). Runs the DAG integrity
# tests, orchard.compat's tests and one pipeline's e2e test (COMPAT_E2E) in .venv-compat. Not the parse
# budget: a timing calibrated on CI's Python 3.11 (this pyenv 3.12.1 parses pose_training ~1.5x slower),
# not a compatibility property (Airflow's dag_file_processor_timeout defaults to 50 s). The venv gets
# orchard's own pins (requirements*.txt) minus its Airflow lines, plus MWAA's Airflow and Amazon provider.
MWAA_AIRFLOW ?= 3.3.1
MWAA_PYTHON_MINOR := 3.12
COMPAT_PINS := compat/mwaa-$(MWAA_AIRFLOW).txt
COMPAT_VENV := .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed-$(MWAA_AIRFLOW)
COMPAT_E2E ?= tests/e2e/test_edge_deployment.py
# pyenv's newest 3.12 (its shim may refuse a version not selected), else python3.12 on PATH
PYENV_COMPAT := $(wildcard $(HOME)/.pyenv/versions/$(MWAA_PYTHON_MINOR).*/bin/python$(MWAA_PYTHON_MINOR))
PATH_COMPAT := $(shell command -v python$(MWAA_PYTHON_MINOR) 2>/dev/null)
PYTHON_COMPAT ?= $(or $(lastword $(sort $(PYENV_COMPAT))),$(PATH_COMPAT))

$(COMPAT_STAMP): $(COMPAT_PINS) requirements.txt requirements-dev.txt
	@test -n "$(PYTHON_COMPAT)" || { echo "python$(MWAA_PYTHON_MINOR) not found: MWAA's Airflow" \
	  "$(MWAA_AIRFLOW) runs Python $(MWAA_PYTHON_MINOR) (set PYTHON_COMPAT=...)"; exit 1; }
	test -x $(COMPAT_PY) || $(PYTHON_COMPAT) -m venv $(COMPAT_VENV)
	rm -f $(COMPAT_VENV)/.installed-*
	$(COMPAT_PY) -m pip install --quiet -c $(COMPAT_PINS) "apache-airflow==$(MWAA_AIRFLOW)" \
	  "apache-airflow-providers-amazon[aiobotocore,common-messaging]" \
	  -r <(grep -hv -e '^-r' -e '^apache-airflow' requirements.txt requirements-dev.txt)
	touch $@

compat: $(COMPAT_STAMP) ## MWAA check (not in CI): DAG integrity + COMPAT_E2E on MWAA's Airflow/provider pins
	@$(COMPAT_PY) -c 'import sys, airflow, airflow.providers.amazon as a; \
	  print(f"make compat: Python {sys.version.split()[0]}, Airflow {airflow.__version__},", \
	        f"Amazon provider {a.__version__}")'
	$(COMPAT_PY) -m pytest -p no:cacheprovider tests/plugins/test_compat.py tests/dags $(COMPAT_E2E) \
	  --deselect "tests/dags/test_dag_integrity.py::test_parse_within_budget" $(PYTEST_ARGS)

clean: ## remove run state (.airflow/: demo and `make up` database, logs) and caches; keeps .venv
	rm -rf .airflow .pytest_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv and .venv-compat
	rm -rf $(VENV) $(COMPAT_VENV)
