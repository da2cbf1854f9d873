"""The summary's rollups (`invoice_day_totals`, `invoice_month_totals`): whichever path writes
invoices (rpcs, imports and re-imports, backfill, marketplace generation, the demo seeder,
deletes, a tenant's cascade), the triggers keep them, folded by group, equal to a GROUP BY over
the invoices, and a summary read from them equals the one grouped over the invoices, for every
filter they answer and any issue-date range. The triggers only append differences, so writers of
one group never wait for each other; compaction folds each group into one row, next to
uncommitted writers without losing their rows. The migrations fill them from the invoices
already there and keep those rows; a deadlock between writers elsewhere is Aborted, which the
caller retries, and leaves nothing in the rollups.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import create_engine, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType, DateField, InvoiceStatus
from invoice_rpc.domain.errors import Aborted
from invoice_rpc.service.demo import seed_demo
from invoice_rpc.service.invoice_queries import InvoiceQuery
from invoice_rpc.service.invoice_summary import rollup_answers, summarize_invoices
from invoice_rpc.service.numbering import next_invoice_number
from invoice_rpc.service.rollup_compaction import RollupCompaction, compact_rollups
from invoice_rpc.storage import migrate
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database, sync_url
from invoice_rpc.storage.types import utcnow
from invoice_rpc.worker import compact_rollup_tables, run_worker
from tests.conftest import Api, new_api
from tests.factories import invoice_values, make_invoice
from tests.test_backfill import make_orders
from tests.test_bulk_upsert import INSERTED, UPDATED, bulk, load_stripe_tenant
from tests.test_marketplace import add_usage

SENT, PAID, DRAFT, CANCELLED = InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED
SUBSCRIPTION, ONE_TIME, REFUND = BillingType.SUBSCRIPTION, BillingType.ONE_TIME, BillingType.REFUND

# Every filter the rollup answers, alone and combined. The dates fall inside the invoices the
# tests write (2025-11 .. 2026-04, and today for rpc-created ones).
ROLLUP_QUERIES = (
    InvoiceQuery(),
    InvoiceQuery(start_date=date(2026, 1, 1), end_date=date(2026, 2, 28)),
    InvoiceQuery(start_date=date(2026, 3, 1)),
    InvoiceQuery(end_date=date(2025, 12, 31)),
    InvoiceQuery(statuses=(SENT,)),
    InvoiceQuery(statuses=(PAID, CANCELLED, DRAFT)),
    InvoiceQuery(billing_types=(SUBSCRIPTION, REFUND)),
    InvoiceQuery(billing_types=(BillingType.MARKETPLACE_USAGE,)),
    InvoiceQuery(currency="EUR"),
    InvoiceQuery(
        billing_types=(SUBSCRIPTION, ONE_TIME),
        statuses=(SENT, PAID),
        currency="USD",
        start_date=date(2025, 12, 1),
        end_date=date(2026, 3, 31),
    ),
    InvoiceQuery(statuses=(SENT,), currency="GBP", end_date=date(2026, 2, 1)),
    # A creation-date field without dates filters on nothing the rollup lacks.
    InvoiceQuery(date_field=DateField.CREATED_AT, statuses=(PAID,)),
)

Totals = tuple[int, int, int, int, int]  # count, total, tax, paid, remaining
Groups = dict[tuple[Any, ...], Totals]  # (tenant, date, billing type, status, currency) -> totals
Rows = list[tuple[tuple[Any, ...], Totals]]  # a rollup's rows: (group key, sums), one group may have several


async def rollup_rows(db: Database) -> tuple[Rows, Rows]:
    async with db.read() as s:
        return await read_rollup_rows(s)


async def read_rollup_rows(s: AsyncSession) -> tuple[Rows, Rows]:
    """Every row of the day rollup and of the month rollup (keyed by the month's first day). All
    tenants: every invoice any test of this session wrote went through the triggers."""
    tables = []
    for rollup, day_column in ((m.InvoiceDayTotal, "issue_date"), (m.InvoiceMonthTotal, "issue_month")):
        rows = await s.execute(
            select(
                rollup.tenant_id,
                getattr(rollup, day_column),
                rollup.billing_type,
                rollup.status,
                rollup.currency,
                rollup.invoice_count,
                rollup.total_minor,
                rollup.tax_minor,
                rollup.paid_minor,
                rollup.remaining_minor,
            )
        )
        tables.append([(tuple(row[:5]), as_totals(row[5:])) for row in rows])
    days, months = tables
    return days, months


def as_totals(values: Any) -> Totals:
    count, total, tax, paid, remaining = (int(v) for v in values)
    return count, total, tax, paid, remaining


def folded(rows: Rows) -> Groups:
    """A rollup's rows added up per group: what the group holds, however many rows it has."""
    groups: dict[tuple[Any, ...], Totals] = {}
    for key, sums in rows:
        before = groups.get(key, (0, 0, 0, 0, 0))
        groups[key] = as_totals(a + b for a, b in zip(before, sums, strict=True))
    return groups


async def rollups_and_invoice_groups(db: Database) -> tuple[Groups, Groups, Groups]:
    """The day rollup and the month rollup, folded by group, and a fresh GROUP BY of the invoices
    per issue date."""
    invoice = m.Invoice
    async with db.read() as s:
        days, months = await read_rollup_rows(s)
        keys = (invoice.tenant_id, invoice.issue_date, invoice.billing_type, invoice.status, invoice.currency)
        grouped = await s.execute(
            select(
                *keys,
                func.count(),
                func.sum(invoice.total_minor),
                func.sum(invoice.total_tax_minor),
                func.sum(invoice.amount_paid_minor),
                func.sum(invoice.amount_remaining_minor),
            ).group_by(*keys)
        )
        return folded(days), folded(months), {tuple(row[:5]): as_totals(row[5:]) for row in grouped}


def per_month(day_groups: Groups) -> Groups:
    """Day groups added up per calendar month (keyed by its first day)."""
    months: dict[tuple[Any, ...], list[int]] = {}
    for (tenant_id, day, *rest), sums in day_groups.items():
        totals = months.setdefault((tenant_id, day.replace(day=1), *rest), [0] * 5)
        for i, value in enumerate(sums):
            totals[i] += value
    return {key: (t[0], t[1], t[2], t[3], t[4]) for key, t in months.items()}


def with_invoices(rollup: Groups) -> Groups:
    """The rollup's groups that still have invoices; a group whose invoices are all gone must be
    all zeros, never a leftover amount."""
    assert {sums for sums in rollup.values() if sums[0] == 0} <= {(0, 0, 0, 0, 0)}
    return {key: sums for key, sums in rollup.items() if sums[0] != 0}


async def assert_rollup_exact(db: Database) -> None:
    days, months, grouped = await rollups_and_invoice_groups(db)
    assert with_invoices(days) == grouped
    assert with_invoices(months) == per_month(grouped)


async def assert_summaries_match(db: Database, tenant_id: uuid.UUID) -> None:
    """For every filter the rollup answers, the summary read from it equals the GROUP BY one."""
    async with db.read() as s:
        invoices = int(await s.scalar(select(func.count()).where(m.Invoice.tenant_id == tenant_id)) or 0)
        for query in ROLLUP_QUERIES:
            assert rollup_answers(query), query
            from_rollup = await summarize_invoices(s, tenant_id, query)
            from_invoices = await summarize_invoices(s, tenant_id, query, use_rollup=False)
            assert from_rollup == from_invoices, query
            if query == InvoiceQuery():
                assert from_rollup.invoice_count == invoices > 0


def import_item(external_id: str, kind: str, day: str, amount_cents: int, currency: str) -> dict[str, object]:
    return {
        "id": external_id,
        "customer_id": "cus_123",
        "data_source": "stripe",
        "type": kind,
        "date": f"{day}T09:30:00Z",
        "amount_cents": amount_cents,
        "currency": currency,
        "start_date": f"{day}T00:00:00Z",
        "end_date": f"{day}T00:00:00Z",
    }


async def create(
    api: Api, billing_type: int, currency: str, issue_date: Date, *prices: int, status: int = pb.INVOICE_STATUS_SENT
) -> pb.Invoice:
    invoice = pb.Invoice(
        billing_type=billing_type,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        currency_code=currency,
        issue_date=issue_date,
        line_items=[
            pb.LineItem(name=f"item {i}", quantity="2", unit_price_minor=p, tax=pb.Tax(rate_percent="19"))
            for i, p in enumerate(prices)
        ],
    )
    return await api.invoices.CreateInvoice(isvc.CreateInvoiceRequest(invoice=invoice), metadata=api.metadata)


async def pay(api: Api, invoice: pb.Invoice, amount_minor: int | None = None) -> pb.Invoice:
    request = isvc.ReconcileInvoiceRequest(invoice_ref=invoice.invoice_ref)
    request.paid_time.FromDatetime(datetime(2026, 3, 10, 12, tzinfo=UTC))
    if amount_minor is not None:
        request.amount_minor = amount_minor
    return await api.invoices.ReconcileInvoice(request, metadata=api.metadata)


@pytest.fixture
async def marketplace_api(db: Database, channel: grpc.aio.Channel) -> Api:
    return await new_api(db, channel, marketplace_customer_id=f"aws-{uuid.uuid4().hex[:8]}")


async def test_rollup_follows_every_rpc_that_writes_invoices(marketplace_api: Api) -> None:
    api = marketplace_api
    await load_stripe_tenant(api)
    # CreateInvoice: several types, currencies and days (taxed lines), a credit note among them.
    usd = await create(api, pb.BILLING_TYPE_SUBSCRIPTION, "USD", Date(year=2026, month=1, day=15), 9900, 100)
    eur = await create(api, pb.BILLING_TYPE_TOKEN_PACK, "EUR", Date(year=2026, month=1, day=15), 5000)
    gbp = await create(api, pb.BILLING_TYPE_ONE_TIME, "GBP", Date(year=2025, month=12, day=2), 150000)
    await create(api, pb.BILLING_TYPE_REFUND, "USD", Date(year=2026, month=2, day=1), 2500)
    await create(api, pb.BILLING_TYPE_DEMO, "JPY", Date(year=2026, month=3, day=3), 700, status=pb.INVOICE_STATUS_DRAFT)
    await assert_summaries_match(api.db, api.tenant_id)

    # ReconcileInvoice: a partial payment (amounts move within the group), then full ones
    # (the invoice moves from the sent group to the paid one).
    await pay(api, usd, 3001)
    await pay(api, usd)
    await pay(api, gbp)
    await pay(api, eur, 1)
    await assert_summaries_match(api.db, api.tenant_id)

    # BulkUpsertInvoices, then a re-import that changes amounts, a type, a date and a
    # currency (each a move between rollup groups), next to unchanged items.
    items = [
        import_item("imp_1", "subscription", "2026-01-15", 9900, "USD"),
        import_item("imp_2", "subscription", "2026-01-15", 9900, "USD"),
        import_item("imp_3", "one-time", "2025-11-30", 120000, "EUR"),
        import_item("imp_4", "refund", "2026-02-01", 500, "USD"),
        import_item("imp_5", "cancellation", "2026-04-01", 800, "GBP"),
        import_item("imp_6", "subscription", "2026-03-31", 1, "JPY"),
    ]
    assert [(r.import_status, r.import_error) for r in await bulk(api, *items)] == [(INSERTED, "")] * 6
    changed = [
        {**items[0], "amount_cents": 12900},
        {**items[1], "type": "one-time"},
        {**items[2], "date": "2026-02-28T23:59:59Z", "amount_cents": 110000},
        {**items[3], "type": "cancellation", "currency": "EUR"},
        items[4],
        items[5],
    ]
    results = await bulk(api, *changed)
    assert [(r.import_status, r.import_error) for r in results[:4]] == [(UPDATED, "")] * 4
    await assert_summaries_match(api.db, api.tenant_id)

    # BackfillInvoices: orders become paid invoices; GenerateMarketplaceInvoice: usage becomes
    # sent marketplace invoices, one per currency.
    await make_orders(api, 3, start=datetime(2026, 1, 20, 9, tzinfo=UTC))
    backfilled = await api.invoices.BackfillInvoices(isvc.BackfillInvoicesRequest(), metadata=api.metadata)
    assert backfilled.count == 3
    await add_usage(api, "api_calls", "1200", 2, "USD", datetime(2026, 3, 2, tzinfo=UTC))
    await add_usage(api, "api_calls", "10", 3, "EUR", datetime(2026, 3, 5, tzinfo=UTC))
    generated = await api.invoices.GenerateMarketplaceInvoice(
        isvc.GenerateMarketplaceInvoiceRequest(
            period_start=Date(year=2026, month=3, day=1), period_end=Date(year=2026, month=3, day=31)
        ),
        metadata=api.metadata,
    )
    assert len(generated.invoices) == 2

    await assert_summaries_match(api.db, api.tenant_id)
    await assert_rollup_exact(api.db)


@pytest.mark.slow
async def test_rollup_follows_the_demo_seeder_with_its_cancellations(db: Database) -> None:
    # The demo writes through the use cases (imports, CreateInvoice, payments) and sets some
    # invoices' status to cancelled itself.
    async with db.write() as s:
        demo = await seed_demo(s, tenant_name=f"demo-{uuid.uuid4().hex[:8]}", marketplace_customer_id=None)
    assert demo.statuses.get("cancelled", 0) > 0

    await assert_summaries_match(db, demo.tenant_id)
    await assert_rollup_exact(db)


# Month starts and ends, a mid-month day, and the ends of the calendar.
RANGE_EDGES = (
    None,
    date.min,
    date(2025, 11, 30),
    date(2025, 12, 1),
    date(2025, 12, 31),
    date(2026, 1, 1),
    date(2026, 1, 15),
    date(2026, 2, 28),
    date(2026, 3, 1),
    date(2026, 3, 31),
    date.max,
)


async def test_any_issue_date_range_is_whole_months_plus_the_days_around_them(api: Api) -> None:
    async with api.db.write() as s:
        for day in [edge for edge in RANGE_EDGES if edge not in (None, date.min, date.max)] + [date(2026, 1, 16)]:
            await make_invoice(s, api.tenant_id, issue_date=day, sub_total_minor=day.day * 100 + day.month)
            await make_invoice(s, api.tenant_id, issue_date=day, status=PAID, currency="EUR", sub_total_minor=day.day)

    async with api.db.read() as s:
        for start in RANGE_EDGES:
            for end in RANGE_EDGES:
                if start is not None and end is not None and end < start:
                    continue
                query = InvoiceQuery(start_date=start, end_date=end)
                from_rollup = await summarize_invoices(s, api.tenant_id, query)
                assert from_rollup == await summarize_invoices(s, api.tenant_id, query, use_rollup=False), query


async def test_summary_leaves_out_groups_whose_invoices_were_deleted(api: Api) -> None:
    async with api.db.write() as s:
        kept = await make_invoice(s, api.tenant_id, issue_date=date(2026, 2, 2), sub_total_minor=100)
        gone = await make_invoice(s, api.tenant_id, issue_date=date(2026, 2, 3), currency="EUR", sub_total_minor=7)
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 2, 2), sub_total_minor=20)
    async with api.db.write() as s:
        await s.execute(delete(m.Invoice).where(m.Invoice.id.in_([gone.id, kept.id])))

    async with api.db.read() as s:
        summary = await summarize_invoices(s, api.tenant_id, InvoiceQuery())
    assert [(c.currency, c.invoice_count, c.total_minor) for c in summary.currencies] == [("USD", 1, 20)]
    await assert_summaries_match(api.db, api.tenant_id)
    await assert_rollup_exact(api.db)


