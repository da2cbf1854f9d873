"""GenerateMarketplaceInvoice: a marketplace tenant's unbilled usage in a period becomes one
sent invoice per currency, each usage record billed once."""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import select

from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from tests.conftest import Api, new_api

MARCH = (Date(year=2026, month=3, day=1), Date(year=2026, month=3, day=31))


@pytest.fixture
async def marketplace_api(db: Database, channel: grpc.aio.Channel) -> Api:
    return await new_api(db, channel, marketplace_customer_id="aws-cust-1")


async def add_usage(
    api: Api, dimension: str, quantity: str, unit_price_minor: int, currency: str, used_at: datetime
) -> uuid.UUID:
    usage_id = uuid.uuid4()
    async with api.db.write() as s:
        s.add(
            m.UsageRecord(
                id=usage_id,
                tenant_id=api.tenant_id,
                external_id=f"use_{usage_id.hex[:10]}",
                dimension=dimension,
                quantity=quantity,
                unit_price_minor=unit_price_minor,
                currency=currency,
                used_at=used_at,
                fingerprint="test",
            )
        )
    return usage_id


async def generate(api: Api, start: Date | None = None, end: Date | None = None) -> list[pb.Invoice]:
    request = isvc.GenerateMarketplaceInvoiceRequest(period_start=start, period_end=end)
    reply = await api.invoices.GenerateMarketplaceInvoice(request, metadata=api.metadata)
    return list(reply.invoices)


async def generate_error(api: Api, start: Date | None = None, end: Date | None = None) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(api, start, end)
    return caught.value.code()


async def billed_to(api: Api, usage_id: uuid.UUID) -> uuid.UUID | None:
    async with api.db.read() as s:
        return await s.scalar(select(m.UsageRecord.invoice_id).where(m.UsageRecord.id == usage_id))


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


async def test_tenant_without_marketplace_customer_id_is_denied(api: Api) -> None:
    await add_usage(api, "api_calls", "10", 2, "USD", at(5))
    assert await generate_error(api, *MARCH) == grpc.StatusCode.PERMISSION_DENIED


async def test_one_sent_invoice_per_currency_with_summed_lines(marketplace_api: Api) -> None:
    api = marketplace_api
    usage = [
        await add_usage(api, "api_calls", "1200", 2, "USD", at(2)),
        await add_usage(api, "api_calls", "800.5", 2, "USD", at(20)),
        await add_usage(api, "api_calls", "100", 3, "USD", at(21)),  # another price: another line
        await add_usage(api, "storage_gb", "2.25", 150, "USD", at(3)),
        await add_usage(api, "api_calls", "10", 1, "JPY", at(4)),
    ]

    jpy, usd = await generate(api, *MARCH)

    today = datetime.now(UTC).date()
    assert [i.currency_code for i in (jpy, usd)] == ["JPY", "USD"]
    assert [i.invoice_number for i in (jpy, usd)] == [f"INV-{today.year}-0001", f"INV-{today.year}-0002"]
    assert [(li.name, li.quantity, li.unit_price_minor, li.sub_total_minor) for li in usd.line_items] == [
        ("api_calls", "2000.5", 2, 4001),
        ("api_calls", "100", 3, 300),
        ("storage_gb", "2.25", 150, 338),  # 337.5 -> 338, half to even
    ]
    assert usd.total_minor == 4001 + 300 + 338
    assert usd.amount_remaining_minor == usd.total_minor
    assert jpy.total_minor == 10
    for invoice in (jpy, usd):
        assert invoice.billing_type == pb.BILLING_TYPE_MARKETPLACE_USAGE
        assert invoice.status == pb.INVOICE_STATUS_SENT
        assert date(invoice.issue_date.year, invoice.issue_date.month, invoice.issue_date.day) == today
        assert invoice.service_period.start_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)
        assert invoice.service_period.end_time.ToDatetime(tzinfo=UTC) == datetime(2026, 4, 1, tzinfo=UTC)
        assert "aws-cust-1" in invoice.description and "2026-03-01" in invoice.description
        assert "2026-03-31" in invoice.description
    assert [await billed_to(api, u) for u in usage] == [uuid.UUID(usd.invoice_ref)] * 4 + [uuid.UUID(jpy.invoice_ref)]


