"""The connection pool: a connection PostgreSQL dropped while it sat idle is replaced before
use, without a ping on every checkout."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
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
