"""Shared fixtures: a real database (SQLite file and PostgreSQL), migrated by Alembic; a real
gRPC server on a free port; a real channel; a fresh tenant with an API key per test.

Every test that takes `api` (or `db`) runs once per database. PostgreSQL comes from
INVOICE_RPC_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test); each test session
creates its own database there and drops it afterwards. Without PostgreSQL the PostgreSQL half
is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest
from invoice_rpc.v1 import import_service_pb2_grpc, invoice_service_pb2_grpc
from sqlalchemy.engine import make_url

from invoice_rpc import event_loop
from invoice_rpc.rpc.server import BuiltServer, build_server
from invoice_rpc.service.tenants import create_api_key
from invoice_rpc.storage import migrate
from invoice_rpc.storage.database import Database

PG_ADMIN_URL = os.environ.get("INVOICE_RPC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
DIALECTS = ["sqlite", "postgresql"]


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The tests run on the event loop the commands run on (uvloop where installed)."""
    return {"service_loop": event_loop.new_event_loop}


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = make_url(PG_ADMIN_URL)
    name = f"invoice_rpc_test_{uuid.uuid4().hex[:10]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc))
    url = admin.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "invoice-rpc.sqlite3"
    return f"sqlite:///{path}"


@pytest.fixture(params=DIALECTS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database of each dialect for one test (never the session's shared
    one: tests that migrate down and up would wipe it under the others), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    admin = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    name = f"invoice_rpc_empty_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc))
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=DIALECTS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database URL, once per dialect."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def server(db: Database) -> AsyncIterator[BuiltServer]:
    built = build_server(db, "127.0.0.1:0")
    await built.start()
    yield built
    await built.stop(1.0)


@pytest.fixture(scope="session")
async def channel(server: BuiltServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@dataclass
class Api:
    """One tenant's view of the running server: stubs plus its bearer metadata."""

    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    key: str
    tenant_name: str
    invoices: invoice_service_pb2_grpc.InvoiceServiceStub
    imports: import_service_pb2_grpc.ImportServiceStub
    db: Database

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


async def new_api(db: Database, channel: grpc.aio.Channel, *, marketplace_customer_id: str | None = None) -> Api:
    """A brand-new tenant with its own key, so that tests never see each other's data."""
    name = f"tenant-{uuid.uuid4().hex[:12]}"
    async with db.write() as session:
        issued = await create_api_key(session, name, marketplace_customer_id=marketplace_customer_id)
    return Api(
        tenant_id=issued.tenant_id,
        api_key_id=issued.api_key_id,
        key=issued.key,
        tenant_name=name,
        invoices=invoice_service_pb2_grpc.InvoiceServiceStub(channel),
        imports=import_service_pb2_grpc.ImportServiceStub(channel),
        db=db,
    )


@pytest.fixture
async def api(db: Database, channel: grpc.aio.Channel) -> Api:
    return await new_api(db, channel)


@pytest.fixture
async def other_api(db: Database, channel: grpc.aio.Channel) -> Api:
    """A second, unrelated tenant on the same server."""
    return await new_api(db, channel)
