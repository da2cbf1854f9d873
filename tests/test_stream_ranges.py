"""StreamInvoices' basic view on PostgreSQL read by several backends (service/invoice_ranges.py):
the same invoices in the same order as one cursor (the Python path), from one snapshot, with every connection
given back however the stream ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from invoice_rpc.domain.enums import BillingType, InvoiceStatus, SortDirection, SortField
from invoice_rpc.rpc.convert import invoice_to_pb
from invoice_rpc.rpc.invoice_wire import invoice_wire_column
from invoice_rpc.service import invoice_queries
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort
from invoice_rpc.service.invoice_ranges import stream_projected_ranges
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow
from tests.conftest import Api
from tests.factories import make_invoice, make_invoices_bulk
from tests.test_stream_wire import drop_stored_wire

BILLING_TYPES = (BillingType.SUBSCRIPTION, BillingType.ONE_TIME, BillingType.REFUND)


def require_postgresql(api: Api) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip("shared snapshots are PostgreSQL's: on SQLite a stream is one cursor")


async def make_invoices_with_ties(api: Api, count: int) -> list[uuid.UUID]:
    """Invoices whose sort values repeat (so that ranges end inside a run of equal values)."""
    async with api.db.write() as s:
        return await make_invoices_bulk(
            s,
            api.tenant_id,
            count,
            each=lambda i: {
                "billing_type": str(BILLING_TYPES[i % 3]),
                "total_minor": 100 * (i % 4),
                "status": str(InvoiceStatus.PAID if i % 2 else InvoiceStatus.SENT),
            },
        )


async def python_path(api: Api, query: InvoiceQuery, sort: InvoiceSort) -> list[pb.Invoice]:
    """The invoices as one cursor reads them and Python builds them (the full view's path)."""
    async with api.db.read() as s:
        batches = invoice_queries.stream_invoice_batches(s, api.tenant_id, query, sort)
        return [invoice_to_pb(record) async for batch in batches for record in batch]


async def ranges(
    api: Api,
    query: InvoiceQuery,
    sort: InvoiceSort,
    projection: Any = invoice_wire_column,
    *,
    batch_size: int = 2,
    range_rows: int = 4,
    helpers: int = 2,
) -> list[list[Any]]:
    async with api.db.shared_snapshot() as snapshot:
        batches = stream_projected_ranges(
            snapshot,
            api.tenant_id,
            query,
            sort,
            projection,
            batch_size=batch_size,
            range_rows=range_rows,
            helpers=helpers,
        )
        return [batch async for batch in batches]


def checked_out(api: Api) -> int:
    return int(api.db.read_engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


@pytest.mark.parametrize("field", list(SortField))
@pytest.mark.parametrize("direction", list(SortDirection))
async def test_ranges_give_what_one_cursor_gives_in_every_order(
    api: Api, field: SortField, direction: SortDirection
) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 23)
    sort = InvoiceSort(field=field, direction=direction)

    batches = await ranges(api, InvoiceQuery(), sort)

    assert [len(batch) for batch in batches] == [2] * 11 + [1]
    invoices = [pb.Invoice.FromString(wire) for batch in batches for wire in batch]
    assert invoices == await python_path(api, InvoiceQuery(), sort)


async def test_filters_apply_to_every_range(api: Api, other_api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 30)
    await make_invoices_with_ties(other_api, 5)
    query = InvoiceQuery(statuses=(InvoiceStatus.PAID,), billing_types=(BillingType.SUBSCRIPTION, BillingType.REFUND))

    values = [wire for batch in await ranges(api, query, InvoiceSort(), range_rows=3, batch_size=3) for wire in batch]

    expected = await python_path(api, query, InvoiceSort())
    assert len(expected) == 10
    assert [pb.Invoice.FromString(wire) for wire in values] == expected
    assert {invoice.status for invoice in expected} == {pb.INVOICE_STATUS_PAID}


async def test_a_range_is_whole_batches(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 10)

    # 5 rows a range would split a batch of 2: ranges are rounded down to 4.
    batches = await ranges(api, InvoiceQuery(), InvoiceSort(), batch_size=2, range_rows=5)

    assert [len(batch) for batch in batches] == [2, 2, 2, 2, 2]


async def test_helpers_read_the_ranges_on_their_own_backends(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 40)
    backend = func.pg_backend_pid()

    async with api.db.shared_snapshot() as snapshot:
        leader = (await snapshot.leader.execute(select(backend))).scalar_one()
        batches = stream_projected_ranges(
            snapshot, api.tenant_id, InvoiceQuery(), InvoiceSort(), lambda row: backend, batch_size=4, range_rows=4
        )
        readers = {pid async for batch in batches for pid in batch}

    assert len(readers) == 2
    assert leader not in readers


async def test_the_stream_reads_one_snapshot_while_invoices_change(api: Api) -> None:
    require_postgresql(api)
    ids = await make_invoices_with_ties(api, 12)
    sort = InvoiceSort(direction=SortDirection.ASC)
    before = [uuid.UUID(invoice.invoice_ref) for invoice in await python_path(api, InvoiceQuery(), sort)]

    seen: list[uuid.UUID] = []
    async with api.db.shared_snapshot() as snapshot:
        batches = stream_projected_ranges(
            snapshot, api.tenant_id, InvoiceQuery(), sort, lambda row: row["id"], batch_size=2, range_rows=2, helpers=1
        )
        seen += await anext(batches)
        # Committed while the stream runs: a new invoice among the ones not yet sent, one deleted
        # and one changed so that it would sort first. The stream sees none of it.
        async with api.db.write() as s:
            middle = await s.get(m.Invoice, ids[6])
            assert middle is not None
            await make_invoices_bulk(s, api.tenant_id, 1, created_from=middle.created_at + timedelta(microseconds=1))
            moved = update(m.Invoice).where(m.Invoice.id == ids[9]).values(created_at=utcnow() - timedelta(days=9))
            await s.execute(moved)
            await s.delete(await s.get(m.Invoice, ids[11]))
        seen += [value async for batch in batches for value in batch]

    assert seen == before == ids


async def test_a_stream_closed_early_gives_every_connection_back(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 40)
    idle = checked_out(api)

    async with api.db.shared_snapshot() as snapshot:
        batches = stream_projected_ranges(
            snapshot, api.tenant_id, InvoiceQuery(), InvoiceSort(), invoice_wire_column, batch_size=2, range_rows=4
        )
        first = await anext(batches)
        assert checked_out(api) == idle + 3  # the leader and two helpers reading ahead
        await batches.aclose()

    assert len(first) == 2
    assert checked_out(api) == idle
    assert len(await python_path(api, InvoiceQuery(), InvoiceSort())) == 40  # the pool still works


async def test_a_failing_range_fails_the_stream_and_gives_every_connection_back(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 9)
    async with api.db.write() as s:
        # Sorts last (oldest): the third range fails, after two have been read.
        oldest = await make_invoice(s, api.tenant_id, created_at=utcnow() - timedelta(days=30))
    await drop_stored_wire(api, oldest.id)
    idle = checked_out(api)

    received: list[bytes] = []
    with pytest.raises(DBAPIError, match="no stored wire bytes"):
        async with api.db.shared_snapshot() as snapshot:
            batches = stream_projected_ranges(
                snapshot, api.tenant_id, InvoiceQuery(), InvoiceSort(), invoice_wire_column, batch_size=4, range_rows=4
            )
            async for batch in batches:
                received += batch

    assert len(received) == 8
    assert checked_out(api) == idle


async def test_no_matching_invoice_gives_no_batch(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 3)

    assert await ranges(api, InvoiceQuery(currency="JPY"), InvoiceSort()) == []


async def test_a_helper_opened_after_a_commit_still_reads_the_leaders_snapshot(api: Api) -> None:
    require_postgresql(api)
    await make_invoices_with_ties(api, 3)
    count = select(func.count()).select_from(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id)

    async with api.db.shared_snapshot() as snapshot:
        async with api.db.write() as s:
            await make_invoices_bulk(s, api.tenant_id, 2)
        helper = await snapshot.helper()
        seen_by_helper = (await helper.execute(count)).scalar_one()
        seen_by_leader = (await snapshot.leader.execute(count)).scalar_one()
    async with api.db.read() as s:
        seen_now = (await s.execute(count)).scalar_one()

    assert (seen_by_helper, seen_by_leader, seen_now) == (3, 3, 5)


async def test_a_caller_cancelling_stream_invoices_gives_every_connection_back(api: Api) -> None:
    require_postgresql(api)
    # More than HTTP/2's flow-control window holds: the server is still sending when cancelled.
    await make_invoices_with_ties(api, 600)
    idle = checked_out(api)

    call = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(batch_size=1), metadata=api.metadata)
    first = await anext(aiter(call))
    assert checked_out(api) == idle + 2  # the leader and the helper reading the one range
    call.cancel()
    for _ in range(200):  # the server closes the stream after the cancellation reaches it
        if checked_out(api) == idle:
            break
        await asyncio.sleep(0.01)

    assert len(first.invoices) == 1
    assert checked_out(api) == idle