async def test_deleting_a_tenant_deletes_its_invoices_and_rollup_rows(api: Api, other_api: Api) -> None:
    for tenant_id in (api.tenant_id, other_api.tenant_id):
        async with api.db.write() as s:
            await make_invoice(s, tenant_id, status=PAID, issue_date=date(2026, 1, 5))
            await make_invoice(s, tenant_id, currency="EUR", issue_date=date(2026, 1, 6), sub_total_minor=500)
    other_before = await summary_of(other_api)

    async with api.db.write() as s:
        await s.execute(delete(m.Tenant).where(m.Tenant.id == api.tenant_id))

    async with api.db.read() as s:
        left = [
            await s.scalar(select(func.count()).where(model.tenant_id == api.tenant_id))
            for model in (m.Invoice, m.InvoiceDayTotal, m.InvoiceMonthTotal)
        ]
    assert left == [0, 0, 0]
    assert await summary_of(other_api) == other_before
    await assert_rollup_exact(api.db)


async def summary_of(api: Api) -> isvc.SummarizeInvoicesResponse:
    return await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)


async def test_filters_the_rollup_lacks_are_grouped_over_the_invoices(api: Api) -> None:
    customer_id = uuid.uuid4()
    assert not rollup_answers(InvoiceQuery(customer_refs=(customer_id,)))
    assert not rollup_answers(InvoiceQuery(contract_refs=(customer_id,)))
    assert not rollup_answers(InvoiceQuery(issuer_company_id="supplier-1"))
    assert not rollup_answers(InvoiceQuery(receiver_company_id="cmp_1"))
    assert not rollup_answers(InvoiceQuery(data_source_id=customer_id, currency="USD"))
    assert not rollup_answers(InvoiceQuery(date_field=DateField.CREATED_AT, start_date=date(2026, 1, 1)))
    assert not rollup_answers(InvoiceQuery(date_field=DateField.CREATED_AT, end_date=date(2026, 1, 1)))

    # A creation-date range differs from the issue-date one: the answer must follow created_at.
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 1, 10), created_at=datetime(2026, 2, 1, tzinfo=UTC))
    by_creation = InvoiceQuery(date_field=DateField.CREATED_AT, start_date=date(2026, 2, 1), end_date=date(2026, 2, 1))
    async with api.db.read() as s:
        summary = await summarize_invoices(s, api.tenant_id, by_creation)
    assert summary.invoice_count == 1


