"""Seeding the bench tenants: reference data, then N invoices (and their lines and links) in bulk.

PostgreSQL gets COPY through psycopg; SQLite gets executemany through sqlite3 in large
transactions. Rows come from one deterministic generator (`random.Random(seed)`), so two runs
with the same N seed the same shapes: several data sources, customers with companies,
contracts, plans and payment means; every billing type, status and four currencies; line
items on a fifth of the invoices; issue dates across 14 months.

The tenant and its API key are made through the service's own `create_api_key`; the bulk rows
bypass the service (that is the point of a seeder) but follow its rules: gapless numbers per
issue year with the sequence rows to match, number_in_contract per contract, and amounts that
add up (sub_total = Σ lines, total = sub_total − discount + tax, paid/remaining by status).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg._copy_base import TextFormatter
from psycopg.adapt import Transformer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from invoice_rpc.service.numbering import format_invoice_number
from invoice_rpc.service.tenants import create_api_key
from invoice_rpc.storage import migrate
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from invoice_rpc.worker import compact_rollup_tables

SEED = 20260201
FIRST_ISSUE_DAY = date(2025, 1, 1)
ISSUE_DAYS = 425  # 2025-01-01 .. 2026-02-28: more than a year
DATA_SOURCES = ("stripe", "chargebee", "recurly")
CUSTOMERS = 2000
COMPANIES = 400
CONTRACTS = 3000
PAYMENT_MEANS = 200
ISSUERS = 3  # the tenant's own supplier entities

# (value, weight) tables: realistic skews, every value present.
CURRENCIES = (("USD", 60), ("EUR", 25), ("GBP", 10), ("JPY", 5))
BILLING_TYPES = (
    ("subscription", 55),
    ("token_pack", 10),
    ("marketplace_usage", 10),
    ("one-time", 10),
    ("free_trial", 5),
    ("demo", 3),
    ("refund", 5),
    ("cancellation", 2),
)
STATUSES = (("paid", 60), ("sent", 25), ("draft", 8), ("cancelled", 7))
LINE_FRACTION = 0.2
IMPORTED_FRACTION = 0.6
PAYMENT_MEANS_FRACTION = 0.1
PLANS = (
    ("plan_starter", "Starter", "month", 1900),
    ("plan_pro", "Pro", "month", 9900),
    ("plan_team", "Team", "month", 29900),
    ("plan_pro_year", "Pro yearly", "year", 99000),
    ("plan_enterprise", "Enterprise", "year", 1200000),
)
PRODUCTS = (
    ("SKU-SEAT", "Seat", 1000),
    ("SKU-API", "API calls (1k)", 200),
    ("SKU-STORAGE", "Storage GB", 25),
    ("SKU-SUPPORT", "Premium support", 49900),
    ("SKU-ONBOARD", "Onboarding", 150000),
)
CREDIT_NOTE_TYPES = ("refund", "cancellation")


@dataclass(frozen=True, slots=True)
class SeededTenant:
    """What the scenarios need to know about a seeded tenant."""

    name: str
    tenant_id: uuid.UUID
    api_key: str
    invoices: int
    line_rows: int  # CSV rows of an export with line items (one per line, one per invoice without)
    data_source: str
    customer_ids: tuple[str, ...]  # external ids in data source `data_source`
    plan_ids: tuple[str, ...]
    sample_invoice_number: str
    seconds: float


@dataclass
class _Reference:
    """Ids of the reference rows invoices point at."""

    data_source_ids: list[uuid.UUID]
    customers: list[tuple[uuid.UUID, uuid.UUID, str, uuid.UUID | None]]  # id, source, external id, company
    contracts: list[tuple[uuid.UUID, uuid.UUID]]  # id, customer id
    plans: Mapping[uuid.UUID, Sequence[uuid.UUID | None]]  # by data source (None: the SQLite ceiling has none)
    issuers: Sequence[uuid.UUID | None]
    payment_means: list[uuid.UUID]
    plan_external_ids: list[str] = field(default_factory=list)


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]], count: int) -> list[str]:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table], k=count)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


# --- database lifecycle ------------------------------------------------------------------------


def recreate_postgresql_database(url: str) -> None:
    """Drop and create the bench's own database (never any other)."""
    parsed = make_url(url)
    name = parsed.database
    if not name or not name.startswith("invoice_bench"):
        raise ValueError(f"refusing to recreate {name!r}: the bench only recreates databases named invoice_bench*")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database, url
    return database


