# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of them.
# Only python3 (3.11+) is needed: the rest is installed into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when a pyproject.toml is newer than the last install.
INSTALLED := $(VENV)/.installed
GRPC_PORT ?= 50051
HTTP_PORT ?= 8080
ADMIN_PORT ?= 9901

.PHONY: setup run test gen lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

$(INSTALLED): $(BIN)/python pyproject.toml clients/python/pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e clients/python -e '.[dev]'
	touch $@

setup: $(INSTALLED)

# Migrate and seed the SQLite file in var/, print a demo key, a gRPC call and a curl line, then run
# the gRPC server ($(GRPC_PORT)), the metrics worker and Envoy (REST on $(HTTP_PORT)) until Ctrl-C.
# The database is $$INVOICE_RPC_DATABASE_URL if set.
run: setup
	$(BIN)/invoice-rpc --log-level WARNING migrate
	$(BIN)/invoice-rpc --log-level WARNING seed --demo --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT)
	$(BIN)/invoice-rpc --log-level WARNING up --grpc-port $(GRPC_PORT) --http-port $(HTTP_PORT) --admin-port $(ADMIN_PORT)

# The whole suite, on SQLite and PostgreSQL ($$INVOICE_RPC_TEST_PG_URL, default
# postgresql://postgres@127.0.0.1:5432/test; with CI=true PostgreSQL is mandatory).
test: setup
	$(BIN)/python -m pytest -q

gen: setup
	$(BIN)/python protos/generate.py

# generate.py also copies the googleapis protos that buf resolves imports from (protos/.third_party).
lint: setup
	$(BIN)/python protos/generate.py --out build/lint-generated
	cd protos && ../$(BIN)/buf lint
	$(BIN)/ruff check src tests clients/python/src/invoice_rpc_client $(wildcard bench)

typecheck: setup
	$(BIN)/mypy src clients/python/src/invoice_rpc_client $(wildcard bench)

clean:
	rm -rf $(VENV) var build protos/.third_party