async def new_tenant(db: Database) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    async with db.write() as s:
        s.add(m.Tenant(id=tenant_id, name=f"tenant-{tenant_id.hex[:12]}"))
    return tenant_id


def skip_on_sqlite(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): no two write transactions overlap")


def pay_partly(invoice: m.Invoice, amount_minor: int) -> Any:
    """A partial payment: the invoice stays in its group, its paid and remaining sums move."""
    return (
        update(m.Invoice)
        .where(m.Invoice.id == invoice.id)
        .values(amount_paid_minor=amount_minor, amount_remaining_minor=invoice.total_minor - amount_minor)
    )


async def tenant_rows(db: Database, tenant_id: uuid.UUID) -> tuple[Rows, Rows]:
    """The tenant's rows of the day and the month rollup."""
    days, months = await rollup_rows(db)
    return [r for r in days if r[0][0] == tenant_id], [r for r in months if r[0][0] == tenant_id]


def assert_one_row_per_group(rows: Rows) -> None:
    """A compacted rollup: one row per group, and no group of zeros left."""
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys))
    assert (0, 0, 0, 0, 0) not in [sums for _, sums in rows]


# How long a writer that must not wait for another transaction may wait for a lock before the test
# calls it waiting; far above what an uncontended write takes, far below the test's timeout.
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '3s'"


