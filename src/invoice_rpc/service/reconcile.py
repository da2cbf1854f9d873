"""ReconcileInvoice (seed 001, "mark paid"): record a full or partial payment, idempotently.

The invoice row is locked for the read-modify-write (FOR UPDATE on PostgreSQL; SQLite write
transactions are serialized anyway), so two payments never both spend what remains. A payment
is known by its key per invoice: a key already recorded changes nothing, so retries are safe.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import InvoiceStatus
from invoice_rpc.domain.errors import FailedPrecondition, NotFound, ViolationCollector
from invoice_rpc.service.audit import changed_fields, record_audit
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_records import InvoiceRecord, get_invoice_record
from invoice_rpc.storage import models as m

FULL_PAYMENT = "full"
UNPAYABLE_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment to record. Exactly one of invoice_ref / invoice_number names the invoice;
    amount_minor None pays what remains; payment_id None derives one from time and amount."""

    paid_at: datetime | None
    invoice_ref: str | None = None
    invoice_number: str | None = None
    amount_minor: int | None = None
    payment_id: str | None = None


def payment_key(paid_at: datetime, amount_minor: int | None, payment_id: str | None) -> str:
    """The caller's payment id, else "<paid_at ISO>/<amount or full>": an identical retry of
    a request without an id maps to the same key."""
    if payment_id:
        return payment_id
    return f"{paid_at.isoformat()}/{FULL_PAYMENT if amount_minor is None else amount_minor}"


def _validate(payment: Payment) -> uuid.UUID | None:
    violations = ViolationCollector()
    invoice_id = None
    if bool(payment.invoice_ref) == bool(payment.invoice_number):
        violations.add("invoice_ref", "exactly one of invoice_ref or invoice_number is required")
    elif payment.invoice_ref:
        try:
            invoice_id = uuid.UUID(payment.invoice_ref)
        except ValueError:
            violations.add("invoice_ref", f"{payment.invoice_ref!r} is not a UUID")
    if payment.paid_at is None:
        violations.add("paid_time", "is required")
    if payment.amount_minor is not None and payment.amount_minor <= 0:
        violations.add("amount_minor", "must be at least 1")
    violations.raise_if_any()
    return invoice_id


def _state(invoice: m.Invoice) -> dict[str, Any]:
    return {
        "status": invoice.status,
        "amount_paid_minor": invoice.amount_paid_minor,
        "amount_remaining_minor": invoice.amount_remaining_minor,
        "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
    }


async def reconcile_invoice(session: AsyncSession, caller: Caller, payment: Payment) -> InvoiceRecord:
    """Record the payment and return the invoice.

    InvalidArgument for a bad request; NotFound if the tenant has no such invoice;
    FailedPrecondition for a draft or cancelled invoice or an amount above what remains.
    A payment key already recorded for the invoice, or a full payment of a paid invoice,
    changes nothing (no payment row, no audit event) and returns the invoice as it is.
    """
    invoice_id = _validate(payment)
    assert payment.paid_at is not None
    stmt = select(m.Invoice).where(m.Invoice.tenant_id == caller.tenant_id).with_for_update()
    if invoice_id is not None:
        stmt = stmt.where(m.Invoice.id == invoice_id)
        name = f"invoice {payment.invoice_ref}"
    else:
        stmt = stmt.where(m.Invoice.invoice_number == payment.invoice_number)
        name = f"invoice {payment.invoice_number}"
    invoice = (await session.execute(stmt)).scalar_one_or_none()
    if invoice is None:
        raise NotFound(f"{name} not found")

    key = payment_key(payment.paid_at, payment.amount_minor, payment.payment_id)
    already = await session.scalar(
        select(m.Payment.id).where(m.Payment.invoice_id == invoice.id, m.Payment.payment_key == key)
    )
    full_payment_of_paid = payment.amount_minor is None and invoice.status == InvoiceStatus.PAID
    if already is None and not full_payment_of_paid:
        _apply(session, caller, invoice, payment.paid_at, payment.amount_minor, key, name)
    record = await get_invoice_record(session, caller.tenant_id, invoice.id)
    assert record is not None
    return record


def _apply(
    session: AsyncSession,
    caller: Caller,
    invoice: m.Invoice,
    paid_at: datetime,
    amount_minor: int | None,
    key: str,
    name: str,
) -> None:
    if invoice.status in UNPAYABLE_STATUSES:
        raise FailedPrecondition(f"{name} is {invoice.status} and cannot be paid")
    remaining = invoice.amount_remaining_minor
    amount = remaining if amount_minor is None else amount_minor
    if amount > remaining:
        raise FailedPrecondition(f"{name} has {remaining} left to pay, less than the amount {amount}")
    before = _state(invoice)
    session.add(
        m.Payment(
            id=uuid.uuid4(),
            tenant_id=caller.tenant_id,
            invoice_id=invoice.id,
            payment_key=key,
            amount_minor=amount,
            paid_at=paid_at,
        )
    )
    invoice.amount_paid_minor += amount
    invoice.amount_remaining_minor -= amount
    invoice.paid_at = paid_at
    if invoice.amount_remaining_minor == 0:
        invoice.status = InvoiceStatus.PAID.value
    changed_before, changed_after = changed_fields(before, _state(invoice))
    record_audit(
        session,
        caller,
        invoice.id,
        "invoice.payment_recorded",
        changed_before,
        {**changed_after, "payment_id": key, "amount_minor": amount},
    )
