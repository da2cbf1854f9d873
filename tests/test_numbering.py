"""Invoice numbers: INV-<year>-NNNN per tenant and issue year, sequential and gapless, also under
concurrent writers on several connections; a failed create gives its number back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.rpc.server import BuiltServer
from invoice_rpc.storage import models as m
from tests.conftest import Api

CONCURRENT_CREATES = 24


def invoice(year: int | None = None, **fields: object) -> pb.Invoice:
    issue_date = Date(year=year, month=6, day=1) if year else None
    return pb.Invoice(
        billing_type=pb.BILLING_TYPE_ONE_TIME,
        currency_code="USD",
        line_items=[pb.LineItem(name="Setup", quantity="1", unit_price_minor=5000)],
        issue_date=issue_date,
        **fields,  # type: ignore[arg-type]
    )


async def create(api: Api, body: pb.Invoice, stub: invoice_service_pb2_grpc.InvoiceServiceStub | None = None) -> str:
    reply = await (stub or api.invoices).CreateInvoice(isvc.CreateInvoiceRequest(invoice=body), metadata=api.metadata)
    return reply.invoice_number


@pytest.fixture
async def stubs(server: BuiltServer) -> AsyncIterator[list[invoice_service_pb2_grpc.InvoiceServiceStub]]:
    """Stubs over three separate channels (separate HTTP/2 connections) to the same server."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(3)]
    yield [invoice_service_pb2_grpc.InvoiceServiceStub(ch) for ch in channels]
    for ch in channels:
        await ch.close()


async def test_concurrent_creates_get_gapless_unique_numbers(
    api: Api, stubs: list[invoice_service_pb2_grpc.InvoiceServiceStub]
) -> None:
    numbers = await asyncio.gather(
        *(create(api, invoice(2026), stubs[i % len(stubs)]) for i in range(CONCURRENT_CREATES))
    )
    assert sorted(numbers) == [f"INV-2026-{n:04d}" for n in range(1, CONCURRENT_CREATES + 1)]


async def test_a_create_failing_after_validation_consumes_no_number(api: Api) -> None:
    assert await create(api, invoice(2026)) == "INV-2026-0001"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(api, invoice(2026, payment_means_ids=["pm_unknown"]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "pm_unknown" in (caught.value.details() or "")
    assert await create(api, invoice(2026)) == "INV-2026-0002"


async def test_tenants_have_independent_series(api: Api, other_api: Api) -> None:
    assert await create(api, invoice(2026)) == "INV-2026-0001"
    assert await create(api, invoice(2026)) == "INV-2026-0002"
    assert await create(other_api, invoice(2026)) == "INV-2026-0001"


async def test_each_issue_year_has_its_own_series(api: Api) -> None:
    assert await create(api, invoice(2026)) == "INV-2026-0001"
    assert await create(api, invoice(2025)) == "INV-2025-0001"
    assert await create(api, invoice(2026)) == "INV-2026-0002"


async def test_default_issue_date_numbers_in_the_current_year(api: Api) -> None:
    assert await create(api, invoice()) == f"INV-{datetime.now(UTC).year}-0001"


async def test_numbers_past_9999_grow_wider(api: Api) -> None:
    async with api.db.write() as s:
        s.add(m.InvoiceNumberSequence(tenant_id=api.tenant_id, year=2026, last_value=9999))
    assert await create(api, invoice(2026)) == "INV-2026-10000"
    assert await create(api, invoice(2026)) == "INV-2026-10001"