async def existing_tenant(db: Database, name: str) -> tuple[uuid.UUID, int] | None:
    """The tenant's id and invoice count, if it exists."""
    async with db.read() as session:
        tenant_id = await session.scalar(select(m.Tenant.id).where(m.Tenant.name == name))
        if tenant_id is None:
            return None
        count = await session.scalar(
            select(func.count()).select_from(m.Invoice).where(m.Invoice.tenant_id == tenant_id)
        )
    return tenant_id, int(count or 0)


async def new_key(db: Database, tenant_name: str) -> tuple[uuid.UUID, str]:
    async with db.write() as session:
        issued = await create_api_key(session, tenant_name)
    return issued.tenant_id, issued.key


# --- row generation ----------------------------------------------------------------------------


def _reference_rows(
    rng: random.Random, tenant_id: uuid.UUID, now: datetime
) -> tuple[_Reference, dict[str, list[tuple[Any, ...]]]]:
    """The reference rows, as tuples per table (columns as in `_COLUMNS`)."""
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    source_ids = [_uuid(rng) for _ in DATA_SOURCES]
    for source_id, name in zip(source_ids, DATA_SOURCES, strict=True):
        rows["data_sources"].append((source_id, tenant_id, name, now))
    company_ids = [_uuid(rng) for _ in range(COMPANIES + ISSUERS)]
    for index, company_id in enumerate(company_ids):
        own = index >= COMPANIES
        external = f"supplier_{index - COMPANIES + 1}" if own else f"company_{index + 1:05d}"
        name = f"Bench Supplier {index - COMPANIES + 1} GmbH" if own else f"Customer Company {index + 1} Ltd"
        rows["companies"].append((company_id, tenant_id, external, name, name, "{}", "seed", now, now))
    customers = []
    for index in range(CUSTOMERS):
        customer_id = _uuid(rng)
        source_id = source_ids[index % len(source_ids)]
        external = f"cus_{index + 1:05d}"
        company = company_ids[index % COMPANIES] if index % 3 else None
        customers.append((customer_id, source_id, external, company))
        rows["customers"].append(
            (
                customer_id,
                tenant_id,
                source_id,
                external,
                f"Customer {index + 1}",
                f"Customer {index + 1} Legal Ltd",
                f"billing{index + 1}@example.com",
                company,
                "seed",
                None,
                now,
                now,
            )
        )
    plans: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for source_id in source_ids:
        for external, name, interval, amount in PLANS:
            plan_id = _uuid(rng)
            plans[source_id].append(plan_id)
            rows["plans"].append(
                (plan_id, tenant_id, source_id, external, name, interval, amount, "USD", "seed", now, now)
            )
    contracts = []
    for index in range(CONTRACTS):
        contract_id = _uuid(rng)
        customer = customers[index % CUSTOMERS]
        contracts.append((contract_id, customer[0]))
        # last_number_in_contract is set after the invoices are generated.
        rows["contracts"].append(
            [
                contract_id,
                tenant_id,
                f"ctr_{index + 1:05d}",
                index + 1,
                customer[0],
                f"Contract {index + 1}",
                0,
                "seed",
                now,
                now,
            ]  # type: ignore[arg-type]
        )
    payment_means = []
    for index in range(PAYMENT_MEANS):
        pm_id = _uuid(rng)
        payment_means.append(pm_id)
        rows["payment_means"].append(
            (
                pm_id,
                tenant_id,
                f"pm_{index + 1:04d}",
                "card" if index % 2 else "sepa",
                "visa",
                "active",
                "{}",
                "seed",
                now,
                now,
            )
        )
    reference = _Reference(
        data_source_ids=source_ids,
        customers=customers,
        contracts=contracts,
        plans=plans,
        issuers=company_ids[COMPANIES:],
        payment_means=payment_means,
        plan_external_ids=[p[0] for p in PLANS],
    )
    return reference, rows


