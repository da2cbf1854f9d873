"""BackfillInvoices: orders without an invoice become paid invoices, oldest first, each exactly
once, also when several backfills run at the same time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import make_customer, make_data_source, make_plan

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


async def make_orders(api: Api, count: int, *, start: datetime = START, **overrides: Any) -> list[m.Order]:
    """`count` orders of one customer, an hour apart from `start`."""
    async with api.db.write() as s:
        source = await make_data_source(s, api.tenant_id)
        customer = await make_customer(s, api.tenant_id, data_source=source)
        orders = [
            m.Order(
                **(
                    {
                        "id": uuid.uuid4(),
                        "tenant_id": api.tenant_id,
                        "data_source_id": source.id,
                        "external_id": f"ord_{uuid.uuid4().hex[:8]}",
                        "customer_id": customer.id,
                        "billing_type": "subscription",
                        "ordered_at": start + timedelta(hours=i),
                        "amount_minor": 9900 + i,
                        "currency": "USD",
                        "fingerprint": "test",
                    }
                    | overrides
                )
            )
            for i in range(count)
        ]
        s.add_all(orders)
    return orders


async def backfill(api: Api, limit: int = 0) -> isvc.BackfillInvoicesResponse:
    return await api.invoices.BackfillInvoices(isvc.BackfillInvoicesRequest(limit=limit), metadata=api.metadata)


async def invoiced_orders(api: Api) -> list[tuple[uuid.UUID | None, str]]:
    async with api.db.read() as s:
        rows = await s.execute(
            select(m.Invoice.order_id, m.Invoice.invoice_number)
            .where(m.Invoice.tenant_id == api.tenant_id)
            .order_by(m.Invoice.invoice_number)
        )
        return [(order_id, number) for order_id, number in rows]


async def test_limit_is_respected_and_the_next_call_continues(api: Api) -> None:
    orders = await make_orders(api, 5)
    first = await backfill(api, limit=2)
    second = await backfill(api, limit=2)
    third = await backfill(api, limit=2)
    done = await backfill(api, limit=2)
    assert (first.count, second.count, third.count, done.count) == (2, 2, 1, 0)
    assert [*first.invoice_numbers, *second.invoice_numbers, *third.invoice_numbers] == [
        f"INV-2026-{n:04d}" for n in range(1, 6)
    ]
    assert list(done.invoice_numbers) == []
    # Oldest order first: numbers follow the order dates.
    assert [order_id for order_id, _ in await invoiced_orders(api)] == [o.id for o in orders]


async def test_default_limit_is_fifty(api: Api) -> None:
    await make_orders(api, 52)
    assert (await backfill(api)).count == 50
    assert (await backfill(api)).count == 2


@pytest.mark.parametrize("limit", [-1, 201])
async def test_limit_outside_one_to_two_hundred_is_invalid(api: Api, limit: int) -> None:
    await make_orders(api, 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await backfill(api, limit=limit)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await invoiced_orders(api) == []


async def test_backfilled_invoice_is_a_paid_copy_of_the_order(api: Api) -> None:
    ordered_at = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    async with api.db.write() as s:
        plan = await make_plan(s, api.tenant_id, name="Pro", external_id="plan_pro")
    [order] = await make_orders(
        api, 1, start=ordered_at, plan_id=plan.id, amount_minor=1234, currency="KWD", billing_type="token_pack"
    )
    [number] = (await backfill(api)).invoice_numbers
    invoice = await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_number=number), metadata=api.metadata)

    assert number == "INV-2025-0001"  # numbered by the order's year
    assert invoice.order_id == order.external_id
    assert invoice.billing_type == pb.BILLING_TYPE_TOKEN_PACK
    assert invoice.status == pb.INVOICE_STATUS_PAID
    assert invoice.paid_time.ToDatetime(tzinfo=UTC) == ordered_at
    assert (invoice.issue_date.year, invoice.issue_date.month, invoice.issue_date.day) == (2025, 12, 31)
    assert invoice.currency_code == "KWD"
    assert invoice.plan_id == "plan_pro"
    assert invoice.customer.customer_ref == str(order.customer_id)
    assert (invoice.total_minor, invoice.amount_paid_minor, invoice.amount_remaining_minor) == (1234, 1234, 0)
    [line] = invoice.line_items
    assert (line.name, line.quantity, line.unit_price_minor, line.total_minor) == ("Pro", "1", 1234, 1234)


async def test_line_is_named_by_description_else_billing_type(api: Api) -> None:
    await make_orders(api, 1, description="Annual token pack")
    await make_orders(api, 1, start=START + timedelta(days=1), billing_type="refund")
    numbers = (await backfill(api)).invoice_numbers
    lines = [
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_number=n), metadata=api.metadata) for n in numbers
    ]
    assert [i.line_items[0].name for i in lines] == ["Annual token pack", "refund"]
    assert lines[1].document_type_code == "381"


async def test_orders_of_another_tenant_are_not_backfilled(api: Api, other_api: Api) -> None:
    await make_orders(other_api, 3)
    assert (await backfill(api)).count == 0
    assert await invoiced_orders(other_api) == []


async def test_each_year_numbers_its_own_invoices(api: Api) -> None:
    await make_orders(api, 2, start=datetime(2025, 12, 31, 22, 30, tzinfo=UTC))  # 22:30 and 23:30
    await make_orders(api, 1, start=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    assert list((await backfill(api)).invoice_numbers) == ["INV-2025-0001", "INV-2025-0002", "INV-2026-0001"]


async def test_concurrent_backfills_invoice_every_order_exactly_once(api: Api) -> None:
    orders = await make_orders(api, 30)
    created: list[str] = []
    while True:
        # Four racing backfills per round, each taking at most 5: several rounds of real contention.
        replies = await asyncio.gather(*(backfill(api, limit=5) for _ in range(4)))
        if all(r.count == 0 for r in replies):
            break
        for reply in replies:
            created.extend(reply.invoice_numbers)
    assert sorted(created) == [f"INV-2026-{n:04d}" for n in range(1, 31)]
    invoiced = await invoiced_orders(api)
    assert sorted(str(order_id) for order_id, _ in invoiced) == sorted(str(o.id) for o in orders)
    async with api.db.read() as s:
        per_order = await s.execute(
            select(m.Invoice.order_id, func.count())
            .where(m.Invoice.tenant_id == api.tenant_id)
            .group_by(m.Invoice.order_id)
            .having(func.count() > 1)
        )
        assert per_order.all() == []


async def test_nothing_left_returns_zero(api: Api) -> None:
    await make_orders(api, 1)
    await backfill(api)
    reply = await backfill(api)
    assert (reply.count, list(reply.invoice_numbers)) == (0, [])
