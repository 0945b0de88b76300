# Two commands set everything up: `make run` (the main job) and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export MPLBACKEND ?= Agg

.PHONY: run test bench setup clean

run: $(STAMP)
	$(VENV)/bin/cxsim run scenarios/base.toml --replicates 5 --out out/base

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/cxsim bench --out out/bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@set -e; if [ ! -x $(PY) ]; then \
	    base=$$(PYTHON=$(PYTHON) scripts/find-python); \
	    echo "creating $(VENV) with $$base"; \
	    $$base -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .numba_cache out