async def test_writers_of_one_group_do_not_wait_for_each_other(db: Database) -> None:
    """Two transactions paying and creating invoices of the same (tenant, day, billing type,
    status, currency) group: the second writes and commits while the first, having written, still
    holds its transaction open. (Rollup rows updated in place made the second wait for the first
    one's commit.)"""
    skip_on_sqlite(db)
    tenant_id = await new_tenant(db)
    day = date(2026, 1, 15)
    async with db.write() as s:
        first = await make_invoice(s, tenant_id, issue_date=day, invoice_number="SAME-1")
        second = await make_invoice(s, tenant_id, issue_date=day, invoice_number="SAME-2")
    first_wrote, second_done = asyncio.Event(), asyncio.Event()
    second_outcome: list[Exception | None] = []

    async def first_writer() -> None:
        async with db.write() as s:
            await s.execute(pay_partly(first, 400))
            await s.execute(insert(m.Invoice), [invoice_values(tenant_id, "SAME-3", issue_date=day)])
            first_wrote.set()
            await second_done.wait()

    async def second_writer() -> None:
        await first_wrote.wait()
        try:
            async with db.write() as s:
                await s.execute(text(LOCK_TIMEOUT))
                await s.execute(pay_partly(second, 700))
                await s.execute(insert(m.Invoice), [invoice_values(tenant_id, "SAME-4", issue_date=day)])
            second_outcome.append(None)
        except Exception as error:
            second_outcome.append(error)
        finally:
            second_done.set()

    await asyncio.wait_for(asyncio.gather(first_writer(), second_writer()), timeout=30)

    assert second_outcome == [None], "the second writer waited for the first one's lock"
    days, _ = await tenant_rows(db, tenant_id)
    [(group, sums)] = folded(days).items()
    assert group[1:] == (day, SUBSCRIPTION.value, SENT.value, "USD")
    assert sums[:4] == (4, 4 * 9900, 0, 1100)
    await assert_rollup_exact(db)


