# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test gen lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e clients/python -e '.[dev]'

gen: setup
	$(BIN)/python protos/generate.py

lint: setup
	cd protos && ../$(BIN)/buf lint
	$(BIN)/ruff check src tests clients/python/src/invoice_rpc_client bench

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) var
