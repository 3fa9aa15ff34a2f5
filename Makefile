# Deep Learning in Practice — the two commands: `make setup`, then `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
NB     ?=
KERNEL := dl-in-practice
PYTEST_NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900
# Smoke notebooks run with one OpenMP/BLAS thread unless OMP_NUM_THREADS says otherwise: on a busy 2-core
# machine PyTorch's spinning worker threads were seen to stall small models 10-30x.
# pytest exit code 5 means "no tests collected": here that is a broken suite, so say so and fail.
define run_pytest
	@set +e; $(1); rc=$$?; set -e; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests ($(2)); the suite is missing or misnamed." >&2; exit 1; fi; \
	exit $$rc
endef

.PHONY: help setup test test-unit test-notebooks execute-all execute data lint results clean-smoke serve

help:
	@echo "make setup           create $(VENV) (Python 3.11), install requirements + dl_utils, register the Jupyter kernel"
	@echo "make test            ruff, unit tests, then every notebook under nbval with DL_PROFILE=smoke"
	@echo "make execute-all     run every notebook in place with DL_PROFILE=full (the only way results/*.json is written)"
	@echo "make execute NB=02   run one notebook in place (full profile)"
	@echo "make data            prefetch every dataset into the cache (DL_DATA_DIR, default data/)"
	@echo "make results         regenerate the README results table from results/*.json"
	@echo "make lint            ruff over the package, tests and notebooks"
	@echo "make serve           serve the exported models (models/, or DL_MODELS_DIR) on 127.0.0.1:8000 (PORT=8001 to change)"

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python 3 ($(KERNEL))" >/dev/null
	@touch $@
	@echo "setup done: activate with 'source $(BIN)/activate', or just use make targets"

test: setup lint test-unit test-notebooks

test-unit: setup
	$(call run_pytest,$(BIN)/python -m pytest -q tests,unit tests)

test-notebooks: setup
	$(call run_pytest,DL_PROFILE=smoke DL_STRICT_BARS=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q $(PYTEST_NBVAL) notebooks/,notebooks)

# The documented runs: the only ones that write the committed results/*.json (DL_RESULTS_OFFICIAL).
# A missed bar does not raise inside the notebook (the notebook states the miss, as a reader should
# see it); the command then fails on the record's `passed: false`. The source state is taken before papermill rewrites
# the notebook in place, so each record says which commit it ran from and whether the notebook
# or dl_utils differed from it.
define execute_one
	nb="$(1)"; commit=$$(git rev-parse --short HEAD 2>/dev/null || true); \
	  if [ -n "$$commit" ] && [ -z "$$(git status --porcelain -- "$$nb" dl_utils)" ]; then clean=1; else clean=0; fi; \
	  [ "$$clean" = 1 ] || echo "      note: $$nb or dl_utils differs from $$commit; the record will say so" >&2; \
	  start=$$(date +%s); \
	  DL_PROFILE=$${DL_PROFILE:-full} DL_RESULTS_OFFICIAL=1 DL_STRICT_BARS=0 DL_SOURCE_COMMIT=$$commit DL_SOURCE_CLEAN=$$clean \
	    $(BIN)/papermill --cwd notebooks -k $(KERNEL) --log-level WARNING "$$nb" "$$nb" || exit 1; \
	  echo "      done in $$(( $$(date +%s) - start )) s"; \
	  if [ "$${DL_PROFILE:-full}" = full ]; then $(BIN)/python -m dl_utils.results passed "$$(basename "$$nb" .ipynb)" || exit 1; fi
endef

# execute-all runs every notebook even when one fails (a missed bar is a result too), refreshes the
# README table, then fails naming the notebooks that missed their bar or broke.
execute-all: setup
	@nbs=(notebooks/[0-9][0-9]_*.ipynb); i=0; failed=(); for nb in "$${nbs[@]}"; do i=$$((i+1)); \
	  echo "[$$i/$${#nbs[@]}] $$nb (DL_PROFILE=$${DL_PROFILE:-full})"; \
	  ( $(call execute_one,$$nb) ) || failed+=("$$nb"); done; \
	  $(BIN)/python -m dl_utils.results update-readme; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "missed a bar or failed: $${failed[*]}" >&2; exit 1; fi

execute: setup
	@test -n "$(NB)" || { echo "usage: make execute NB=02" >&2; exit 2; }
	@nb=$$(ls notebooks/$(NB)*.ipynb 2>/dev/null | head -1); test -n "$$nb" || { echo "no notebook matches notebooks/$(NB)*.ipynb" >&2; exit 2; }; \
	  echo "$$nb (DL_PROFILE=$${DL_PROFILE:-full})"; \
	  ( $(call execute_one,$$nb) ); rc=$$?; \
	  $(BIN)/python -m dl_utils.results update-readme; exit $$rc

data: setup
	$(BIN)/python -m dl_utils.data fetch --all

results: setup
	$(BIN)/python -m dl_utils.results update-readme

lint: setup
	$(BIN)/ruff check dl_utils serving benchmarks tests notebooks

# The REST service (serving/) on the loopback interface only; PORT=8001 make serve, DL_MODELS_DIR=models/local after smoke runs.
serve: setup
	$(BIN)/python -m serving --host 127.0.0.1 --port $(or $(PORT),8000)

clean-smoke:
	rm -rf results/smoke results/local
