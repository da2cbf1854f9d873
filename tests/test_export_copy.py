"""The PostgreSQL CSV export made by COPY is byte for byte the export written from records: same
columns, same rendering of money, dates, times and empty values, same quoting, CRLF rows."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from invoice_rpc.domain.enums import BillingType, InvoiceStatus, SortDirection, SortField
from invoice_rpc.service.invoice_export import (
    CHUNK_BYTES,
    ExportFormat,
    postgresql_csv_chunks,
    record_chunks,
)
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort
from tests.conftest import Api
from tests.factories import line, make_customer, make_invoice, make_invoices_bulk, utc


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


async def _both(api: Api, query: InvoiceQuery, sort: InvoiceSort, with_line_items: bool) -> tuple[bytes, bytes]:
    async with api.db.read() as session:
        copied = [
            chunk
            async for chunk in postgresql_csv_chunks(
                session, api.tenant_id, query, sort, with_line_items=with_line_items
            )
        ]
    async with api.db.read() as session:
        written = [
            chunk
            async for chunk in record_chunks(
                session, api.tenant_id, query, sort, ExportFormat.CSV, with_line_items=with_line_items
            )
        ]
    return b"".join(copied), b"".join(written)


async def _tricky_invoices(api: Api) -> None:
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id, name='Müller, "Big" & Co', legal_name="")
        await make_invoice(
            s,
            api.tenant_id,
            customer=customer,
            currency="USD",
            created_at=utc(2026, 1, 1),
            description='Line one,\nline "two"\r\nand three',
            subscription_id="",
            external_id=None,
            lines=[line("Pro, yearly", "1.5", 9900, tax_minor=570), line('Seat "extra"', "3", 1000)],
        )
        await make_invoice(
            s,
            api.tenant_id,
            currency="JPY",
            sub_total_minor=500,
            created_at=utc(2026, 1, 2).replace(microsecond=123456),
            paid_at=utc(2026, 1, 3, 4, 5, 6),
            status=InvoiceStatus.PAID,
        )
        await make_invoice(
            s,
            api.tenant_id,
            currency="KWD",
            billing_type=BillingType.REFUND,
            sub_total_minor=-1234,
            created_at=utc(2026, 1, 3),
            description="",
            lines=[line("Refund", "1", -1234)],
        )
        await make_invoice(s, api.tenant_id, currency="CLF", sub_total_minor=7, created_at=utc(2026, 1, 4))


@pytest.mark.parametrize("with_line_items", [True, False])
async def test_copy_export_equals_the_record_export(api: Api, with_line_items: bool) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    await _tricky_invoices(api)

    copied, written = await _both(api, InvoiceQuery(), InvoiceSort(), with_line_items)

    assert copied == written
    assert len(_rows(copied)) == (6 if with_line_items else 5)  # header, one row per line or invoice


async def test_copy_export_keeps_filter_and_order(api: Api, other_api: Api) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    await _tricky_invoices(api)
    async with other_api.db.write() as s:
        await make_invoice(s, other_api.tenant_id)
    query = InvoiceQuery(currency="USD")

    copied, written = await _both(api, query, InvoiceSort(SortField.TOTAL_AMOUNT, SortDirection.ASC), True)

    assert copied == written
    assert [row[-15 + 2] for row in _rows(copied)[1:]] == ["Pro, yearly", 'Seat "extra"']  # the USD invoice's lines


async def test_copy_export_streams_in_chunks_of_about_64_kib(api: Api) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 2000, description=f"bulk {uuid.uuid4()}")

    async with api.db.read() as session:
        chunks = [chunk async for chunk in postgresql_csv_chunks(session, api.tenant_id, InvoiceQuery(), InvoiceSort())]

    assert len(chunks) > 3
    assert all(CHUNK_BYTES <= len(c) < CHUNK_BYTES + 4096 for c in chunks[:-1])
    assert b"".join(chunks).count(b"\r\n") == 2001
