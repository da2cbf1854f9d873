"""BackfillInvoices (seed 000): turn the tenant's orders that have no invoice into paid invoices.

Concurrency: on PostgreSQL the candidate orders are locked with FOR UPDATE SKIP LOCKED, so a
concurrent backfill takes other orders instead of waiting for these. Under READ COMMITTED a
locked order may already have been invoiced by a backfill that committed after this statement's
snapshot was taken, so the candidates are filtered once more, under the lock, by a fresh
statement; the unique constraint on invoices.order_id remains the last guard. On SQLite write
transactions are serialized (BEGIN IMMEDIATE), so neither step can race.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.domain.errors import InvalidArgument
from invoice_rpc.service.audit import record_audit
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_create import NewLineItem, document_type_for, line_row
from invoice_rpc.service.invoice_totals import invoice_amounts, line_amounts
from invoice_rpc.service.numbering import reserve_invoice_numbers
from invoice_rpc.storage import models as m

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """How many invoices were created, and their numbers in creation order."""

    invoice_numbers: list[str]

    @property
    def count(self) -> int:
        return len(self.invoice_numbers)


def check_limit(limit: int | None) -> int:
    """The limit to use: default 50; InvalidArgument outside 1..200."""
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument.single("limit", f"must be from 1 to {MAX_LIMIT}")
    return limit


def _not_invoiced() -> ColumnElement[bool]:
    return ~exists().where(m.Invoice.order_id == m.Order.id)


async def _claim_orders(session: AsyncSession, tenant_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """Ids of up to `limit` uninvoiced orders, oldest first, locked for this transaction."""
    stmt = (
        select(m.Order.id)
        .where(m.Order.tenant_id == tenant_id, _not_invoiced())
        .order_by(m.Order.ordered_at, m.Order.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


async def backfill_invoices(session: AsyncSession, caller: Caller, limit: int | None = None) -> BackfillResult:
    """Invoice up to `limit` (default 50, 1..200) of the tenant's orders that have none,
    oldest first (ordered_at, then id); numbers follow that order. Each invoice is paid (an
    order is a completed purchase), issued on the order's UTC date, with one line for the
    plan (else the order's description, else its billing type) at the order's amount."""
    limit = check_limit(limit)
    claimed = await _claim_orders(session, caller.tenant_id, limit)
    if not claimed:
        return BackfillResult(invoice_numbers=[])
    stmt = (
        select(m.Order, m.Plan.name)
        .outerjoin(m.Plan, m.Plan.id == m.Order.plan_id)
        .where(m.Order.id.in_(claimed), _not_invoiced())
        .order_by(m.Order.ordered_at, m.Order.id)
    )
    orders = [(order, plan_name) for order, plan_name in await session.execute(stmt)]
    per_year = Counter(order.ordered_at.year for order, _ in orders)
    numbers = {
        year: iter(await reserve_invoice_numbers(session, caller.tenant_id, year, count))
        for year, count in sorted(per_year.items())
    }
    invoices = [_invoice_for(caller, order, next(numbers[order.ordered_at.year])) for order, _ in orders]
    # Parents first: the models declare no relationships, so the flush order is ours to keep.
    session.add_all(invoices)
    await session.flush()
    for invoice, (order, plan_name) in zip(invoices, orders, strict=True):
        _add_children(session, caller, invoice, order, plan_name)
    await session.flush()
    return BackfillResult(invoice_numbers=[invoice.invoice_number for invoice in invoices])


def _line_for(order: m.Order, plan_name: str | None) -> NewLineItem:
    billing_type = BillingType(order.billing_type)
    return NewLineItem(
        name=plan_name or order.description or billing_type.value, quantity="1", unit_price_minor=order.amount_minor
    )


def _invoice_for(caller: Caller, order: m.Order, number: str) -> m.Invoice:
    billing_type = BillingType(order.billing_type)
    totals = invoice_amounts([line_amounts(Decimal(1), order.amount_minor)])
    document_type, accounting_event = document_type_for(billing_type)
    issue_date = order.ordered_at.date()  # ordered_at is UTC, so this is its UTC date
    invoice = m.Invoice(
        id=uuid.uuid4(),
        tenant_id=caller.tenant_id,
        invoice_number=number,
        document_type_code=document_type.value,
        accounting_event_type=accounting_event.value,
        billing_type=billing_type.value,
        status=InvoiceStatus.PAID.value,
        customer_id=order.customer_id,
        plan_id=order.plan_id,
        currency=order.currency,
        sub_total_minor=totals.sub_total_minor,
        total_discount_minor=totals.total_discount_minor,
        total_tax_minor=totals.total_tax_minor,
        credits_minor=0,
        total_minor=totals.total_minor,
        amount_paid_minor=totals.total_minor,
        amount_remaining_minor=0,
        issue_date=issue_date,
        due_date=issue_date,
        paid_at=order.ordered_at,
        order_id=order.id,
    )
    return invoice


def _add_children(
    session: AsyncSession, caller: Caller, invoice: m.Invoice, order: m.Order, plan_name: str | None
) -> None:
    line = _line_for(order, plan_name)
    session.add(line_row(invoice.id, 1, line, line_amounts(Decimal(1), order.amount_minor)))
    # The order was paid when it was placed: the payment row keeps amount_paid = Σ payments.
    session.add(
        m.Payment(
            id=uuid.uuid4(),
            tenant_id=caller.tenant_id,
            invoice_id=invoice.id,
            payment_key=f"order:{order.external_id}",
            amount_minor=invoice.total_minor,
            paid_at=order.ordered_at,
        )
    )
    record_audit(
        session,
        caller,
        invoice.id,
        "invoice.backfilled",
        {},
        {"invoice_number": invoice.invoice_number, "order_id": order.external_id, "total_minor": invoice.total_minor},
    )
