"""The connection pool: a connection PostgreSQL dropped while it sat idle is replaced before
use, without a ping on every checkout; connections are kept for a steady load; autocommit reads."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from invoice_rpc.storage import database
from invoice_rpc.storage.database import Database


async def _backend_pid(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _terminate(url: str, pid: int) -> None:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


async def test_connection_dropped_while_idle_is_replaced(postgresql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(postgresql_url, connections=database.MIN_CONNECTIONS_PER_PROCESS)
    try:
        first = await _backend_pid(db)
        _terminate(postgresql_url, first)
        monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
        second = await _backend_pid(db)
        assert second != first
    finally:
        await db.dispose()


async def test_only_a_connection_idle_for_a_while_is_pinged(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection used a moment ago costs the next rpc no extra round trip."""
    db = Database(postgresql_url, connections=database.MIN_CONNECTIONS_PER_PROCESS)
    dialect = db.read_engine.sync_engine.dialect
    pings: list[bool] = []
    real_ping = dialect.do_ping

    def counted_ping(dbapi_connection: object) -> bool:
        alive = real_ping(dbapi_connection)
        pings.append(alive)
        return alive

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    try:
        await _backend_pid(db)  # a new connection: no idle time yet, no ping
        await _backend_pid(db)
        assert pings == []
        monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)
        await _backend_pid(db)
        assert pings == [True]
    finally:
        await db.dispose()


async def test_postgresql_sessions_plan_for_pages_in_memory(postgresql_url: str) -> None:
    """Every connection carries the service's planner settings (POSTGRESQL_SESSION_OPTIONS)."""
    db = Database(postgresql_url, connections=database.MIN_CONNECTIONS_PER_PROCESS)
    try:
        async with db.read() as session:
            cost = (await session.execute(text("SHOW random_page_cost"))).scalar_one()
        assert cost == "1.1"
    finally:
        await db.dispose()


async def test_autocommit_reads_open_no_transaction_and_leave_the_pool_transactional(postgresql_url: str) -> None:
    """read_autocommit() sends no BEGIN (each statement is its own transaction: txid changes
    between two statements); a read() on the same pooled connection afterwards is a transaction
    again (one txid for both statements)."""
    db = Database(postgresql_url, connections=database.MIN_CONNECTIONS_PER_PROCESS)
    txid = text("SELECT txid_current()")
    try:
        async with db.read_autocommit() as session:
            first = (await session.execute(txid)).scalar_one()
            second = (await session.execute(txid)).scalar_one()
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert second != first
        async with db.read() as session:
            first = (await session.execute(txid)).scalar_one()
            second = (await session.execute(txid)).scalar_one()
        assert second == first
    finally:
        await db.dispose()


async def test_a_steady_load_within_the_pool_opens_no_connection_per_request(postgresql_url: str) -> None:
    """The pool's connections are kept: as many reads at once as it holds, twice over, open that
    many connections, not as many more for the second round (an overflowing pool closes what it
    returns)."""
    db = Database(postgresql_url)
    pool_size = database.PoolSizes.for_connections(database.CONNECTIONS_PER_PROCESS).pool
    opened: list[int] = []
    event.listen(db.read_engine.sync_engine, "connect", lambda *_: opened.append(1))

    async def one_read() -> None:
        async with db.read_autocommit() as session:
            await session.execute(text("SELECT pg_sleep(0.05)"))

    try:
        await asyncio.gather(*(one_read() for _ in range(pool_size)))
        assert len(opened) == pool_size == 32
        await asyncio.gather(*(one_read() for _ in range(pool_size)))
        assert len(opened) == pool_size
    finally:
        await db.dispose()


def test_a_process_connections_are_split_between_its_pools() -> None:
    assert database.PoolSizes.for_connections(48) == database.PoolSizes(pool=32, overflow=8, driver=8)
    assert database.PoolSizes.for_connections(12) == database.PoolSizes(pool=8, overflow=2, driver=2)
    assert database.PoolSizes.for_connections(3) == database.PoolSizes(pool=1, overflow=1, driver=1)
    with pytest.raises(ValueError, match="at least 3 connections, got 2"):
        database.PoolSizes.for_connections(2)


async def test_a_database_opens_at_most_its_connections(postgresql_url: str) -> None:
    db = Database(postgresql_url, connections=12)
    try:
        pool = db.read_engine.sync_engine.pool
        assert (pool.size(), pool._max_overflow) == (8, 2)  # type: ignore[attr-defined]
        assert db.driver_pool is not None and db.driver_pool.size == 2
    finally:
        await db.dispose()
