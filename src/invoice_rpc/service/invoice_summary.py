"""Counts and totals of the matching invoices, computed by the database (GROUP BY), never by
loading invoices. Every total belongs to one currency: amounts in different currencies are
never added together; only the invoice count is given across currencies.

Rows are ordered by their key's stored value (billing type or status name), then currency.
The database groups once, at the finest grain; the three views are added up from that.

Where the filter only names billing types, statuses, a currency and an issue-date range, the
groups come from the rollups that triggers keep exact in every writing transaction
(`invoice_month_totals` for whole calendar months, `invoice_day_totals` for the days of a month
the range only partly covers): a few thousand rows at most instead of every invoice, with the
same answer. The triggers append differences rather than update a row per group, so a group may
have several rows (until compaction folds them): every row of a group is summed, never one taken
as the group's total. Any other filter (customers, contracts, companies, data source, a creation-date
range) is grouped over the invoices themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from invoice_rpc.domain.enums import BillingType, DateField, InvoiceStatus
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


def rollup_answers(query: InvoiceQuery) -> bool:
    """Whether the rollups hold every column `query` filters on: billing types, statuses,
    currency and an issue-date range. Checked as "nothing else is set", so a filter
    added to InvoiceQuery later falls back to the invoices instead of being silently ignored."""
    if query.date_field is not DateField.ISSUE_DATE and (query.start_date or query.end_date):
        return False
    others = replace(
        query,
        billing_types=(),
        statuses=(),
        currency=None,
        date_field=DateField.ISSUE_DATE,
        start_date=None,
        end_date=None,
    )
    return others == InvoiceQuery()


def _invoice_groups(tenant_id: uuid.UUID, query: InvoiceQuery) -> Select[Any]:
    invoice = m.Invoice
    keys = (invoice.billing_type, invoice.status, invoice.currency)
    return select(*keys, *_aggregates()).where(*invoice_filter_clauses(tenant_id, query)).group_by(*keys)


def _rollup_groups(tenant_id: uuid.UUID, query: InvoiceQuery) -> Select[Any]:
    """The same groups and sums as `_invoice_groups`, added up from the rollups: the calendar
    months wholly inside the issue-date range from the month rollup, the days around them from
    the day rollup, each of their rows (a group's rows are its appended differences, or the one
    row compaction folded them into). The filter maps column for column onto
    `invoice_filter_clauses`' issue-date branch."""
    months = _whole_months(query.start_date, query.end_date)
    parts: list[Select[Any]] = []
    if months is not None:
        month = m.InvoiceMonthTotal
        first, after = months
        dated = [] if first is None else [month.issue_month >= first]
        dated += [] if after is None else [month.issue_month < after]
        parts.append(_rollup_rows(month, tenant_id, query, dated))
    day = m.InvoiceDayTotal
    for lowest, highest in _days_outside(query.start_date, query.end_date, months):
        dated = [] if lowest is None else [day.issue_date >= lowest]
        dated += [] if highest is None else [day.issue_date <= highest]
        parts.append(_rollup_rows(day, tenant_id, query, dated))
    rows = union_all(*parts).subquery("rollup_rows")
    keys = (rows.c.billing_type, rows.c.status, rows.c.currency)
    invoice_count = func.sum(rows.c.invoice_count)
    sums: tuple[Any, ...] = (
        invoice_count.label("invoice_count"),
        func.sum(rows.c.total_minor).label("total_minor"),
        func.sum(rows.c.tax_minor).label("tax_minor"),
        func.sum(rows.c.paid_minor).label("paid_minor"),
        func.sum(rows.c.remaining_minor).label("remaining_minor"),
    )
    # A group whose invoices are all gone sums to zeros (its rows cancel out, or one row of
    # zeros is left) until compaction removes it: a GROUP BY over the invoices would not show
    # it. Every sum of a group without invoices is zero, so its count alone tells it.
    return select(*keys, *sums).group_by(*keys).having(invoice_count != 0)


