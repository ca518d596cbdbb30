# Pacer: `make up` runs it, `make test` tests it. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up test test-fast browser bench bench-quick clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## up: emulator + tables/queues + API on :8000 + runtime (2 workers) + page on :8080. Ctrl-C stops all.
up: $(STAMP)
	$(PY) -m infra.stack --workers $(or $(WORKERS),2)

## test: everything CI runs: unit, contract, runtime conformance, integration, browser.
test: $(STAMP) browser
	$(PY) -m pytest

## test-fast: unit and contract tests only (no processes, no browser).
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit tests/contract

browser:
	bash infra/install-browser.sh

## bench: the figures issue #3 asks for (several minutes).
bench: $(STAMP)
	$(PY) -m bench.run_all

## bench-quick: the same benchmarks, shortened, as CI runs them.
bench-quick: $(STAMP)
	$(PY) -m bench.run_all --quick

clean:
	rm -rf $(VENV) .pytest_cache .run
