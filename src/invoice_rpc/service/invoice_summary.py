"""Counts and totals of the matching invoices, computed by the database (GROUP BY), never by
loading invoices. Every total belongs to one currency: amounts in different currencies are
never added together; only the invoice count is given across currencies.

Rows are ordered by their key's stored value (billing type or status name), then currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.service.invoice_queries import InvoiceQuery, invoice_filter_clauses
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    invoice_count: int
    total_minor: int  # plain sum of invoice totals (credit notes count as stored)
    tax_minor: int
    paid_minor: int
    outstanding_minor: int  # amount still to be paid on invoices with status sent


@dataclass(frozen=True, slots=True)
class BillingTypeTotals:
    billing_type: BillingType
    totals: CurrencyTotals


@dataclass(frozen=True, slots=True)
class StatusTotals:
    status: InvoiceStatus
    totals: CurrencyTotals


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    invoice_count: int
    currencies: list[CurrencyTotals]
    billing_types: list[BillingTypeTotals]
    statuses: list[StatusTotals]


def _aggregates() -> tuple[Any, ...]:
    outstanding = case((m.Invoice.status == InvoiceStatus.SENT.value, m.Invoice.amount_remaining_minor), else_=0)
    return (
        func.count().label("invoice_count"),
        func.coalesce(func.sum(m.Invoice.total_minor), 0).label("total_minor"),
        func.coalesce(func.sum(m.Invoice.total_tax_minor), 0).label("tax_minor"),
        func.coalesce(func.sum(m.Invoice.amount_paid_minor), 0).label("paid_minor"),
        func.coalesce(func.sum(outstanding), 0).label("outstanding_minor"),
    )


def _totals(row: Any) -> CurrencyTotals:
    # int(): PostgreSQL's SUM(bigint) is numeric and arrives as Decimal.
    return CurrencyTotals(
        currency=row.currency,
        invoice_count=int(row.invoice_count),
        total_minor=int(row.total_minor),
        tax_minor=int(row.tax_minor),
        paid_minor=int(row.paid_minor),
        outstanding_minor=int(row.outstanding_minor),
    )


async def summarize_invoices(session: AsyncSession, tenant_id: uuid.UUID, query: InvoiceQuery) -> InvoiceSummary:
    """Totals of the tenant's invoices matching `query`, per currency, per (billing type,
    currency) and per (status, currency). InvalidArgument if the query breaks its rules."""
    violations = ViolationCollector()
    query.check(violations)
    violations.raise_if_any()
    where = invoice_filter_clauses(tenant_id, query)

    async def grouped(*keys: Any) -> list[Any]:
        stmt = select(*keys, m.Invoice.currency, *_aggregates()).where(*where)
        stmt = stmt.group_by(*keys, m.Invoice.currency).order_by(*keys, m.Invoice.currency)
        return list((await session.execute(stmt)).all())

    currencies = [_totals(row) for row in await grouped()]
    billing_types = [
        BillingTypeTotals(billing_type=BillingType(row.billing_type), totals=_totals(row))
        for row in await grouped(m.Invoice.billing_type)
    ]
    statuses = [
        StatusTotals(status=InvoiceStatus(row.status), totals=_totals(row)) for row in await grouped(m.Invoice.status)
    ]
    return InvoiceSummary(
        invoice_count=sum(t.invoice_count for t in currencies),
        currencies=currencies,
        billing_types=billing_types,
        statuses=statuses,
    )
