# Pacer: `make up` runs it, `make test` tests it. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up seed test test-fast typecheck fuzz browser bench bench-quick drills drills-quick clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## up: emulator + tables/queues + API on :8000 + runtime (2 workers) + page on :8080. Ctrl-C stops all.
## BOTS=3 also starts three reference bots (infra/bot.py; PROCESSING_DURATION and FAILURE_RATE set their work);
## the page's Add bot and PUT /api/bots/count change how many while it runs.
up: $(STAMP)
	$(PY) -m infra.stack --workers $(or $(WORKERS),2) --bots $(or $(BOTS),0)

## seed: a realistic mix of runs, compute numbers and typed jobs on a running stack (API=http://host:port; default :8000).
seed: $(STAMP)
	$(PY) -m infra.seed --api $(or $(API),http://localhost:8000)

## test: everything CI runs: the type check, then unit, contract, runtime conformance, integration, browser.
## The 25 slowest tests are listed at the end, so CI's log says where the ten minutes go.
test: $(STAMP) browser typecheck
	$(PY) -m pytest --durations=25

## typecheck: mypy, strict, on chalicelib/ and app.py (mypy.ini): every adapter and twin held to its port.
typecheck: $(STAMP)
	$(PY) -m mypy

## test-fast: unit and contract tests only (no processes, no browser).
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit tests/contract

## fuzz: schemathesis against a stack of its own, held to GET /api/openapi.json (about 90 s; CI runs it after
## make test, which leaves it out to stay under ten minutes on 2 cores).
fuzz: $(STAMP)
	$(PY) -m pytest tests/fuzz -m fuzz

browser:
	bash infra/install-browser.sh

## bench: every benchmark at full size, against its targets (issues #3 to #13; most of an hour on 2 cores).
bench: $(STAMP)
	$(PY) -m bench.run_all

## bench-quick: the same benchmarks, shortened, as CI runs them.
bench-quick: $(STAMP)
	$(PY) -m bench.run_all --quick

## drills: failure drills at full scale (kill 20,000 jobs, restarts, 20% failures, duplicates).
drills: $(STAMP)
	PACER_DRILL_SCALE=full $(PY) -m pytest tests/drills -m drill -s

## drills-quick: the same drills, shorter, as CI runs them.
drills-quick: $(STAMP)
	PACER_DRILL_SCALE=short $(PY) -m pytest tests/drills -m drill -s

clean:
	rm -rf $(VENV) .pytest_cache .run

# ---- The LocalStack lane and the path to AWS (issue #7) ----
.PHONY: test-localstack localstack-start localstack-stop package

# What the LocalStack lane runs: every suite that talks to a live endpoint,
# the short drills included (PACER_DRILL_SCALE defaults to short), the stream suites too (docs/EMULATORS.md).
LOCALSTACK_TESTS ?= integration or runtime or deploy or drill

## test-localstack: those suites against LocalStack in host mode (no Docker), through AWS_ENDPOINT_URL; LocalStack stops afterwards.
test-localstack: $(STAMP)
	bash infra/localstack/with-localstack.sh $(PY) -m pytest -m "$(LOCALSTACK_TESTS)"

## localstack-start / localstack-stop: LocalStack in host mode on :4566, for `AWS_ENDPOINT_URL=http://127.0.0.1:4566 make up`.
localstack-start:
	bash infra/localstack/hostmode.sh start

localstack-stop:
	bash infra/localstack/hostmode.sh stop

## package: chalice package with the merge template generated from chalicelib/resources.py -> out/$(STAGE)/sam.json
STAGE ?= dev
package: $(STAMP)
	$(PY) -m infra.deploy.package --stage $(STAGE) --out out