def _rollup_rows(
    rollup: type[m.InvoiceDayTotal] | type[m.InvoiceMonthTotal],
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    dated: list[ColumnElement[bool]],
) -> Select[Any]:
    """The tenant's rows of one rollup within `dated` that match the query's other filters."""
    clauses: list[ColumnElement[bool]] = [rollup.tenant_id == tenant_id, *dated]
    if query.billing_types:
        clauses.append(rollup.billing_type.in_([str(t) for t in query.billing_types]))
    if query.statuses:
        clauses.append(rollup.status.in_([str(s) for s in query.statuses]))
    if query.currency is not None:
        clauses.append(rollup.currency == query.currency)
    columns: tuple[Any, ...] = (
        rollup.billing_type,
        rollup.status,
        rollup.currency,
        rollup.invoice_count,
        rollup.total_minor,
        rollup.tax_minor,
        rollup.paid_minor,
        rollup.remaining_minor,
    )
    return select(*columns).where(*clauses)


def _whole_months(start: date | None, end: date | None) -> tuple[date | None, date | None] | None:
    """The calendar months lying wholly inside the issue-date range [start, end] (None: open), as
    (first such month, the month after the last one) by their first days, None for an open side;
    None if no month lies wholly inside (or the range reaches date.max, past which no next month
    can be written: those few ranges are read from the day rollup alone)."""
    try:
        first = None if start is None else start if start.day == 1 else _next_month(start)
        after = None if end is None else (end + timedelta(days=1)).replace(day=1)
    except (OverflowError, ValueError):
        return None
    if first is not None and after is not None and first >= after:
        return None
    return first, after


def _days_outside(
    start: date | None, end: date | None, months: tuple[date | None, date | None] | None
) -> list[tuple[date | None, date | None]]:
    """The inclusive day ranges of [start, end] that the whole `months` do not cover."""
    if months is None:
        return [(start, end)]
    first, after = months
    ranges: list[tuple[date | None, date | None]] = []
    if first is not None and start is not None and start < first:
        ranges.append((start, first - timedelta(days=1)))
    if after is not None and end is not None and after <= end:
        ranges.append((after, end))
    return ranges


def _next_month(day: date) -> date:
    """The first day of the month after `day`'s; ValueError past year 9999."""
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


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


async def summarize_invoices(
    session: AsyncSession, tenant_id: uuid.UUID, query: InvoiceQuery, *, use_rollup: bool = True
) -> InvoiceSummary:
    """Totals of the tenant's invoices matching `query`, per currency, per (billing type,
    currency) and per (status, currency). InvalidArgument if the query breaks its rules.

    The database groups once, by (billing type, status, currency): at most a few hundred rows,
    which are added up here into the three views (exact integers). The groups are summed from
    the rollups when `rollup_answers(query)` (and `use_rollup`), else grouped over the invoices
    in one scan: a plain GROUP BY, which PostgreSQL runs in parallel (GROUPING SETS it does
    not). Both give the same summary; `use_rollup=False` forces the scan, the reference the
    rollups are checked against."""
    violations = ViolationCollector()
    query.check(violations)
    violations.raise_if_any()
    connection = await core_connection(session)
    if use_rollup and rollup_answers(query):
        rows = await _read_serially(connection, _rollup_groups(tenant_id, query))
    else:
        rows = list(await connection.execute(_invoice_groups(tenant_id, query)))
    by_currency: dict[str, CurrencyTotals] = {}
    by_billing_type: dict[tuple[str, str], CurrencyTotals] = {}
    by_status: dict[tuple[str, str], CurrencyTotals] = {}
    for row in rows:
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


async def _read_serially(connection: AsyncConnection, stmt: Select[Any]) -> list[Any]:
    """The statement's rows, planned without parallel workers on PostgreSQL. A summary's rollup
    rows take a millisecond or two in one process, yet PostgreSQL may plan the union of month
    and day rows as a Parallel Append whose workers take several times that just to start
    (measured: 10 ms against 2 ms for a year cut mid-month at both ends, ~55,000 day rows)."""
    if connection.dialect.name != "postgresql":
        return list(await connection.execute(stmt))
    await connection.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    try:
        return list(await connection.execute(stmt))
    finally:
        await connection.execute(text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))


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
