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
    db = Database(postgresql_url, pool_size=1)
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
    db = Database(postgresql_url, pool_size=1)
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
    db = Database(postgresql_url, pool_size=1)
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
    db = Database(postgresql_url, pool_size=1)
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
    """POOL_SIZE connections are kept: 32 reads at once, twice over, open 32 connections, not
    32 more for the second round (an overflowing pool closes what it returns)."""
    db = Database(postgresql_url)
    opened: list[int] = []
    event.listen(db.read_engine.sync_engine, "connect", lambda *_: opened.append(1))

    async def one_read() -> None:
        async with db.read_autocommit() as session:
            await session.execute(text("SELECT pg_sleep(0.05)"))

    try:
        await asyncio.gather(*(one_read() for _ in range(database.POOL_SIZE)))
        assert len(opened) == database.POOL_SIZE
        await asyncio.gather(*(one_read() for _ in range(database.POOL_SIZE)))
        assert len(opened) == database.POOL_SIZE
    finally:
        await db.dispose()
