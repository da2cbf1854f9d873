"""One engine per process and the unit of work: a transaction per rpc, opened at the edge.

`Database.write()` is a transaction that commits when its block ends normally and rolls back
otherwise (raising Aborted, which the caller may retry, when PostgreSQL ended it to break a
deadlock or for a serialization failure); `Database.read()` always rolls back;
`Database.read_autocommit()` opens no transaction at all (single-statement reads: gets, pages),
nor does `Database.read_driver()`, a bare psycopg connection for a list page (PostgreSQL). On
SQLite, writes start with BEGIN IMMEDIATE so that concurrent writers queue on the file lock up
front instead of failing on an upgrade from a read lock; reads start a plain deferred BEGIN and
so never block writers (WAL).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from invoice_rpc.domain.errors import Aborted
from invoice_rpc.storage.driver_pool import DriverConnection, DriverPool
from invoice_rpc.storage.shared_snapshot import SharedSnapshot
from invoice_rpc.storage.types import json_dumps

SQLITE_BUSY_TIMEOUT_MS = 30_000
IDLE_PING_SECONDS = 5.0

# Planner settings of every PostgreSQL connection the service opens (libpq `options`). The default
# random_page_cost (4) models spinning disks: with it PostgreSQL joins a page of 50 invoices to its
# parents by hashing the whole customers and contracts tables instead of probing their primary
# keys 50 times: 4.5 ms instead of 0.8 ms a page on the 1M-invoice bench database. 1.1 is the usual
# value for SSDs and for tables that stay in memory, where a random read costs about what a
# sequential one does.
POSTGRESQL_SESSION_OPTIONS = "-c random_page_cost=1.1 -c TimeZone=UTC"

# A process's PostgreSQL connections, split three ways (see `PoolSizes`). `serve` gives each of
# its processes an equal share of INVOICE_RPC_DB_CONNECTIONS (config.py); 48 is two processes'
# share of the default, and what a process gets when nothing says otherwise.
CONNECTIONS_PER_PROCESS = 48
MIN_CONNECTIONS_PER_PROCESS = 3


@dataclass(frozen=True, slots=True)
class PoolSizes:
    """How a process's `connections` are used: the engine keeps `pool` open and may open
    `overflow` more for a burst; the driver pool (list pages, storage/driver_pool.py) keeps up
    to `driver`. A connection past `pool` is closed as soon as it is returned, so a steady load
    above it opens and closes a PostgreSQL backend (a fork and a login, milliseconds of CPU) for
    every few requests: with a pool of 10, 32 concurrent lists over two processes opened 190
    sessions in 11 s. So most go to `pool`. A list page takes PostgreSQL about a millisecond:
    a sixth of the share in flight keeps a process's pages from waiting on each other."""

    pool: int
    overflow: int
    driver: int

    @classmethod
    def for_connections(cls, connections: int) -> PoolSizes:
        if connections < MIN_CONNECTIONS_PER_PROCESS:
            raise ValueError(f"a process needs at least {MIN_CONNECTIONS_PER_PROCESS} connections, got {connections}")
        driver = overflow = max(1, connections // 6)
        return cls(pool=connections - driver - overflow, overflow=overflow, driver=driver)


# SQLSTATEs with which PostgreSQL ends a transaction that conflicted with a concurrent one and
# would succeed if run again: nothing of it was written. Writers lock rows of shared tables in
# different orders across statements (e.g. the numbering row, then an invoice it changes, against
# a writer that took them the other way round), so a deadlock is a normal, if rare, outcome of
# concurrency, not a fault. (The summary rollups take no part: their triggers only append rows.)
RETRYABLE_SQLSTATES = {
    "40P01": "ended to break a deadlock with a concurrent transaction",
    "40001": "ended by a serialization failure against a concurrent transaction",
}


def async_url(url: str | URL) -> URL:
    """The URL with the async driver this service uses: aiosqlite or psycopg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def sync_url(url: str | URL) -> URL:
    """The URL with a synchronous driver, for Alembic and bulk tools."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def ensure_sqlite_directory(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, begin_statement: str) -> None:
    """Take transaction control away from the sqlite3 module and set the pragmas we rely on."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin_statement)


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it sat idle for IDLE_PING_SECONDS: one that
    was just used is alive, and pinging on every checkout (pool_pre_ping) costs every rpc a
    round trip. A connection the server dropped while idle (restart, idle timeout) is replaced;
    the pool tries again with a new one."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        # No checkin yet: the connection was opened for this checkout (the record's info is
        # cleared whenever its DBAPI connection is replaced).
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("connection failed its ping") from error
        if not alive:
            raise DisconnectionError("connection failed its ping")


class Database:
    """The process's engines and session factories."""

    def __init__(
        self, url: str | URL, *, connections: int = CONNECTIONS_PER_PROCESS, application_name: str = "invoice-rpc"
    ) -> None:
        """`connections`: at most this many PostgreSQL connections open at once (`PoolSizes`)."""
        self.url = async_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        ensure_sqlite_directory(self.url)
        self.driver_pool: DriverPool | None = None
        if self.is_sqlite:
            self.read_engine = create_async_engine(self.url, json_serializer=json_dumps)
            self.write_engine = create_async_engine(self.url, json_serializer=json_dumps)
            _configure_sqlite(self.read_engine, "BEGIN")
            _configure_sqlite(self.write_engine, "BEGIN IMMEDIATE")
        else:
            sizes = PoolSizes.for_connections(connections)
            engine = create_async_engine(
                self.url,
                pool_size=sizes.pool,
                max_overflow=sizes.overflow,
                connect_args={"application_name": application_name, "options": POSTGRESQL_SESSION_OPTIONS},
                json_serializer=json_dumps,
            )
            _ping_idle_connections(engine)
            self.read_engine = self.write_engine = engine
            dialect = engine.sync_engine.dialect
            _, connect_kwargs = dialect.create_connect_args(engine.url)
            self.driver_pool = DriverPool(
                dialect,
                {**connect_kwargs, "application_name": application_name, "options": POSTGRESQL_SESSION_OPTIONS},
                size=sizes.driver,
                idle_ping_seconds=IDLE_PING_SECONDS,
            )
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite has no such mode worth having (a read there costs no round trip): the same sessions.
        autocommit_engine = self.read_engine
        if not self.is_sqlite:
            autocommit_engine = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._autocommit_engine = autocommit_engine
        self._autocommit_sessions = async_sessionmaker(autocommit_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction; always rolled back, also when the caller is cancelled."""
        async with self._read_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    def shared_snapshot(self) -> SharedSnapshot:
        """`async with db.shared_snapshot() as snapshot`: PostgreSQL connections that all read one
        snapshot (a read spread over several backends)."""
        if self.is_sqlite:
            raise RuntimeError("a shared snapshot is PostgreSQL's")
        return SharedSnapshot(self.read_engine)

    @asynccontextmanager
    async def read_autocommit(self) -> AsyncIterator[AsyncSession]:
        """A read whose statements run outside a transaction (PostgreSQL autocommit): no BEGIN and
        no ROLLBACK, which were two of a page's three round trips to the database. It sees what
        read() sees: there each statement takes its own snapshot too (READ COMMITTED). Not for
        SET LOCAL or server-side cursors, which need a transaction. On SQLite the same as read()."""
        async with self._autocommit_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    @asynccontextmanager
    async def read_driver(self) -> AsyncIterator[DriverConnection]:
        """PostgreSQL: a psycopg connection in autocommit from the driver pool, for a read of
        statements run through storage/driver_rows.fetch_all (a list page), with no SQLAlchemy
        connection or session around it. It sees what read_autocommit() sees."""
        if self.driver_pool is None:
            raise RuntimeError("driver connections are PostgreSQL's")
        async with self.driver_pool.connection() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed if the block ends normally, else rolled back.
        Aborted (nothing written; the same call may be retried) if PostgreSQL ended it for a
        deadlock or a serialization failure; other database errors pass through unchanged."""
        try:
            async with self._write_sessions() as session, session.begin():
                yield session
        except DBAPIError as error:
            reason = RETRYABLE_SQLSTATES.get(getattr(error.orig, "sqlstate", None) or "")
            if reason is None:
                raise
            raise Aborted(f"the transaction was {reason}; nothing was written, retry the call") from error

    async def dispose(self) -> None:
        if self.driver_pool is not None:
            await self.driver_pool.close()
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