async def test_compaction_folds_each_group_into_one_row_and_drops_groups_of_zeros(api: Api) -> None:
    async with api.db.write() as s:
        paid = await make_invoice(s, api.tenant_id, issue_date=date(2026, 3, 3), sub_total_minor=100)
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 3, 3), sub_total_minor=250)
        gone = await make_invoice(s, api.tenant_id, issue_date=date(2026, 3, 4), currency="EUR", sub_total_minor=7)
    async with api.db.write() as s:
        await s.execute(
            update(m.Invoice).where(m.Invoice.id == paid.id).values(status=PAID.value, amount_paid_minor=100)
        )
        await s.execute(update(m.Invoice).where(m.Invoice.id == paid.id).values(amount_remaining_minor=0))
        await s.execute(delete(m.Invoice).where(m.Invoice.id == gone.id))
    days, months = await tenant_rows(api.db, api.tenant_id)
    assert len(days) > len(folded(days)) and len(months) > len(folded(months))
    async with api.db.read() as s:
        before = [await summarize_invoices(s, api.tenant_id, query) for query in ROLLUP_QUERIES]

    compactions = await compact_rollup_tables(api.db)

    assert [c.table for c in compactions] == ["invoice_day_totals", "invoice_month_totals"]
    assert all(c.folded_rows > c.written_rows > 0 for c in compactions), compactions
    all_days, all_months = await rollup_rows(api.db)
    assert_one_row_per_group(all_days)
    assert_one_row_per_group(all_months)
    days, months = await tenant_rows(api.db, api.tenant_id)
    assert sorted((key[1], key[3], key[4], sums) for key, sums in days) == [
        (date(2026, 3, 3), PAID.value, "USD", (1, 100, 0, 100, 0)),
        (date(2026, 3, 3), SENT.value, "USD", (1, 250, 0, 0, 250)),
    ]
    assert len(months) == 2
    async with api.db.read() as s:
        assert [await summarize_invoices(s, api.tenant_id, query) for query in ROLLUP_QUERIES] == before
    await assert_rollup_exact(api.db)
    await assert_summaries_match(api.db, api.tenant_id)
    # A compacted database has nothing to fold: compacting it again rewrites nothing.
    assert [(c.folded_rows, c.written_rows) for c in await compact_rollup_tables(api.db)] == [(0, 0), (0, 0)]


