"""The summary's rollups (`invoice_day_totals`, `invoice_month_totals`): whichever path writes
invoices (rpcs, imports and re-imports, backfill, marketplace generation, the demo seeder,
deletes, a tenant's cascade), the triggers keep them equal to a GROUP BY over the invoices, and a
summary read from them equals the one grouped over the invoices, for every filter they answer and
any issue-date range. The migration fills them from the invoices already there; a deadlock
between writers through them is Aborted, which the caller retries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from alembic import command
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import create_engine, delete, func, insert, select, update
from sqlalchemy.engine import make_url

from invoice_rpc.domain.enums import BillingType, DateField, InvoiceStatus
from invoice_rpc.domain.errors import Aborted
from invoice_rpc.service.demo import seed_demo
from invoice_rpc.service.invoice_queries import InvoiceQuery
from invoice_rpc.service.invoice_summary import rollup_answers, summarize_invoices
from invoice_rpc.service.numbering import next_invoice_number
from invoice_rpc.storage import migrate
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database, sync_url
from invoice_rpc.storage.types import utcnow
from tests.conftest import DIALECTS, PG_ADMIN_URL, Api, _pg_unavailable, new_api
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


async def rollups_and_invoice_groups(db: Database) -> tuple[Groups, Groups, Groups]:
    """The day rollup, the month rollup (keyed by the month's first day) and a fresh GROUP BY of
    the invoices per issue date. All tenants: every invoice any test of this session wrote went
    through the triggers."""
    invoice = m.Invoice
    async with db.read() as s:
        rollups = []
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
            rollups.append({tuple(row[:5]): tuple(int(v) for v in row[5:]) for row in rows})
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
        days, months = rollups
        return days, months, {tuple(row[:5]): tuple(int(v) for v in row[5:]) for row in grouped}


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


@pytest.mark.slow
async def test_a_deadlock_through_the_rollup_is_aborted_and_retryable(db: Database) -> None:
    """Two writers that take the numbering lock and a rollup row in opposite orders: PostgreSQL
    ends one of them (40P01); the caller sees Aborted (ABORTED: retry), the other commits."""
    if db.is_sqlite:
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): no two write transactions overlap")
    api_tenant = uuid.uuid4()
    async with db.write() as s:
        s.add(m.Tenant(id=api_tenant, name=f"tenant-{api_tenant.hex[:12]}"))
    issue_date = utcnow().date()
    async with db.write() as s:
        existing = await make_invoice(s, api_tenant, issue_date=issue_date)
    updated, reserved = asyncio.Event(), asyncio.Event()

    async def pay_then_number() -> None:
        async with db.write() as s:
            # Moves the invoice from the sent group to the paid one: both rollup rows locked.
            await s.execute(
                update(m.Invoice).where(m.Invoice.id == existing.id).values(status=PAID.value, amount_paid_minor=9900)
            )
            updated.set()
            await reserved.wait()
            await next_invoice_number(s, api_tenant, issue_date.year)

    async def number_then_insert() -> None:
        await updated.wait()
        async with db.write() as s:
            number = await next_invoice_number(s, api_tenant, issue_date.year)
            reserved.set()
            # The sent group's row is locked by the other transaction.
            await s.execute(insert(m.Invoice), [invoice_values(api_tenant, number, issue_date=issue_date)])

    outcomes = await asyncio.gather(pay_then_number(), number_then_insert(), return_exceptions=True)

    assert sorted(type(o).__name__ for o in outcomes) == ["Aborted", "NoneType"], outcomes
    [aborted] = [o for o in outcomes if isinstance(o, Aborted)]
    assert "deadlock" in aborted.message
    await assert_rollup_exact(db)


# --- the migration's initial fill --------------------------------------------------------------


@pytest.fixture(params=DIALECTS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each dialect (migrated by the test itself), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rollup.sqlite3'}"
        return
    admin = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    name = f"invoice_rpc_rollup_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc))
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


async def test_the_migration_fills_the_rollup_from_existing_invoices(fresh_database_url: str) -> None:
    url = fresh_database_url
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