@dataclass
class _Counters:
    by_year: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    by_contract: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))
    line_rows: int = 0
    sample_number: str = ""


def _invoice_rows(
    rng: random.Random, tenant_id: uuid.UUID, reference: _Reference, count: int, counters: _Counters, prefix: str
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """("invoices" | "invoice_lines" | "invoice_payment_means", row) for `count` invoices, in
    issue-date order (so invoice numbers rise with the date, as they would in life)."""
    currencies = _weighted(rng, CURRENCIES, count)
    billing_types = _weighted(rng, BILLING_TYPES, count)
    statuses = _weighted(rng, STATUSES, count)
    days = sorted(int(rng.random() * ISSUE_DAYS) for _ in range(count))
    for index in range(count):
        invoice_id = _uuid(rng)
        issue_date = FIRST_ISSUE_DAY + timedelta(days=days[index])
        year = issue_date.year
        counters.by_year[year] += 1
        number = format_invoice_number(year, counters.by_year[year])
        if not counters.sample_number and index >= count // 2:
            counters.sample_number = number
        currency = currencies[index]
        billing_type = billing_types[index]
        status = statuses[index]
        customer_id, source_id, _, company = reference.customers[int(rng.random() * CUSTOMERS)]
        imported = rng.random() < IMPORTED_FRACTION
        contract_id = number_in_contract = None
        if billing_type == "subscription":
            contract_id, _ = reference.contracts[int(rng.random() * CONTRACTS)]
            counters.by_contract[contract_id] += 1
            number_in_contract = counters.by_contract[contract_id]
        plan_id = reference.plans[source_id][int(rng.random() * len(PLANS))] if billing_type == "subscription" else None
        lines = []
        if rng.random() < LINE_FRACTION:
            for position in range(1, 1 + int(rng.random() * 3) + 1):
                sku, name, unit_price = PRODUCTS[int(rng.random() * len(PRODUCTS))]
                if currency == "JPY":
                    unit_price = unit_price // 100 or 1
                quantity = 1 + int(rng.random() * 20)
                sub_total = unit_price * quantity
                tax = sub_total * 19 // 100
                lines.append((position, sku, name, quantity, unit_price, sub_total, tax))
        if lines:
            sub_total = sum(line[5] for line in lines)
            tax_total = sum(line[6] for line in lines)
        else:
            sub_total = (1 + int(rng.random() * 5000)) * (100 if currency != "JPY" else 1) + int(rng.random() * 100)
            tax_total = 0
        discount = sub_total // 10 if rng.random() < 0.1 else 0
        total = sub_total - discount + tax_total
        paid = total if status == "paid" else 0
        remaining = 0 if status in ("paid", "cancelled") else total
        created_at = datetime(issue_date.year, issue_date.month, issue_date.day, tzinfo=UTC) + timedelta(
            seconds=int(rng.random() * 86_400), microseconds=int(rng.random() * 1_000_000)
        )
        credit = billing_type in CREDIT_NOTE_TYPES
        period_start = (
            datetime(issue_date.year, issue_date.month, 1, tzinfo=UTC) if billing_type == "subscription" else None
        )
        period_end = period_start + timedelta(days=30) if period_start else None
        net_days = (14, 30, 30, 45)[index % 4] if index % 5 else None
        yield (
            "invoices",
            (
                invoice_id,
                tenant_id,
                number,
                source_id if imported else None,
                f"{prefix}{index + 1:07d}" if imported else None,
                "381" if credit else "380",
                "CREDIT_NOTE" if credit else "INVOICE",
                billing_type,
                status,
                customer_id,
                contract_id,
                number_in_contract,
                reference.issuers[index % ISSUERS],
                company,
                plan_id,
                f"sub_{index % 5000:05d}" if billing_type == "subscription" else None,
                currency,
                sub_total,
                discount,
                tax_total,
                0,
                total,
                paid,
                remaining,
                net_days,
                None if net_days else "DUE_UPON_RECEIPT",
                issue_date,
                issue_date + timedelta(days=net_days or 0),
                created_at if status != "draft" else None,
                created_at + timedelta(days=3) if status == "paid" else None,
                period_start,
                period_end,
                False,
                "Payable within the agreed terms." if index % 7 == 0 else None,
                f'Invoice for {billing_type.replace("_", " ")}, "{currency}" account'
                if index % 11 == 0
                else f"Services {issue_date:%B %Y}",
                None,
                None,
                None,
                None,
                created_at,
                created_at,
            ),
        )
        counters.line_rows += max(1, len(lines))
        for position, sku, name, quantity, unit_price, line_sub_total, line_tax in lines:
            yield (
                "invoice_lines",
                (
                    _uuid(rng),
                    invoice_id,
                    position,
                    sku,
                    name,
                    None,
                    str(quantity),
                    "unit",
                    unit_price,
                    0,
                    "19",
                    "S",
                    "VAT",
                    None,
                    None,
                    0,
                    None,
                    None,
                    line_sub_total,
                    line_tax,
                    line_sub_total + line_tax,
                    created_at,
                    created_at,
                ),
            )
        if rng.random() < PAYMENT_MEANS_FRACTION:
            yield ("invoice_payment_means", (invoice_id, reference.payment_means[index % PAYMENT_MEANS], 1))


# Column order of every tuple above (checked against the models at import time). Rows seeded
# here were never received as import items, so they have no item digest (left NULL); an
# invoice's own_wire is written by its trigger (migration 0006) during the COPY.
_UNSEEDED = frozenset({"item_digest", "own_wire"})
_COLUMNS: dict[str, tuple[str, ...]] = {
    "data_sources": ("id", "tenant_id", "name", "created_at"),
    "companies": tuple("id tenant_id external_id name legal_name details fingerprint created_at updated_at".split()),
    "customers": tuple(
        "id tenant_id data_source_id external_id name legal_name email company_id fingerprint "
        "metrics_updated_at created_at updated_at".split()
    ),
    "plans": tuple(
        "id tenant_id data_source_id external_id name interval amount_minor currency fingerprint created_at "
        "updated_at".split()
    ),
    "contracts": tuple(
        "id tenant_id external_id contract_number customer_id name last_number_in_contract fingerprint "
        "created_at updated_at".split()
    ),
    "payment_means": tuple(
        "id tenant_id external_id type scheme status details fingerprint created_at updated_at".split()
    ),
    "invoices": tuple(c.name for c in m.Invoice.__table__.columns if c.name not in _UNSEEDED),
    "invoice_lines": tuple(c.name for c in m.InvoiceLine.__table__.columns),
    "invoice_payment_means": ("invoice_id", "payment_means_id", "position"),
}
_TABLE_ORDER = ("data_sources", "companies", "customers", "plans", "contracts", "payment_means")
for _table in (*_TABLE_ORDER, "invoices", "invoice_lines", "invoice_payment_means"):
    _model_columns = {c.name for c in m.Base.metadata.tables[_table].columns} - _UNSEEDED
    assert set(_COLUMNS[_table]) == _model_columns, f"bench seed columns of {_table} differ from the model"


# --- writers -------------------------------------------------------------------------------------


def _finish_reference(reference_rows: dict[str, list[Any]], counters: _Counters, tenant_id: uuid.UUID) -> None:
    for row in reference_rows["contracts"]:
        row[6] = counters.by_contract.get(row[0], 0)
    reference_rows["contracts"] = [tuple(row) for row in reference_rows["contracts"]]
    reference_rows["invoice_number_sequences"] = [
        (tenant_id, year, last) for year, last in sorted(counters.by_year.items())
    ]


# The tables the invoices' load writes, in load order.
_BULK_TABLES = ("invoices", "invoice_lines", "invoice_payment_means")
# Invoices per message from the row generator; their children come in the same message.
_SEED_BLOCK = 50_000


def _seed_postgresql(url: str, tenant_id: uuid.UUID, count: int, prefix: str) -> _Counters:
    rng = random.Random(f"{SEED}:{count}:{tenant_id}")
    now = datetime.now(UTC)
    reference, reference_rows = _reference_rows(rng, tenant_id, now)
    counters = _Counters()
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cursor:
        # The reference rows go in first (invoices point at them); contracts get their
        # invoice counters afterwards, in the same transaction.
        for table in _TABLE_ORDER:
            rows = [tuple(r) for r in reference_rows[table]]
            with cursor.copy(f"COPY {table} ({', '.join(_COLUMNS[table])}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        # Plain indexes are dropped for the load and rebuilt once after it (the classic bulk-load
        # order: one sorted build instead of a million random inserts); unique ones stay.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename IN ('invoices', 'invoice_lines') AND indexname LIKE 'ix\\_%'"
        )
        plain_indexes = cursor.fetchall()
        for index_name, _ in plain_indexes:
            cursor.execute(f'DROP INDEX "{index_name}"')
        # Foreign keys are not checked row by row during the load (pg_restore --disable-triggers
        # does the same): the generator only points at rows it has just written. The summary
        # rollups' triggers are user triggers and stay on.
        for table in _BULK_TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        # The rows are generated and put in COPY's text format by a second process while this one
        # feeds PostgreSQL: generating them takes as long as loading them, and no longer adds to it.
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        producer = context.Process(
            target=_produce_copy_data,
            args=(sender, rng.getstate(), tenant_id, reference, count, prefix),
            name="bench-seed-rows",
        )
        producer.start()
        sender.close()
        try:
            while True:
                message = receiver.recv()
                if isinstance(message, _Counters):
                    counters = message
                    break
                for table, data in zip(_BULK_TABLES, message, strict=True):
                    with cursor.copy(f"COPY {table} ({', '.join(_COLUMNS[table])}) FROM STDIN") as copy:
                        copy.write(data)
        except BaseException:
            producer.terminate()  # it would wait forever to send rows nobody reads
            raise
        finally:
            producer.join()
        if producer.exitcode != 0:
            raise RuntimeError(f"the row generator failed (exit code {producer.exitcode})")
        for table in _BULK_TABLES:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, index_definition in plain_indexes:
            cursor.execute(index_definition)
        _finish_reference(reference_rows, counters, tenant_id)
        cursor.executemany(
            "UPDATE contracts SET last_number_in_contract = %s WHERE id = %s",
            [(row[6], row[0]) for row in reference_rows["contracts"] if row[6]],
        )
        cursor.executemany(
            "INSERT INTO invoice_number_sequences (tenant_id, year, last_value) VALUES (%s, %s, %s)",
            reference_rows["invoice_number_sequences"],
        )
        conn.commit()
    if count:
        # Fresh statistics and a visibility map, as a settled production table would have.
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return counters


def _produce_copy_data(
    sender: Any, rng_state: Any, tenant_id: uuid.UUID, reference: _Reference, count: int, prefix: str
) -> None:
    """In its own process: the invoices of `_invoice_rows`, sent as one message per block of
    COPY-text bytes (a bytes per table of _BULK_TABLES), then the _Counters."""
    rng = random.Random()
    rng.setstate(rng_state)
    counters = _Counters()
    formatters = {table: TextFormatter(Transformer(), encoding="utf-8") for table in _BULK_TABLES}
    chunks: dict[str, list[bytes | bytearray | memoryview]] = {table: [] for table in _BULK_TABLES}

    def send_block() -> None:
        for table, formatter in formatters.items():
            chunks[table].append(formatter.end())
        sender.send(tuple(b"".join(chunks[table]) for table in _BULK_TABLES))
        for table in _BULK_TABLES:
            chunks[table].clear()

    produced = 0
    for table, row in _invoice_rows(rng, tenant_id, reference, count, counters, prefix):
        data = formatters[table].write_row(row)
        if data:
            chunks[table].append(data)
        if table == "invoices":
            produced += 1
            if produced % _SEED_BLOCK == 0:
                send_block()
    if produced % _SEED_BLOCK:
        send_block()
    sender.send(
        _Counters(dict(counters.by_year), dict(counters.by_contract), counters.line_rows, counters.sample_number)
    )
    sender.close()


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it on SQLite (UUID hex, naive UTC text, ISO dates)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _seed_sqlite(url: str, tenant_id: uuid.UUID, count: int, prefix: str) -> _Counters:
    rng = random.Random(f"{SEED}:{count}:{tenant_id}")
    now = datetime.now(UTC)
    reference, reference_rows = _reference_rows(rng, tenant_id, now)
    counters = _Counters()
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN IMMEDIATE")

        def insert(table: str, rows: Sequence[Sequence[Any]]) -> None:
            columns = _COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))

        for table in _TABLE_ORDER:
            insert(table, reference_rows[table])
        pending: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for table, row in _invoice_rows(rng, tenant_id, reference, count, counters, prefix):
            pending[table].append(row)
            if len(pending["invoices"]) >= 20_000 and table == "invoices":
                for name in ("invoices", "invoice_lines", "invoice_payment_means"):
                    insert(name, pending[name])
                    pending[name].clear()
        for name in ("invoices", "invoice_lines", "invoice_payment_means"):
            insert(name, pending[name])
        _finish_reference(reference_rows, counters, tenant_id)
        conn.executemany(
            "UPDATE contracts SET last_number_in_contract = ? WHERE id = ?",
            [(row[6], row[0].hex) for row in reference_rows["contracts"] if row[6]],
        )
        conn.executemany(
            "INSERT INTO invoice_number_sequences (tenant_id, year, last_value) VALUES (?, ?, ?)",
            [(t.hex, y, v) for t, y, v in reference_rows["invoice_number_sequences"]],
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return counters


async def seed_tenant(db: Database, url: str, name: str, count: int, *, reuse: bool = False) -> SeededTenant:
    """The tenant `name` with `count` invoices: kept if `reuse` and it already has exactly that
    many, else seeded (the tenant must not exist yet). A new API key either way."""
    started = time.perf_counter()
    found = await existing_tenant(db, name)
    if found is not None and not (reuse and found[1] == count):
        raise RuntimeError(f"tenant {name!r} exists with {found[1]} invoices; recreate the bench database")
    tenant_id, key = await new_key(db, name)
    prefix = f"{name}-inv-"
    if found is None:
        seed = _seed_postgresql if not db.is_sqlite else _seed_sqlite
        counters = await asyncio.to_thread(seed, url, tenant_id, count, prefix)
        await compact_rollup_tables(db)  # one rollup row per group, as the service's worker leaves them
        line_rows, sample = counters.line_rows, counters.sample_number
    else:
        line_rows, sample = await _describe_existing(db, tenant_id)
    return SeededTenant(
        name=name,
        tenant_id=tenant_id,
        api_key=key,
        invoices=count,
        line_rows=line_rows,
        data_source=DATA_SOURCES[0],
        customer_ids=tuple(f"cus_{i + 1:05d}" for i in range(0, CUSTOMERS, len(DATA_SOURCES))),
        plan_ids=tuple(p[0] for p in PLANS),
        sample_invoice_number=sample,
        seconds=time.perf_counter() - started,
    )


async def _describe_existing(db: Database, tenant_id: uuid.UUID) -> tuple[int, str]:
    """Export row count (with lines) and a sample invoice number of an already seeded tenant."""
    async with db.read() as session:
        invoices = int(
            await session.scalar(select(func.count()).select_from(m.Invoice).where(m.Invoice.tenant_id == tenant_id))
            or 0
        )
        with_lines = int(
            await session.scalar(
                select(func.count(func.distinct(m.InvoiceLine.invoice_id)))
                .join(m.Invoice, m.Invoice.id == m.InvoiceLine.invoice_id)
                .where(m.Invoice.tenant_id == tenant_id)
            )
            or 0
        )
        lines = int(
            await session.scalar(
                select(func.count())
                .select_from(m.InvoiceLine)
                .join(m.Invoice, m.Invoice.id == m.InvoiceLine.invoice_id)
                .where(m.Invoice.tenant_id == tenant_id)
            )
            or 0
        )
        sample = await session.scalar(
            select(m.Invoice.invoice_number)
            .where(m.Invoice.tenant_id == tenant_id)
            .order_by(m.Invoice.issue_date, m.Invoice.id)
            .offset(invoices // 2)
            .limit(1)
        )
    return invoices - with_lines + lines, str(sample)


def prepare_database(url: str, *, recreate: bool) -> None:
    """A migrated bench database (recreated first if asked; SQLite: the file removed)."""
    if make_url(url).get_backend_name() == "postgresql":
        if recreate:
            recreate_postgresql_database(url)
    elif recreate:
        from pathlib import Path

        path = Path(sqlite_path(url))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    migrate.upgrade(url)


def load_reference(url: str, tenant_id: uuid.UUID) -> _Reference:
    """A seeded tenant's reference rows read back (PostgreSQL), for generating more invoices."""
    with psycopg.connect(libpq_url(url)) as conn:
        sources = [
            r[0] for r in conn.execute("SELECT id FROM data_sources WHERE tenant_id = %s ORDER BY name", (tenant_id,))
        ]
        customers = [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT id, data_source_id, external_id, company_id FROM customers "
                "WHERE tenant_id = %s ORDER BY external_id",
                (tenant_id,),
            )
        ]
        contracts = [
            (r[0], r[1])
            for r in conn.execute("SELECT id, customer_id FROM contracts WHERE tenant_id = %s", (tenant_id,))
        ]
        plans: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for plan_id, source_id in conn.execute(
            "SELECT id, data_source_id FROM plans WHERE tenant_id = %s ORDER BY external_id", (tenant_id,)
        ):
            plans[source_id].append(plan_id)
        issuers = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM companies WHERE tenant_id = %s AND external_id LIKE 'supplier%%' ORDER BY external_id",
                (tenant_id,),
            )
        ]
        payment_means = [r[0] for r in conn.execute("SELECT id FROM payment_means WHERE tenant_id = %s", (tenant_id,))]
    return _Reference(sources, customers, contracts, plans, issuers, payment_means)


