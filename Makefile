# pnlp-bench. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed on its own first: a CPU machine should get the CPU build, never a multi-GB CUDA one.
# Set TORCH_INDEX to PyTorch's CPU wheel index on machines whose default index serves CUDA builds.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: help install run test test-all clean tables reproduce

help: ## list the targets
	@grep -E '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/bench: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/bench

install: $(BIN)/bench ## create .venv and install the package with its test tools

run: install ## train BASE on the full MTOP English shipped in the package (30 epochs, ~10 min on 2 cores) and print it beside the paper
	$(BIN)/bench run data=mtop_en trainer=plateau quantize.int8=true

test: install ## the test suite CI runs (slow tests excluded)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install ## every test, slow ones included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean: ## remove run outputs and caches of this checkout
	rm -rf outputs multirun .pytest_cache

reproduce-table-%: install ## regenerate results/tableN.md (BUDGET=paper|cpu, default: paper with a GPU, else cpu; LAUNCHER='hydra/launcher=joblib')
	$(BIN)/bench table $* --budget $(or $(BUDGET),auto) $(LAUNCHER)

reproduce: install ## run what the tables miss at the paper's protocol (HOURS=2.5, JOBS: the cores), committing each cell to results/
	$(BIN)/bench reproduce --budget $(or $(BUDGET),paper) --hours $(or $(HOURS),2.5) $(if $(JOBS),--jobs $(JOBS))

tables: install ## list every table with its status
	$(BIN)/bench tables --budget $(or $(BUDGET),paper)
