# fleetscan developer entry points. Every target creates/uses .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt typecheck bench bench-scan clean setup

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  rm -rf $(VENV) && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,distributed]'
	touch $(STAMP)

setup: $(STAMP)

## demo: set up and scan the embedded demo fleet (no outside hosts)
demo: $(STAMP)
	@# exit 1 is the demo's expected verdict (it has a critical finding); anything else fails
	$(BIN)/fleetscan demo --output demo-report || [ $$? -eq 1 ]

## test: set up, start what the tests need (sshd on loopback is started by the tests), run everything
test: $(STAMP)
	bash scripts/test-deps.sh
	$(BIN)/ruff check fleetscan tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check fleetscan tests bench
	$(BIN)/ruff format --check fleetscan tests bench

fmt: $(STAMP)
	$(BIN)/ruff format fleetscan tests bench
	$(BIN)/ruff check --fix fleetscan tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench-scan: $(STAMP)
	$(BIN)/python -m bench.scan $(N) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.parse

clean:
	rm -rf $(VENV) demo-report .pytest_cache .mypy_cache .ruff_cache
