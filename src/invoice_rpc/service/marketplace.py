"""GenerateMarketplaceInvoice (seed 000): bill a period's unbilled marketplace usage.

One invoice per currency (amounts in different currencies are never added together), one
line per (dimension, unit price) with the summed quantity. The usage rows are locked and then
marked with their invoice, so a concurrent run waits and then finds them billed.
"""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain import money
from invoice_rpc.domain.enums import BillingType, InvoiceStatus, PaymentTerm
from invoice_rpc.domain.errors import FailedPrecondition, PermissionDenied, ViolationCollector
from invoice_rpc.service.audit import record_audit
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_create import NewLineItem, document_type_for, line_row
from invoice_rpc.service.invoice_records import InvoiceRecord, get_invoice_record
from invoice_rpc.service.invoice_totals import LineAmounts, invoice_amounts, line_amounts
from invoice_rpc.service.numbering import reserve_invoice_numbers
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow


def billing_period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The period to bill, both days inclusive: start defaults to the first day of today's
    month, end to the last day of start's month."""
    start = start or today.replace(day=1)
    end = end or start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def generate_marketplace_invoices(
    session: AsyncSession,
    caller: Caller,
    marketplace_customer_id: str | None,
    period_start: date | None = None,
    period_end: date | None = None,
    *,
    violations: ViolationCollector | None = None,
) -> list[InvoiceRecord]:
    """Invoice the tenant's usage with used_at in [start 00:00, end + 1 day 00:00) UTC that has
    no invoice yet; the invoices, ordered by currency. PermissionDenied without a marketplace
    customer id; InvalidArgument if start is after end (or for `violations` the caller found);
    FailedPrecondition if there is no such usage."""
    if not marketplace_customer_id:
        raise PermissionDenied("only tenants with a marketplace customer id can generate marketplace invoices")
    violations = violations or ViolationCollector()
    today = utcnow().date()
    start, end = billing_period(period_start, period_end, today)
    if start > end:
        violations.add("period_end", "must not be before period_start")
    violations.raise_if_any()

    window_start, window_end = _midnight(start), _midnight(end + timedelta(days=1))
    usage = (
        await session.scalars(
            select(m.UsageRecord)
            .where(
                m.UsageRecord.tenant_id == caller.tenant_id,
                m.UsageRecord.invoice_id.is_(None),
                m.UsageRecord.used_at >= window_start,
                m.UsageRecord.used_at < window_end,
            )
            .order_by(m.UsageRecord.currency, m.UsageRecord.dimension, m.UsageRecord.unit_price_minor, m.UsageRecord.id)
            .with_for_update()
        )
    ).all()
    if not usage:
        raise FailedPrecondition(f"no unbilled marketplace usage from {start.isoformat()} to {end.isoformat()}")

    # currency -> (dimension, unit price) -> summed quantity; insertion order is the sort order.
    by_currency: dict[str, dict[tuple[str, int], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    usage_ids: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row in usage:
        by_currency[row.currency][(row.dimension, row.unit_price_minor)] += money.parse_quantity(row.quantity)
        usage_ids[row.currency].append(row.id)
    numbers = iter(await reserve_invoice_numbers(session, caller.tenant_id, today.year, len(by_currency)))
    description = (
        f"Marketplace usage of customer {marketplace_customer_id} from {start.isoformat()} to {end.isoformat()}"
    )
    now = utcnow()
    created: list[tuple[m.Invoice, list[tuple[NewLineItem, LineAmounts]]]] = []
    for currency, quantities in by_currency.items():
        lines = [
            (
                NewLineItem(
                    name=dimension,
                    quantity=money.format_decimal(quantity),
                    unit_price_minor=unit_price,
                    period_start=window_start,
                    period_end=window_end,
                ),
                line_amounts(quantity, unit_price),
            )
            for (dimension, unit_price), quantity in quantities.items()
        ]
        totals = invoice_amounts(amounts for _, amounts in lines)
        document_type, accounting_event = document_type_for(BillingType.MARKETPLACE_USAGE)
        invoice = m.Invoice(
            id=uuid.uuid4(),
            tenant_id=caller.tenant_id,
            invoice_number=next(numbers),
            document_type_code=document_type.value,
            accounting_event_type=accounting_event.value,
            billing_type=BillingType.MARKETPLACE_USAGE.value,
            status=InvoiceStatus.SENT.value,
            currency=currency,
            sub_total_minor=totals.sub_total_minor,
            total_discount_minor=totals.total_discount_minor,
            total_tax_minor=totals.total_tax_minor,
            credits_minor=totals.credits_minor,
            total_minor=totals.total_minor,
            amount_paid_minor=0,
            amount_remaining_minor=totals.amount_remaining_minor,
            payment_term=PaymentTerm.DUE_UPON_USAGE.value,
            issue_date=today,
            due_date=today,
            submitted_at=now,
            period_start=window_start,
            period_end=window_end,
            description=description,
        )
        created.append((invoice, lines))
    # Parents first: the models declare no relationships, so the flush order is ours to keep.
    session.add_all(invoice for invoice, _ in created)
    await session.flush()
    for invoice, lines in created:
        session.add_all(line_row(invoice.id, i, line, amounts) for i, (line, amounts) in enumerate(lines, start=1))
        await session.execute(
            update(m.UsageRecord)
            .where(m.UsageRecord.id.in_(usage_ids[invoice.currency]))
            .values(invoice_id=invoice.id, updated_at=now)
        )
        record_audit(
            session,
            caller,
            invoice.id,
            "invoice.generated",
            {},
            {
                "invoice_number": invoice.invoice_number,
                "currency": invoice.currency,
                "total_minor": invoice.total_minor,
                "usage_records": len(usage_ids[invoice.currency]),
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            },
        )
    await session.flush()
    records = [await get_invoice_record(session, caller.tenant_id, invoice.id) for invoice, _ in created]
    return [record for record in records if record is not None]