async def test_a_rerun_with_nothing_left_is_failed_precondition(marketplace_api: Api) -> None:
    await add_usage(marketplace_api, "api_calls", "5", 2, "USD", at(10))
    assert len(await generate(marketplace_api, *MARCH)) == 1
    assert await generate_error(marketplace_api, *MARCH) == grpc.StatusCode.FAILED_PRECONDITION


async def test_only_usage_inside_the_period_is_billed(marketplace_api: Api) -> None:
    api = marketplace_api
    first_moment = await add_usage(api, "api_calls", "1", 100, "USD", datetime(2026, 3, 1, tzinfo=UTC))
    last_moment = await add_usage(
        api, "api_calls", "1", 100, "USD", datetime(2026, 4, 1, tzinfo=UTC) - timedelta(microseconds=1)
    )
    next_month = await add_usage(api, "api_calls", "1", 100, "USD", datetime(2026, 4, 1, tzinfo=UTC))
    before = await add_usage(api, "api_calls", "1", 100, "USD", datetime(2026, 3, 1, tzinfo=UTC) - timedelta(seconds=1))

    [invoice] = await generate(api, *MARCH)

    assert invoice.total_minor == 200
    assert await billed_to(api, first_moment) == await billed_to(api, last_moment) == uuid.UUID(invoice.invoice_ref)
    assert await billed_to(api, next_month) is None
    assert await billed_to(api, before) is None


async def test_period_end_defaults_to_the_end_of_the_start_month(marketplace_api: Api) -> None:
    api = marketplace_api
    inside = await add_usage(api, "api_calls", "1", 100, "USD", datetime(2026, 2, 28, 23, tzinfo=UTC))
    outside = await add_usage(api, "api_calls", "1", 100, "USD", datetime(2026, 3, 1, tzinfo=UTC))
    [invoice] = await generate(api, Date(year=2026, month=2, day=10))
    assert invoice.service_period.end_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)
    assert await billed_to(api, inside) == uuid.UUID(invoice.invoice_ref)
    assert await billed_to(api, outside) is None


async def test_default_period_is_the_current_month(marketplace_api: Api) -> None:
    now = datetime.now(UTC)
    await add_usage(marketplace_api, "api_calls", "3", 7, "EUR", now - timedelta(seconds=1))
    [invoice] = await generate(marketplace_api)
    last_day = calendar.monthrange(now.year, now.month)[1]
    start = invoice.service_period.start_time.ToDatetime(tzinfo=UTC)
    end = invoice.service_period.end_time.ToDatetime(tzinfo=UTC)
    assert start == datetime(now.year, now.month, 1, tzinfo=UTC)
    assert end == datetime(now.year, now.month, last_day, tzinfo=UTC) + timedelta(days=1)
    assert invoice.total_minor == 21


async def test_start_after_end_is_invalid(marketplace_api: Api) -> None:
    await add_usage(marketplace_api, "api_calls", "1", 1, "USD", at(10))
    code = await generate_error(marketplace_api, Date(year=2026, month=3, day=10), Date(year=2026, month=3, day=9))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_generation_is_recorded_in_the_audit_trail(marketplace_api: Api) -> None:
    await add_usage(marketplace_api, "api_calls", "1", 1, "USD", at(10))
    [invoice] = await generate(marketplace_api, *MARCH)
    async with marketplace_api.db.read() as s:
        actions = (
            await s.scalars(
                select(m.AuditEvent.action).where(m.AuditEvent.invoice_id == uuid.UUID(invoice.invoice_ref))
            )
        ).all()
    assert list(actions) == ["invoice.generated"]
