# pps-chatops — the two commands: `make test` and `make demo`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo bench venv lint typecheck unit clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## make test: venv + install, a Redis (private one if none answers at REDIS_URL), ruff, mypy --strict, pytest
test: venv
	bash scripts/test

lint: venv
	$(BIN)/ruff check bot handlers jobs sim tests benchmarks

typecheck: venv
	$(BIN)/mypy

## make demo: simulator + worker + bot + Slack stand-in page, Ctrl-C stops all
demo: venv
	bash scripts/demo

## make bench: the benchmarks (stand-ins, real Redis, real ppsbot processes), one table and
## benchmarks/results.json; `make bench BENCH_SIZE=tiny` is the CI size (about 45 s)
BENCH_SIZE ?= full
bench: venv
	$(BIN)/python -m pip install -q -e '.[bench]'
	bash scripts/bench $(if $(filter tiny,$(BENCH_SIZE)),--tiny,)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
