"""storage/driver_rows.fetch_all gives the rows SQLAlchemy's own execute gives: the same bind
processing (UtcDateTime parameters), the same result processing (UtcDateTime columns, the linked
id arrays), also in a session that is not in UTC, for IN lists written per call, and on the
driver pool's connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, text

from invoice_rpc.service.invoice_records import core_connection, invoice_record_select, links_in_select
from invoice_rpc.storage import driver_rows
from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import make_customer, make_invoice


def since_statement(with_links: bool) -> Select[Any]:
    created_at = m.Invoice.created_at
    return (
        invoice_record_select(with_links=with_links)
        .where(
            m.Invoice.tenant_id == bindparam("tenant_id"),
            created_at >= bindparam("since", type_=created_at.type),
        )
        .order_by(m.Invoice.created_at, m.Invoice.id)
    )


async def seed(api: Api) -> datetime:
    start = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id)
        for hours in range(6):
            await make_invoice(
                s,
                api.tenant_id,
                customer=customer if hours % 2 else None,
                created_at=start + timedelta(hours=hours),
                paid_at=start + timedelta(hours=hours, minutes=5) if hours % 3 else None,
                description=f"at +{hours} h",
            )
    return start


async def test_rows_equal_sqlalchemys(api: Api) -> None:
    start = await seed(api)
    async with api.db.read_autocommit() as session:
        statement = since_statement(links_in_select(session))
        connection = await core_connection(session)
        values = {"tenant_id": api.tenant_id, "since": start + timedelta(hours=2)}
        expected = [tuple(row) for row in (await connection.execute(statement, values)).all()]
        for _ in range(3):  # the first call prepares, the next ones reuse
            rows = [tuple(row) for row in await driver_rows.fetch_all(connection, statement, values)]
            assert rows == expected
        fast_path = connection.dialect.name == "postgresql"
        assert (driver_rows._prepared.get(statement) is not None) is fast_path

    keys = list(statement.selected_columns.keys())
    assert [row[keys.index("description")] for row in rows] == [f"at +{h} h" for h in range(2, 6)]
    created = [row[keys.index("created_at")] for row in rows]
    assert created == [start + timedelta(hours=h) for h in range(2, 6)]
    assert all(value.tzinfo is UTC for value in created)


async def test_session_outside_utc_still_gets_utc(api: Api) -> None:
    start = await seed(api)
    async with api.db.read() as session:
        connection = await core_connection(session)
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
        statement = since_statement(links_in_select(session))
        values = {"tenant_id": api.tenant_id, "since": start}
        expected = [tuple(row) for row in (await connection.execute(statement, values)).all()]
        rows = [tuple(row) for row in await driver_rows.fetch_all(connection, statement, values)]

    assert rows == expected and len(rows) == 6
    index = list(statement.selected_columns.keys()).index("paid_at")
    paid = [row[index] for row in rows if row[index] is not None]
    assert paid and all(value.tzinfo is UTC for value in paid)


async def test_expanding_lists_are_written_per_call(api: Api) -> None:
    """An IN list of any length: SQLAlchemy's compiler writes each call's text, the driver runs
    it, and the rows are the ones SQLAlchemy's execute gives."""
    await seed(api)
    statement = (
        invoice_record_select()
        .where(
            m.Invoice.tenant_id == bindparam("tenant_id"), m.Invoice.description.in_(bindparam("texts", expanding=True))
        )
        .order_by(m.Invoice.description)
    )
    async with api.db.read_autocommit() as session:
        connection = await core_connection(session)
        for texts in (["at +1 h"], ["at +0 h", "at +4 h", "nowhere"], [f"at +{h} h" for h in range(12)]):
            values = {"tenant_id": api.tenant_id, "texts": texts}
            expected = [tuple(row) for row in (await connection.execute(statement, values)).all()]
            rows = [tuple(row) for row in await driver_rows.fetch_all(connection, statement, values)]
            assert rows == expected
            index = list(statement.selected_columns.keys()).index("description")
            assert [row[index] for row in rows] == sorted(t for t in texts if t in {f"at +{h} h" for h in range(6)})
    fast_path = connection.dialect.name == "postgresql"
    assert (driver_rows._prepared.get(statement) is not None) is fast_path


async def test_a_driver_connection_reads_the_rows_an_engine_connection_reads(api: Api) -> None:
    """Database.read_driver's connections (PostgreSQL) carry the engine's type handling: the
    same rows, UtcDateTime values and linked id arrays included."""
    if api.db.dialect != "postgresql":
        pytest.skip("driver connections are PostgreSQL's")
    start = await seed(api)
    statement = since_statement(with_links=True)
    values = {"tenant_id": api.tenant_id, "since": start + timedelta(hours=1)}
    async with api.db.read_autocommit() as session:
        connection = await core_connection(session)
        expected = [tuple(row) for row in (await connection.execute(statement, values)).all()]
    async with api.db.read_driver() as driver_connection:
        for binary in (False, True):
            rows = [
                tuple(row) for row in await driver_rows.fetch_all(driver_connection, statement, values, binary=binary)
            ]
            assert rows == expected
    assert len(expected) == 5
