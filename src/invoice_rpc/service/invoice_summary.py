"""Counts and totals of the matching invoices, computed by the database (GROUP BY), never by
loading invoices. Every total belongs to one currency: amounts in different currencies are
never added together; only the invoice count is given across currencies.

Rows are ordered by their key's stored value (billing type or status name), then currency.
The database groups once, at the finest grain; the three views are added up from that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.service.invoice_queries import InvoiceQuery, invoice_filter_clauses
from invoice_rpc.service.invoice_records import core_connection
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
    # Groups are per status, so "outstanding" (what sent invoices still owe) is the remaining
    # sum of the `sent` groups, taken in `_totals`: no CASE per row.
    return (
        func.count().label("invoice_count"),
        func.sum(m.Invoice.total_minor).label("total_minor"),
        func.sum(m.Invoice.total_tax_minor).label("tax_minor"),
        func.sum(m.Invoice.amount_paid_minor).label("paid_minor"),
        func.sum(m.Invoice.amount_remaining_minor).label("remaining_minor"),
    )


def _totals(row: Any) -> CurrencyTotals:
    """One (billing type, status, currency) group's totals. int(): PostgreSQL's SUM(bigint) is
    numeric and arrives as Decimal."""
    return CurrencyTotals(
        currency=row.currency,
        invoice_count=int(row.invoice_count),
        total_minor=int(row.total_minor),
        tax_minor=int(row.tax_minor),
        paid_minor=int(row.paid_minor),
        outstanding_minor=int(row.remaining_minor) if row.status == InvoiceStatus.SENT.value else 0,
    )


async def summarize_invoices(session: AsyncSession, tenant_id: uuid.UUID, query: InvoiceQuery) -> InvoiceSummary:
    """Totals of the tenant's invoices matching `query`, per currency, per (billing type,
    currency) and per (status, currency). InvalidArgument if the query breaks its rules.

    The database groups once, by (billing type, status, currency): at most a few hundred rows,
    which are added up here into the three views (exact integers). One scan instead of three,
    and a plain GROUP BY, which PostgreSQL runs in parallel (GROUPING SETS it does not)."""
    violations = ViolationCollector()
    query.check(violations)
    violations.raise_if_any()
    invoice = m.Invoice
    keys = (invoice.billing_type, invoice.status, invoice.currency)
    stmt = select(*keys, *_aggregates()).where(*invoice_filter_clauses(tenant_id, query)).group_by(*keys)
    by_currency: dict[str, CurrencyTotals] = {}
    by_billing_type: dict[tuple[str, str], CurrencyTotals] = {}
    by_status: dict[tuple[str, str], CurrencyTotals] = {}
    for row in await (await core_connection(session)).execute(stmt):
        totals = _totals(row)
        _add(by_currency, row.currency, totals)
        _add(by_billing_type, (row.billing_type, row.currency), totals)
        _add(by_status, (row.status, row.currency), totals)
    currencies = [by_currency[key] for key in sorted(by_currency)]
    return InvoiceSummary(
        invoice_count=sum(t.invoice_count for t in currencies),
        currencies=currencies,
        billing_types=[
            BillingTypeTotals(billing_type=BillingType(key[0]), totals=by_billing_type[key])
            for key in sorted(by_billing_type)
        ],
        statuses=[StatusTotals(status=InvoiceStatus(key[0]), totals=by_status[key]) for key in sorted(by_status)],
    )


def _add(groups: dict[Any, CurrencyTotals], key: Any, totals: CurrencyTotals) -> None:
    current = groups.get(key)
    if current is None:
        groups[key] = totals
        return
    groups[key] = CurrencyTotals(
        currency=current.currency,
        invoice_count=current.invoice_count + totals.invoice_count,
        total_minor=current.total_minor + totals.total_minor,
        tax_minor=current.tax_minor + totals.tax_minor,
        paid_minor=current.paid_minor + totals.paid_minor,
        outstanding_minor=current.outstanding_minor + totals.outstanding_minor,
    )