async def test_compaction_next_to_an_uncommitted_writer_loses_nothing(db: Database) -> None:
    """Compaction neither waits for a writer's uncommitted rows nor folds them: it commits while
    the writer is open, the writer commits after it, the rollups still equal the GROUP BY, and the
    next compaction folds the writer's rows too."""
    skip_on_sqlite(db)
    tenant_id = await new_tenant(db)
    day = date(2026, 2, 10)
    async with db.write() as s:
        invoices = [await make_invoice(s, tenant_id, issue_date=day, invoice_number=f"CMP-{i}") for i in range(3)]
    wrote, compacted = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.write() as s:
            await s.execute(pay_partly(invoices[0], 500))
            await s.execute(insert(m.Invoice), [invoice_values(tenant_id, "CMP-3", issue_date=day)])
            await s.execute(delete(m.Invoice).where(m.Invoice.id == invoices[1].id))
            wrote.set()
            await compacted.wait()

    async def compaction() -> list[RollupCompaction]:
        await wrote.wait()
        try:
            async with db.write() as s:
                await s.execute(text(LOCK_TIMEOUT))
                return await compact_rollups(s)
        finally:
            compacted.set()

    _, compactions = await asyncio.wait_for(asyncio.gather(writer(), compaction()), timeout=30)

    assert all(c.folded_rows > 0 for c in compactions), compactions
    days, months = await tenant_rows(db, tenant_id)
    # The folded row, then the writer's three statements' rows, left for the next compaction.
    assert (len(days), len(months)) == (4, 4)
    group = (tenant_id, day, SUBSCRIPTION.value, SENT.value, "USD")
    assert folded(days)[group] == (3, 3 * 9900, 0, 500, 3 * 9900 - 500)
    await assert_rollup_exact(db)
    await compact_rollup_tables(db)
    days, months = await tenant_rows(db, tenant_id)
    assert (len(days), len(months)) == (1, 1)
    await assert_rollup_exact(db)


async def test_a_writer_does_not_wait_for_an_open_compaction(db: Database) -> None:
    """Rows a compaction folded stay locked until it commits, but no writer ever needs them: a
    writer of the same group commits while the compaction is still open."""
    skip_on_sqlite(db)
    tenant_id = await new_tenant(db)
    day = date(2026, 2, 11)
    async with db.write() as s:
        invoices = [await make_invoice(s, tenant_id, issue_date=day, invoice_number=f"OPEN-{i}") for i in range(2)]
    compacted, written = asyncio.Event(), asyncio.Event()
    writer_outcome: list[Exception | None] = []

    async def compaction() -> None:
        async with db.write() as s:
            await compact_rollups(s)
            compacted.set()
            await written.wait()

    async def writer() -> None:
        await compacted.wait()
        try:
            async with db.write() as s:
                await s.execute(text(LOCK_TIMEOUT))
                await s.execute(pay_partly(invoices[0], 300))
                await s.execute(insert(m.Invoice), [invoice_values(tenant_id, "OPEN-2", issue_date=day)])
            writer_outcome.append(None)
        except Exception as error:
            writer_outcome.append(error)
        finally:
            written.set()

    await asyncio.wait_for(asyncio.gather(compaction(), writer()), timeout=30)

    assert writer_outcome == [None], "the writer waited for the compaction"
    days, _ = await tenant_rows(db, tenant_id)
    assert folded(days)[(tenant_id, day, SUBSCRIPTION.value, SENT.value, "USD")][:4] == (3, 3 * 9900, 0, 300)
    await assert_rollup_exact(db)


