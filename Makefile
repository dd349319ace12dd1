# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_PIN ?= torch==2.13.0
WORKSPACE ?= demo-workspace
PORT ?= 8501

.PHONY: install run demo lint format test test-fast bench clean

# Idempotent: the stamp file is rebuilt only when pyproject.toml changes.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# A loose torch requirement would pull a multi-GB CUDA build; take the pinned CPU build unless one is importable.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet $(TORCH_PIN)
	$(PIP) install --quiet -e ".[test]"
	touch $@

demo: install
	@test -f $(WORKSPACE)/iea.toml || $(VENV)/bin/iea init $(WORKSPACE)
	@test -f $(WORKSPACE)/.demo-built || { $(VENV)/bin/iea --workspace $(WORKSPACE) demo && touch $(WORKSPACE)/.demo-built; }

# `make run`: the demo workspace with demo accounts and pre-labels, then the annotator app.
IEA := $(VENV)/bin/iea --workspace $(WORKSPACE)
HOST ?= 127.0.0.1
run: demo
	@$(IEA) users demo
	@# pre-labels are resumable (images already labelled are skipped); exit 3 = some images failed, listed above
	@$(IEA) prelabel --method refdiff || [ $$? -eq 3 ]
	@# without the released weights (a clone with no ../shared) the app still starts, on reference differences
	@$(IEA) prelabel --method model || [ $$? -eq 3 ] || echo "model pre-labels skipped (see above); set IEA_PIEANET_WEIGHTS to the released checkpoint and run make run again"
	@echo ""
	@echo "Annotator app: http://$(HOST):$(PORT)   (Ctrl+C stops it)"
	@echo "Demo logins (demo workspaces only): admin / admin-demo, reviewer / reviewer-demo,"
	@echo "                                    annotator1 / annotator1-demo, annotator2 / annotator2-demo"
	@$(IEA) app --port $(PORT) --host $(HOST)

# `make lint`: the house rules as tools (ruff lint + format, the import contracts, mypy on core and store).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The full suite: unit tests, the library's doctests, CLI, browser and (with IEA_TEST_POSTGRES_URL) PostgreSQL tests.
test: install
	$(PY) -m pytest -q --timeout 900 --durations=30

# The fast lane: no browser, no PostgreSQL, nothing marked slow; the doctests are included.
test-fast: install
	$(PY) -m pytest -q --timeout 300 -m "not browser and not postgres and not slow"

bench: install
	$(PY) -m pipelines.bench

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache
