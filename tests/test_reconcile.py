"""ReconcileInvoice (mark paid): partial and full payments with exact amounts, idempotent
retries, and the invoices that cannot be paid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import select

from invoice_rpc.storage import models as m
from tests.conftest import Api

MARCH_1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MARCH_5 = datetime(2026, 3, 5, 16, 30, tzinfo=UTC)


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def sent_invoice(api: Api, *, status: int = pb.INVOICE_STATUS_SENT, unit_price_minor: int = 10000) -> pb.Invoice:
    return await api.invoices.CreateInvoice(
        isvc.CreateInvoiceRequest(
            invoice=pb.Invoice(
                billing_type=pb.BILLING_TYPE_SUBSCRIPTION,
                currency_code="KWD",
                status=status,  # type: ignore[arg-type]
                line_items=[pb.LineItem(name="Pro", quantity="1", unit_price_minor=unit_price_minor)],
            )
        ),
        metadata=api.metadata,
    )


async def pay(
    api: Api, invoice: pb.Invoice, paid_at: datetime, amount_minor: int | None = None, **key: str
) -> pb.Invoice:
    request = isvc.ReconcileInvoiceRequest(paid_time=ts(paid_at), **key)
    if not key:
        request.invoice_ref = invoice.invoice_ref
    if amount_minor is not None:
        request.amount_minor = amount_minor
    return await api.invoices.ReconcileInvoice(request, metadata=api.metadata)


async def pay_error(
    api: Api, invoice: pb.Invoice, paid_at: datetime, amount_minor: int | None = None
) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await pay(api, invoice, paid_at, amount_minor)
    return caught.value.code()


async def payments_and_events(api: Api, invoice: pb.Invoice) -> tuple[list[int], list[str]]:
    invoice_id = uuid.UUID(invoice.invoice_ref)
    async with api.db.read() as s:
        amounts = (
            await s.scalars(
                select(m.Payment.amount_minor).where(m.Payment.invoice_id == invoice_id).order_by(m.Payment.paid_at)
            )
        ).all()
        actions = (
            await s.scalars(
                select(m.AuditEvent.action)
                .where(m.AuditEvent.invoice_id == invoice_id)
                .order_by(m.AuditEvent.created_at, m.AuditEvent.id)
            )
        ).all()
    return list(amounts), list(actions)


async def test_partial_then_full_payment(api: Api) -> None:
    invoice = await sent_invoice(api)

    partial = await pay(api, invoice, MARCH_1, 3001)
    assert (partial.amount_paid_minor, partial.amount_remaining_minor) == (3001, 6999)
    assert partial.status == pb.INVOICE_STATUS_SENT
    assert partial.paid_time.ToDatetime(tzinfo=UTC) == MARCH_1

    full = await pay(api, invoice, MARCH_5)
    assert (full.amount_paid_minor, full.amount_remaining_minor) == (10000, 0)
    assert full.status == pb.INVOICE_STATUS_PAID
    assert full.paid_time.ToDatetime(tzinfo=UTC) == MARCH_5
    assert await payments_and_events(api, invoice) == (
        [3001, 6999],
        ["invoice.created", "invoice.payment_recorded", "invoice.payment_recorded"],
    )


async def test_audit_event_holds_the_changed_fields_before_and_after(api: Api) -> None:
    invoice = await sent_invoice(api)
    await pay(api, invoice, MARCH_1)
    async with api.db.read() as s:
        before, after = (
            await s.execute(
                select(m.AuditEvent.before, m.AuditEvent.after).where(
                    m.AuditEvent.invoice_id == uuid.UUID(invoice.invoice_ref),
                    m.AuditEvent.action == "invoice.payment_recorded",
                )
            )
        ).one()
    assert before == {"status": "sent", "amount_paid_minor": 0, "amount_remaining_minor": 10000, "paid_at": None}
    assert after["status"] == "paid"
    assert (after["amount_paid_minor"], after["amount_remaining_minor"], after["amount_minor"]) == (10000, 0, 10000)
    assert after["paid_at"] == MARCH_1.isoformat()


async def test_identical_retry_changes_nothing(api: Api) -> None:
    invoice = await sent_invoice(api)
    first = await pay(api, invoice, MARCH_1, 2500)
    retry = await pay(api, invoice, MARCH_1, 2500)
    assert retry == first
    assert await payments_and_events(api, invoice) == ([2500], ["invoice.created", "invoice.payment_recorded"])


async def test_payment_ids_tell_equal_payments_apart(api: Api) -> None:
    invoice = await sent_invoice(api)
    for payment_id in ("wire-1", "wire-2", "wire-1"):
        request = isvc.ReconcileInvoiceRequest(
            invoice_ref=invoice.invoice_ref, paid_time=ts(MARCH_1), amount_minor=1000, payment_id=payment_id
        )
        paid = await api.invoices.ReconcileInvoice(request, metadata=api.metadata)
    assert paid.amount_paid_minor == 2000
    assert (await payments_and_events(api, invoice))[0] == [1000, 1000]


async def test_full_payment_of_a_paid_invoice_changes_nothing(api: Api) -> None:
    invoice = await sent_invoice(api)
    paid = await pay(api, invoice, MARCH_1)
    again = await pay(api, invoice, MARCH_5)
    assert again == paid
    assert again.paid_time.ToDatetime(tzinfo=UTC) == MARCH_1
    assert await payments_and_events(api, invoice) == ([10000], ["invoice.created", "invoice.payment_recorded"])


async def test_reconcile_by_invoice_number(api: Api) -> None:
    invoice = await sent_invoice(api)
    paid = await pay(api, invoice, MARCH_1, invoice_number=invoice.invoice_number)
    assert paid.invoice_ref == invoice.invoice_ref
    assert paid.status == pb.INVOICE_STATUS_PAID


async def test_overpayment_is_refused_and_writes_nothing(api: Api) -> None:
    invoice = await sent_invoice(api)
    await pay(api, invoice, MARCH_1, 4000)
    assert await pay_error(api, invoice, MARCH_5, 6001) == grpc.StatusCode.FAILED_PRECONDITION
    assert await payments_and_events(api, invoice) == ([4000], ["invoice.created", "invoice.payment_recorded"])


@pytest.mark.parametrize("amount_minor", [0, -5])
async def test_amount_below_one_is_invalid(api: Api, amount_minor: int) -> None:
    invoice = await sent_invoice(api)
    assert await pay_error(api, invoice, MARCH_1, amount_minor) == grpc.StatusCode.INVALID_ARGUMENT


async def test_draft_invoice_cannot_be_paid(api: Api) -> None:
    invoice = await sent_invoice(api, status=pb.INVOICE_STATUS_DRAFT)
    assert await pay_error(api, invoice, MARCH_1) == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancelled_invoice_cannot_be_paid(api: Api) -> None:
    invoice = await sent_invoice(api)
    async with api.db.write() as s:
        row = await s.get(m.Invoice, uuid.UUID(invoice.invoice_ref))
        assert row is not None
        row.status = "cancelled"
    assert await pay_error(api, invoice, MARCH_1) == grpc.StatusCode.FAILED_PRECONDITION


async def test_another_tenants_invoice_is_not_found(api: Api, other_api: Api) -> None:
    invoice = await sent_invoice(other_api)
    assert await pay_error(api, invoice, MARCH_1) == grpc.StatusCode.NOT_FOUND
    assert (await payments_and_events(other_api, invoice))[0] == []


async def test_missing_key_and_paid_time_are_reported_together(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ReconcileInvoice(isvc.ReconcileInvoiceRequest(), metadata=api.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invoice_ref" in (caught.value.details() or "") and "paid_time" in (caught.value.details() or "")
