"""The driver pool (storage/driver_pool.py, PostgreSQL): connections in autocommit with the
service's session settings, reused most recent first, at most `size` at once; a connection that
comes back broken or inside a transaction is closed, one dropped while idle is replaced, and a
cancelled read stops its query and leaves a usable connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from invoice_rpc.storage.database import Database
from invoice_rpc.storage.driver_pool import DriverPool

APPLICATION_NAME = "invoice-rpc-driver-pool-test"


@pytest.fixture
async def db(postgresql_url: str) -> AsyncIterator[Database]:
    database = Database(postgresql_url, application_name=APPLICATION_NAME)
    try:
        yield database
    finally:
        await database.dispose()


def pool_of(db: Database) -> DriverPool:
    assert db.driver_pool is not None
    return db.driver_pool


async def backend_pid(db: Database) -> int:
    async with db.read_driver() as connection:
        cursor = await connection.driver.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def admin(postgresql_url: str) -> psycopg.Connection:
    conninfo = make_url(postgresql_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


def backends_alive(postgresql_url: str, pids: set[int]) -> set[int]:
    with admin(postgresql_url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)).fetchall()
    return {row[0] for row in rows}


async def test_connections_are_in_autocommit_with_the_service_settings(db: Database) -> None:
    async with db.read_driver() as connection:
        driver = connection.driver
        first = await (await driver.execute("SELECT txid_current()")).fetchone()
        second = await (await driver.execute("SELECT txid_current()")).fetchone()
        settings = await (
            await driver.execute(
                "SELECT current_setting('random_page_cost'), current_setting('TimeZone'),"
                " current_setting('application_name')"
            )
        ).fetchone()
        assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert first != second  # each statement its own transaction: no BEGIN was sent
    assert settings == ("1.1", "UTC", APPLICATION_NAME)


async def test_a_connection_is_reused_and_at_most_size_are_open(db: Database) -> None:
    assert await backend_pid(db) == await backend_pid(db)

    pool = pool_of(db)
    in_use, most_in_use, pids = 0, 0, set()

    async def one_read() -> None:
        nonlocal in_use, most_in_use
        async with db.read_driver() as connection:
            in_use += 1
            most_in_use = max(most_in_use, in_use)
            cursor = await connection.driver.execute("SELECT pg_backend_pid(), pg_sleep(0.02)")
            row = await cursor.fetchone()
            assert row is not None
            pids.add(row[0])
            in_use -= 1

    await asyncio.gather(*(one_read() for _ in range(pool.size * 2)))
    assert most_in_use == pool.size
    assert len(pids) == pool.size
    assert pool.idle_count == pool.size


async def test_a_connection_left_in_a_transaction_is_closed(db: Database, postgresql_url: str) -> None:
    async with db.read_driver() as connection:
        await connection.driver.execute("BEGIN")
        cursor = await connection.driver.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
        assert row is not None
        left_in_transaction = row[0]
    assert pool_of(db).idle_count == 0
    assert await backend_pid(db) != left_in_transaction
    assert backends_alive(postgresql_url, {left_in_transaction}) == set()


async def test_a_connection_dropped_while_idle_is_replaced(db: Database, postgresql_url: str) -> None:
    first = await backend_pid(db)
    with admin(postgresql_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first,))
    pool_of(db).idle_ping_seconds = 0.0  # every checkout counts as idle: pinged first
    assert await backend_pid(db) != first


async def test_a_connection_used_a_moment_ago_is_not_pinged(db: Database, postgresql_url: str) -> None:
    """No extra round trip for a recently used connection: a backend dropped in between shows
    as a failed read, and the broken connection is not kept."""
    first = await backend_pid(db)
    with admin(postgresql_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first,))
    with pytest.raises(psycopg.OperationalError):
        await backend_pid(db)
    assert pool_of(db).idle_count == 0
    assert await backend_pid(db) != first


async def test_a_cancelled_read_stops_its_query_and_its_connection_is_reused(db: Database, postgresql_url: str) -> None:
    pid = await backend_pid(db)

    async def long_read() -> None:
        async with db.read_driver() as connection:
            await connection.driver.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(long_read())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with admin(postgresql_url) as conn:
        row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row == ("idle",)
    assert await backend_pid(db) == pid


async def test_close_closes_idle_connections_and_refuses_more(db: Database, postgresql_url: str) -> None:
    pid = await backend_pid(db)
    await pool_of(db).close()
    assert backends_alive(postgresql_url, {pid}) == set()
    with pytest.raises(RuntimeError, match="closed"):
        await backend_pid(db)


async def test_sqlite_has_no_driver_connections(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        with pytest.raises(RuntimeError, match="PostgreSQL"):
            async with database.read_driver():
                pass
    finally:
        await database.dispose()
