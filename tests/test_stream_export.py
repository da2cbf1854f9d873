"""StreamInvoices and ExportInvoices: everything matching, in order, in bounded pieces; a cancelled
export gives its transaction and connection back."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import text

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.service.invoice_export import CHUNK_BYTES
from tests.conftest import Api
from tests.factories import line, make_invoice, make_invoices_bulk, utc, violated_fields


async def export(api: Api, **request: Any) -> tuple[list[tuple[str, str]], list[str], bytes]:
    """(initial metadata, content types of the chunks, the whole file)."""
    call = api.invoices.ExportInvoices(isvc.ExportInvoicesRequest(**request), metadata=api.metadata)
    chunks = [chunk async for chunk in call]
    metadata = [(k, v) for k, v in await call.initial_metadata()]
    return metadata, [c.content_type for c in chunks], b"".join(c.data for c in chunks)


async def make_three_currency_invoices(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoice(
            s,
            api.tenant_id,
            currency="USD",
            created_at=utc(2026, 1, 1),
            description='He said "hi", then left',
            lines=[line("Pro plan", "1", 9900), line("Seats", "3", 1000, tax_minor=570)],
        )
        await make_invoice(s, api.tenant_id, currency="JPY", created_at=utc(2026, 1, 2), sub_total_minor=500)
        await make_invoice(
            s,
            api.tenant_id,
            currency="KWD",
            created_at=utc(2026, 1, 3),
            billing_type=BillingType.ONE_TIME,
            status=InvoiceStatus.PAID,
            lines=[line("Consulting", "1", 1234)],
        )


async def test_stream_sends_every_invoice_in_order_in_batches(api: Api) -> None:
    async with api.db.write() as s:
        ids = await make_invoices_bulk(s, api.tenant_id, 25)

    call = api.invoices.StreamInvoices(
        isvc.StreamInvoicesRequest(batch_size=10, sort_direction=isvc.SORT_DIRECTION_ASC), metadata=api.metadata
    )
    batches = [list(reply.invoices) async for reply in call]

    assert [len(b) for b in batches] == [10, 10, 5]
    assert [i.invoice_ref for b in batches for i in b] == [str(i) for i in ids]


async def test_stream_full_view_carries_line_items(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, lines=[line("A"), line("B")])

    call = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(view=isvc.INVOICE_VIEW_FULL), metadata=api.metadata)
    [reply] = [reply async for reply in call]

    assert [li.name for li in reply.invoices[0].line_items] == ["A", "B"]


async def test_stream_applies_the_filter_and_tenancy(api: Api, other_api: Api) -> None:
    async with api.db.write() as s:
        paid = await make_invoice(s, api.tenant_id, status=InvoiceStatus.PAID)
        await make_invoice(s, api.tenant_id, status=InvoiceStatus.SENT)
        await make_invoice(s, other_api.tenant_id, status=InvoiceStatus.PAID)

    call = api.invoices.StreamInvoices(
        isvc.StreamInvoicesRequest(filter=isvc.InvoiceFilter(statuses=[pb.INVOICE_STATUS_PAID])),
        metadata=api.metadata,
    )
    refs = [i.invoice_ref async for reply in call for i in reply.invoices]

    assert refs == [str(paid.id)]


@pytest.mark.parametrize("batch_size", [1001, -1])
async def test_stream_batch_size_out_of_range_is_invalid(api: Api, batch_size: int) -> None:
    call = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(batch_size=batch_size), metadata=api.metadata)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [reply async for reply in call]

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["batch_size"]


async def test_csv_export_has_one_row_per_line_item_with_major_unit_amounts(api: Api) -> None:
    await make_three_currency_invoices(api)

    metadata, content_types, body = await export(
        api, format=isvc.EXPORT_FORMAT_CSV, sort_direction=isvc.SORT_DIRECTION_ASC
    )
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))

    assert content_types[0] == "text/csv; charset=utf-8"
    disposition = dict(metadata)["content-disposition"]
    assert re.fullmatch(r'attachment; filename="invoices-\d{8}-\d{6}\.csv"', disposition)
    assert [(r["currency"], r["total"], r["line_name"], r["line_total"]) for r in rows] == [
        ("USD", "134.70", "Pro plan", "99.00"),
        ("USD", "134.70", "Seats", "35.70"),
        ("JPY", "500", "", ""),
        ("KWD", "1.234", "Consulting", "1.234"),
    ]
    assert rows[0]["description"] == 'He said "hi", then left'
    assert body.startswith(b"invoice_ref,invoice_number,") and b"\r\n" in body


async def test_csv_export_without_line_items_has_one_row_per_invoice(api: Api) -> None:
    await make_three_currency_invoices(api)

    _, _, body = await export(api, format=isvc.EXPORT_FORMAT_CSV, include_line_items=False)
    reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    rows = list(reader)

    assert [r["currency"] for r in rows] == ["KWD", "JPY", "USD"]
    assert reader.fieldnames is not None and not any(f.startswith("line_") for f in reader.fieldnames)


async def test_json_export_is_one_array_with_decimal_string_amounts(api: Api) -> None:
    await make_three_currency_invoices(api)

    metadata, content_types, body = await export(
        api, format=isvc.EXPORT_FORMAT_JSON, sort_direction=isvc.SORT_DIRECTION_ASC
    )
    invoices = json.loads(body)

    assert content_types[0] == "application/json"
    assert dict(metadata)["content-disposition"].endswith('.json"')
    assert [(i["currency"], i["total"], i["total_tax"]) for i in invoices] == [
        ("USD", "134.70", "5.70"),
        ("JPY", "500", "0"),
        ("KWD", "1.234", "0.000"),
    ]
    assert [[li["name"] for li in i["line_items"]] for i in invoices] == [["Pro plan", "Seats"], [], ["Consulting"]]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", invoices[1]["issue_date"])
    assert invoices[0]["created_at"] == "2026-01-01T00:00:00Z"
    assert invoices[2]["status"] == "paid" and invoices[2]["billing_type"] == "one-time"


async def test_json_export_of_nothing_is_an_empty_array(api: Api) -> None:
    _, content_types, body = await export(api, format=isvc.EXPORT_FORMAT_JSON)

    assert content_types == ["application/json"]
    assert json.loads(body) == []


async def test_export_without_format_is_invalid_before_anything_is_sent(api: Api) -> None:
    call = api.invoices.ExportInvoices(
        isvc.ExportInvoicesRequest(filter=isvc.InvoiceFilter(currency_code="usd")), metadata=api.metadata
    )
    received = []

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for chunk in call:
            received.append(chunk)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(caught.value)) == ["filter.currency_code", "format"]
    assert received == []
    assert "content-disposition" not in dict(await call.initial_metadata())


async def test_large_export_arrives_in_chunks_of_about_64_kib(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 2000)

    request = isvc.ExportInvoicesRequest(format=isvc.EXPORT_FORMAT_JSON)
    chunks = [chunk async for chunk in api.invoices.ExportInvoices(request, metadata=api.metadata)]

    assert len(chunks) > 5
    assert all(CHUNK_BYTES <= len(c.data) < 2 * CHUNK_BYTES for c in chunks[:-1])
    assert [bool(c.content_type) for c in chunks] == [True] + [False] * (len(chunks) - 1)
    assert len(json.loads(b"".join(c.data for c in chunks))) == 2000


async def _eventually(condition: object, seconds: float = 2.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await condition():  # type: ignore[operator]
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def test_cancelled_export_releases_its_transaction_and_connection(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 3000)
    pool = api.db.read_engine.pool
    checked_out_before = pool.checkedout()  # type: ignore[attr-defined]

    call = api.invoices.ExportInvoices(isvc.ExportInvoicesRequest(format=isvc.EXPORT_FORMAT_CSV), metadata=api.metadata)
    first = await call.read()
    assert first is not grpc.aio.EOF and len(first.data) >= CHUNK_BYTES
    assert pool.checkedout() == checked_out_before + 1  # type: ignore[attr-defined]  # the export's own
    call.cancel()

    async def pool_is_back() -> bool:
        return pool.checkedout() == checked_out_before  # type: ignore[attr-defined,no-any-return]

    assert await _eventually(pool_is_back), f"{pool.checkedout()} checked out, {checked_out_before} before"  # type: ignore[attr-defined]
    if api.db.dialect == "postgresql":

        async def no_idle_transaction() -> bool:
            async with api.db.read() as s:
                stuck = await s.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                )
            return bool(stuck == 0)

        assert await _eventually(no_idle_transaction)