async def test_the_worker_compacts_the_rollups_on_start_and_then_periodically(api: Api) -> None:
    day = date(2026, 4, 2)
    async with api.db.write() as s:
        for _ in range(3):
            await make_invoice(s, api.tenant_id, issue_date=day, sub_total_minor=300)

    async def compacted() -> bool:
        days, months = await tenant_rows(api.db, api.tenant_id)
        return (len(days), len(months)) == (1, 1)

    async def wait_until_compacted() -> None:
        for _ in range(100):
            if await compacted():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the worker did not compact the rollups")

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(api.db, worker_id="compactor", poll_interval=0.05, compact_every=0.2, stop=stop)
    )
    try:
        await wait_until_compacted()
        async with api.db.write() as s:
            await make_invoice(s, api.tenant_id, issue_date=day, sub_total_minor=300)
            await make_invoice(s, api.tenant_id, issue_date=day, sub_total_minor=300)
        assert not await compacted()
        await wait_until_compacted()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert task.exception() is None
    await assert_rollup_exact(api.db)
    await assert_summaries_match(api.db, api.tenant_id)


@pytest.mark.slow
async def test_a_deadlock_between_writers_is_aborted_and_leaves_nothing_in_the_rollup(db: Database) -> None:
    """Two writers that take the numbering row and an invoice row in opposite orders: PostgreSQL
    ends one of them (40P01); the caller sees Aborted (ABORTED: retry), the other commits, and the
    rollups hold none of the ended one's differences. (The rollups themselves can no longer take
    part in a deadlock: their triggers only append rows.)"""
    skip_on_sqlite(db)
    tenant_id = await new_tenant(db)
    issue_date = utcnow().date()
    async with db.write() as s:
        existing = await make_invoice(s, tenant_id, issue_date=issue_date)
    paid, reserved = asyncio.Event(), asyncio.Event()

    async def pay_then_number() -> None:
        async with db.write() as s:
            await s.execute(
                update(m.Invoice)
                .where(m.Invoice.id == existing.id)
                .values(status=PAID.value, amount_paid_minor=existing.total_minor, amount_remaining_minor=0)
            )
            paid.set()
            await reserved.wait()
            number = await next_invoice_number(s, tenant_id, issue_date.year)
            await s.execute(insert(m.Invoice), [invoice_values(tenant_id, number, issue_date=issue_date)])

    async def number_then_cancel() -> None:
        await paid.wait()
        async with db.write() as s:
            number = await next_invoice_number(s, tenant_id, issue_date.year)
            refund = invoice_values(tenant_id, number, issue_date=issue_date, billing_type=REFUND)
            await s.execute(insert(m.Invoice), [refund])
            reserved.set()
            # The invoice's row is locked by the other transaction, which waits for the numbering row.
            await s.execute(
                update(m.Invoice)
                .where(m.Invoice.id == existing.id)
                .values(status=CANCELLED.value, amount_remaining_minor=0)
            )

    outcomes = await asyncio.gather(pay_then_number(), number_then_cancel(), return_exceptions=True)

    assert sorted(type(o).__name__ for o in outcomes) == ["Aborted", "NoneType"], outcomes
    [aborted] = [o for o in outcomes if isinstance(o, Aborted)]
    assert "deadlock" in aborted.message
    async with db.read() as s:
        invoices = int(await s.scalar(select(func.count()).where(m.Invoice.tenant_id == tenant_id)) or 0)
    assert invoices == 2
    await assert_rollup_exact(db)


# --- the migration's initial fill --------------------------------------------------------------


def insert_invoices(url: str, tenant_id: uuid.UUID, first_number: int, rows: list[dict[str, Any]]) -> None:
    """Invoices straight into the table (the tenant made if new), as data present before 0002."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            if connection.scalar(select(func.count()).where(m.Tenant.id == tenant_id)) == 0:
                connection.execute(insert(m.Tenant).values(id=tenant_id, name=f"tenant-{tenant_id.hex[:12]}"))
            values = [invoice_values(tenant_id, f"INV-{first_number + i:06d}", **row) for i, row in enumerate(rows)]
            connection.execute(insert(m.Invoice), values)
    finally:
        engine.dispose()


def migrate_to(url: str, revision: str) -> None:
    """Upgrade or downgrade the database at `url` to `revision`."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            config = migrate.alembic_config(url)
            config.attributes["connection"] = connection
            current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current is not None and current > revision:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    finally:
        engine.dispose()