def copy_invoices_rolled_back(url: str, tenant_id: uuid.UUID, count: int) -> float:
    """Seconds to COPY `count` generated invoice rows into `invoices` (all indexes in place),
    in a transaction that is then rolled back: the bulk upsert's ceiling."""
    reference = load_reference(url, tenant_id)
    rng = random.Random(SEED)
    rows = [
        row
        for table, row in _invoice_rows(rng, tenant_id, reference, count, _Counters(), "ceiling-")
        if table == "invoices"
    ]
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(f"COPY invoices ({', '.join(_COLUMNS['invoices'])}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def insert_invoices_rolled_back_sqlite(url: str, tenant_id: uuid.UUID, count: int) -> float:
    """SQLite's counterpart of `copy_invoices_rolled_back`: one executemany in one transaction."""
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    try:
        reference = _Reference(
            data_source_ids=[],
            customers=[(uuid.uuid4(), uuid.uuid4(), "", None)] * CUSTOMERS,
            contracts=[(uuid.uuid4(), uuid.uuid4())] * CONTRACTS,
            plans=defaultdict(lambda: [None] * len(PLANS)),
            issuers=[None] * ISSUERS,
            payment_means=[uuid.uuid4()] * PAYMENT_MEANS,
        )
        rng = random.Random(SEED)
        rows = []
        for table, row in _invoice_rows(rng, tenant_id, reference, count, _Counters(), "ceiling-"):
            if table == "invoices":
                # No parents in this ceiling: the foreign keys are left empty.
                values = list(row)
                for index in (3, 9, 10, 12, 13, 14):
                    values[index] = None
                rows.append([_sqlite_value(v) for v in values])
        columns = _COLUMNS["invoices"]
        sql = f"INSERT INTO invoices ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        conn.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        conn.executemany(sql, rows)
        seconds = time.perf_counter() - started
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return seconds
