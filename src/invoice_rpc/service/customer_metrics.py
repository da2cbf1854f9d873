"""A customer's metrics per currency, recalculated from its invoices with SQL aggregates.

Over the customer's invoices that are neither draft nor cancelled, per currency:
invoiced = Σ total of invoices (380) − Σ total of credit notes (381); paid = Σ amount paid;
outstanding = Σ amount remaining of sent invoices; invoice_count = number of documents;
last_invoice_date = latest issue date; MRR = for each subscription, the total of its latest
subscription invoice, unless a cancellation of that subscription is issued on or after it,
brought to a month by the plan's interval (year ÷ 12, week × 52/12, day × 365/12, rounded
half to even; no plan: as is). Amounts in different currencies are never added together.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from invoice_rpc.domain.enums import BillingType, DocumentTypeCode, InvoiceStatus
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow

# Months per plan interval, as the factor that turns one interval's price into a month's.
MONTHLY_FACTOR: dict[str, Decimal] = {
    "month": Decimal(1),
    "year": Decimal(1) / Decimal(12),
    "week": Decimal(52) / Decimal(12),
    "day": Decimal(365) / Decimal(12),
}
_NOT_COUNTED = (InvoiceStatus.DRAFT.value, InvoiceStatus.CANCELLED.value)


@dataclass(frozen=True, slots=True)
class CustomerMetricValues:
    """A customer's metrics in one currency; amounts in its minor units."""

    currency: str
    invoiced_minor: int
    paid_minor: int
    outstanding_minor: int
    mrr_minor: int
    invoice_count: int
    last_invoice_date: date | None


def monthly_amount(amount_minor: int, interval: str | None) -> int:
    """One interval's price as a month's, rounded half to even; unknown or no interval: as is."""
    factor = MONTHLY_FACTOR.get(interval or "month", Decimal(1))
    return int((amount_minor * factor).to_integral_value(rounding=ROUND_HALF_EVEN))


async def compute_customer_metrics(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[CustomerMetricValues]:
    """The customer's metrics per currency as the invoices stand now, sorted by currency."""
    inv = m.Invoice
    counted = and_(inv.tenant_id == tenant_id, inv.customer_id == customer_id, inv.status.not_in(_NOT_COUNTED))

    def total_of(code: DocumentTypeCode) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((inv.document_type_code == code.value, inv.total_minor), else_=0)), 0)

    totals = (
        select(
            inv.currency,
            total_of(DocumentTypeCode.COMMERCIAL_INVOICE).label("invoiced"),
            total_of(DocumentTypeCode.CREDIT_NOTE).label("credited"),
            func.sum(inv.amount_paid_minor).label("paid"),
            func.coalesce(
                func.sum(case((inv.status == InvoiceStatus.SENT.value, inv.amount_remaining_minor), else_=0)), 0
            ).label("outstanding"),
            func.count().label("invoice_count"),
            func.max(inv.issue_date).label("last_invoice_date"),
        )
        .where(counted)
        .group_by(inv.currency)
    )
    mrr = await _mrr_by_currency(session, tenant_id, customer_id)
    metrics = [
        CustomerMetricValues(
            currency=row.currency,
            invoiced_minor=int(row.invoiced) - int(row.credited),
            paid_minor=int(row.paid),
            outstanding_minor=int(row.outstanding),
            mrr_minor=mrr.get(row.currency, 0),
            invoice_count=int(row.invoice_count),
            last_invoice_date=_as_date(row.last_invoice_date),
        )
        for row in await session.execute(totals)
    ]
    return sorted(metrics, key=lambda metric: metric.currency)


async def _mrr_by_currency(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> dict[str, int]:
    """Σ monthly price of each live subscription's latest invoice, per currency: one query
    returning one row per subscription."""
    inv = m.Invoice
    counted = and_(inv.tenant_id == tenant_id, inv.customer_id == customer_id, inv.status.not_in(_NOT_COUNTED))
    ranked = (
        select(
            inv.subscription_id,
            inv.currency,
            inv.total_minor,
            inv.plan_id,
            inv.issue_date,
            func.row_number()
            .over(
                partition_by=inv.subscription_id,
                order_by=(
                    inv.issue_date.desc(),
                    inv.period_start.desc().nulls_last(),
                    inv.created_at.desc(),
                    inv.id.desc(),
                ),
            )
            .label("recency"),
        )
        .where(counted, inv.billing_type == BillingType.SUBSCRIPTION.value, inv.subscription_id.is_not(None))
        .subquery()
    )
    cancellation = aliased(m.Invoice)
    cancelled = exists().where(
        cancellation.tenant_id == tenant_id,
        cancellation.customer_id == customer_id,
        cancellation.status.not_in(_NOT_COUNTED),
        cancellation.billing_type == BillingType.CANCELLATION.value,
        cancellation.subscription_id == ranked.c.subscription_id,
        cancellation.issue_date >= ranked.c.issue_date,
    )
    latest = (
        select(ranked.c.currency, ranked.c.total_minor, m.Plan.interval)
        .outerjoin(m.Plan, m.Plan.id == ranked.c.plan_id)
        .where(ranked.c.recency == 1, ~cancelled)
    )
    mrr: dict[str, int] = defaultdict(int)
    for currency, total_minor, interval in await session.execute(latest):
        mrr[currency] += monthly_amount(int(total_minor), interval)
    return dict(mrr)


def _as_date(value: date | datetime | str | None) -> date | None:
    # SQLite hands an aggregate over a DATE column back as text.
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(value)


async def recalculate_customer_metrics(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[CustomerMetricValues]:
    """Recompute the customer's metrics and rewrite its `customer_metrics` rows whole, stamping
    `customers.metrics_updated_at`. The customer's own updated_at is left alone: metrics are
    derived data, not a change to the customer."""
    metrics = await compute_customer_metrics(session, tenant_id, customer_id)
    await session.execute(delete(m.CustomerMetric).where(m.CustomerMetric.customer_id == customer_id))
    if metrics:
        await session.execute(
            insert(m.CustomerMetric),
            [
                {
                    "customer_id": customer_id,
                    "tenant_id": tenant_id,
                    "currency": metric.currency,
                    "invoiced_minor": metric.invoiced_minor,
                    "paid_minor": metric.paid_minor,
                    "outstanding_minor": metric.outstanding_minor,
                    "mrr_minor": metric.mrr_minor,
                    "invoice_count": metric.invoice_count,
                    "last_invoice_date": metric.last_invoice_date,
                }
                for metric in metrics
            ],
        )
    await session.execute(
        update(m.Customer)
        .where(m.Customer.id == customer_id, m.Customer.tenant_id == tenant_id)
        .values(metrics_updated_at=utcnow(), updated_at=m.Customer.updated_at)
    )
    return metrics


async def load_customer_metrics(session: AsyncSession, customer_id: uuid.UUID) -> list[CustomerMetricValues]:
    """The customer's metrics as last recalculated, sorted by currency."""
    rows = await session.execute(
        select(m.CustomerMetric).where(m.CustomerMetric.customer_id == customer_id).order_by(m.CustomerMetric.currency)
    )
    return [
        CustomerMetricValues(
            currency=row.currency,
            invoiced_minor=row.invoiced_minor,
            paid_minor=row.paid_minor,
            outstanding_minor=row.outstanding_minor,
            mrr_minor=row.mrr_minor,
            invoice_count=row.invoice_count,
            last_invoice_date=row.last_invoice_date,
        )
        for row in rows.scalars()
    ]