MIXED_ROWS: list[dict[str, Any]] = [
    {"issue_date": date(2026, 1, 1)},
    {"issue_date": date(2026, 1, 1), "sub_total_minor": 1234, "total_tax_minor": 99},
    {"issue_date": date(2026, 1, 1), "status": PAID},
    {"issue_date": date(2026, 1, 2), "currency": "EUR", "credits_minor": 50},
    {"issue_date": date(2025, 6, 30), "billing_type": REFUND, "status": CANCELLED, "sub_total_minor": 300},
    {"issue_date": date(2025, 6, 30), "billing_type": BillingType.TOKEN_PACK, "status": DRAFT},
    {"issue_date": date(2026, 1, 20), "sub_total_minor": 5},  # another day of a month group
]


async def test_the_migration_fills_the_rollup_from_existing_invoices(empty_database_url: str) -> None:
    url = empty_database_url
    first, second = uuid.uuid4(), uuid.uuid4()
    migrate.upgrade(url, "0001")
    insert_invoices(url, first, 1, MIXED_ROWS)
    insert_invoices(url, second, 100, MIXED_ROWS[:3])

    migrate.upgrade(url)
    db = Database(url)
    try:
        days, months, grouped = await rollups_and_invoice_groups(db)
        assert (days, months) == (grouped, per_month(grouped))
        assert (len(days), len(months)) == (8, 7)  # the first tenant's 6 days in 5 month groups, the second's 2
        day_rows, month_rows = await rollup_rows(db)
        assert (len(day_rows), len(month_rows)) == (8, 7)  # the fill is one row per group
        for tenant_id in (first, second):
            await assert_summaries_match(db, tenant_id)
    finally:
        await db.dispose()

    # Back below 0002 the triggers are gone with the table (writes still work), and the next
    # upgrade fills the rollup again, including what was written in between.
    migrate_to(url, "0001")
    insert_invoices(url, second, 200, MIXED_ROWS[3:])
    migrate.upgrade(url)
    db = Database(url)
    try:
        await assert_rollup_exact(db)
        await assert_summaries_match(db, second)
    finally:
        await db.dispose()


def revision_before_deltas() -> str:
    """The revision that 0005 (append-only rollups) follows: the last one with upsert triggers."""
    revision = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision("0005")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


async def test_the_delta_migration_keeps_the_rows_and_its_downgrade_folds_them(empty_database_url: str) -> None:
    url = empty_database_url
    tenant_id = uuid.uuid4()
    upserted = revision_before_deltas()
    migrate.upgrade(url, upserted)
    insert_invoices(url, tenant_id, 1, MIXED_ROWS)
    db = Database(url)
    try:
        upserted_rows = tuple(sorted(rows) for rows in await rollup_rows(db))
    finally:
        await db.dispose()

    # The existing rows stay as they are (now the first folded rows, with ids); writes append.
    migrate.upgrade(url)
    db = Database(url)
    try:
        assert tuple(sorted(rows) for rows in await rollup_rows(db)) == upserted_rows
        insert_invoices(url, tenant_id, 100, MIXED_ROWS)
        async with db.write() as s:
            await s.execute(update(m.Invoice).where(m.Invoice.invoice_number == "INV-000001").values(status=PAID.value))
        day_rows, month_rows = await rollup_rows(db)
        assert (len(day_rows), len(month_rows)) > tuple(len(rows) for rows in upserted_rows)
        await assert_rollup_exact(db)
    finally:
        await db.dispose()

    # Down again: one row per group under the group-key primary key, kept by upserts once more.
    migrate_to(url, upserted)
    insert_invoices(url, tenant_id, 200, MIXED_ROWS[:2])
    db = Database(url)
    try:
        day_rows, month_rows = await rollup_rows(db)
        assert_one_row_per_group(day_rows)
        assert_one_row_per_group(month_rows)
        await assert_rollup_exact(db)
    finally:
        await db.dispose()

    migrate.upgrade(url)
    db = Database(url)
    try:
        await assert_rollup_exact(db)
        await assert_summaries_match(db, tenant_id)
    finally:
        await db.dispose()
