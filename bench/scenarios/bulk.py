"""4. BulkUpsert: 100,000 invoices in batches of 1,000 over gRPC (`--bulk-concurrency` batches in
flight, default 1), three
passes: fresh, the identical re-send (must rewrite no row: `n_tup_upd` of `invoices` in
`pg_stat_user_tables` and every row's xmin are checked), then with 10% of the items changed.

Ceiling: COPY of as many invoice rows into `invoices` (indexes in place) through psycopg, in a
transaction rolled back (SQLite: one executemany). Each repetition imports a fresh set of
external ids into a tenant of its own, so N of the main tenant never changes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import psycopg
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import import_service_pb2_grpc

from bench.context import BenchContext
from bench.report import Figure, median
from bench.seed import (
    SeededTenant,
    copy_invoices_rolled_back,
    insert_invoices_rolled_back_sqlite,
    libpq_url,
    seed_tenant,
)

NAME = "bulk"
FRESH_TARGET = 25_000
RESEND_TARGET = 50_000
TYPES = ("subscription", "subscription", "subscription", "one-time", "refund", "cancellation")
CURRENCIES = ("USD", "USD", "EUR", "GBP", "JPY")


def batches(
    tenant: SeededTenant, tag: str, count: int, size: int, changed_every: int = 0
) -> list[ipb.BulkUpsertInvoicesRequest]:
    """`count` invoices as requests of `size`; every `changed_every`-th item gets a new amount."""
    requests = []
    for start in range(0, count, size):
        items = []
        for index in range(start, min(count, start + size)):
            issued = date(2025, 1, 1) + timedelta(days=index % 400)
            invoice_type = TYPES[index % len(TYPES)]
            amount = 1000 + (index * 7919) % 90_000
            if changed_every and index % changed_every == 0:
                amount += 100
            items.append(
                ipb.InvoiceImport(
                    id=f"{tag}-{index:07d}",
                    customer_id=tenant.customer_ids[index % len(tenant.customer_ids)],
                    data_source=tenant.data_source,
                    type=invoice_type,
                    date=issued.isoformat(),
                    amount_cents=amount,
                    currency=CURRENCIES[index % len(CURRENCIES)],
                    plan_id=tenant.plan_ids[index % len(tenant.plan_ids)] if invoice_type == "subscription" else "",
                    subscription_id=f"sub_{index % 997}" if invoice_type == "subscription" else "",
                    start_date=issued.isoformat(),
                    end_date=(issued + timedelta(days=30)).isoformat(),
                    quantity=1 + index % 5,
                    discount=0,
                )
            )
        requests.append(ipb.BulkUpsertInvoicesRequest(invoices=items))
    return requests


async def send(
    ctx: BenchContext, tenant: SeededTenant, requests: list[ipb.BulkUpsertInvoicesRequest]
) -> tuple[dict[int, int], float]:
    """(count per import status, seconds) for sending the batches, `bulk_concurrency` at a time
    (an importer with that many connections; each server process can take one)."""
    stub = import_service_pb2_grpc.ImportServiceStub(ctx.channel)
    metadata = ctx.metadata(tenant)
    counts: dict[int, int] = {}
    pending = iter(requests)

    async def sender() -> None:
        for request in pending:
            reply = await stub.BulkUpsertInvoices(request, metadata=metadata)
            for result in reply.results:
                counts[result.import_status] = counts.get(result.import_status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(ctx.settings.bulk_concurrency)))
    return counts, time.perf_counter() - started


def _invoice_stats(ctx: BenchContext, tenant: SeededTenant) -> tuple[int, str]:
    """(n_tup_upd of invoices, a digest of the tenant's rows' xmin: any rewrite changes it)."""
    with psycopg.connect(libpq_url(ctx.settings.url)) as conn:
        updated = conn.execute("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'invoices'").fetchone()
        digest = conn.execute(
            "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM invoices WHERE tenant_id = %s",
            (tenant.tenant_id,),
        ).fetchone()
    assert updated is not None and digest is not None
    return int(updated[0]), str(digest[0])


async def run(ctx: BenchContext) -> list[Figure]:
    count, size = ctx.settings.bulk_invoices, ctx.settings.bulk_batch
    fresh_rates, resend_rates, changed_rates, ceiling_rates = [], [], [], []
    rewritten_rows = 0
    stats_checked = False
    updated_during_resend = 0
    for repetition in range(ctx.settings.repetitions):
        tenant = await seed_tenant(ctx.db, ctx.settings.url, f"bench-import-{time.time_ns()}", 0)
        if ctx.is_postgresql:
            ceiling_seconds = await asyncio.to_thread(
                copy_invoices_rolled_back, ctx.settings.url, tenant.tenant_id, count
            )
        else:
            ceiling_seconds = await asyncio.to_thread(
                insert_invoices_rolled_back_sqlite, ctx.settings.url, tenant.tenant_id, count
            )
        ceiling_rates.append(count / ceiling_seconds)
        tag = f"r{repetition}"
        fresh = batches(tenant, tag, count, size)
        changed = batches(tenant, tag, count, size, changed_every=10)
        counts, seconds = await send(ctx, tenant, fresh)
        if counts != {ipb.IMPORT_STATUS_INSERTED: count}:
            raise AssertionError(f"fresh pass: {counts}")
        fresh_rates.append(count / seconds)
        if ctx.is_postgresql:
            if not stats_checked:
                await asyncio.sleep(ctx.settings.stats_wait)
            updated_before, digest_before = await asyncio.to_thread(_invoice_stats, ctx, tenant)
        counts, seconds = await send(ctx, tenant, fresh)
        if counts != {ipb.IMPORT_STATUS_UNCHANGED: count}:
            raise AssertionError(f"identical re-send: {counts}")
        resend_rates.append(count / seconds)
        if ctx.is_postgresql:
            if not stats_checked:
                await asyncio.sleep(ctx.settings.stats_wait)
            updated_after, digest_after = await asyncio.to_thread(_invoice_stats, ctx, tenant)
            rewritten_rows += digest_after != digest_before
            if not stats_checked:
                updated_during_resend = updated_after - updated_before
                stats_checked = True
        counts, seconds = await send(ctx, tenant, changed)
        expected_updates = len(range(0, count, 10))
        if counts != {
            ipb.IMPORT_STATUS_UPDATED: expected_updates,
            ipb.IMPORT_STATUS_UNCHANGED: count - expected_updates,
        }:
            raise AssertionError(f"10% changed pass: {counts}")
        changed_rates.append(count / seconds)
    ceiling = median(ceiling_rates)
    ceiling_name = "COPY into invoices" if ctx.is_postgresql else "executemany INSERT"
    figures = [
        Figure(
            NAME,
            f"fresh rows/s ({count:,})",
            median(fresh_rates),
            "rows/s",
            ceiling,
            ceiling_name,
            target=f">= {FRESH_TARGET:,}/s",
            passed=median(fresh_rates) >= FRESH_TARGET,
            note=f"the target is {FRESH_TARGET / ceiling:.1f}x the ceiling" if ceiling < FRESH_TARGET else "",
        ),
        Figure(
            NAME,
            "identical re-send rows/s",
            median(resend_rates),
            "rows/s",
            ceiling,
            ceiling_name,
            target=f">= {RESEND_TARGET:,}/s",
            passed=median(resend_rates) >= RESEND_TARGET,
        ),
        Figure(NAME, "10% changed rows/s", median(changed_rates), "rows/s", ceiling, ceiling_name),
    ]
    if ctx.is_postgresql:
        figures.append(
            Figure(
                NAME,
                "rows rewritten by the identical re-send",
                float(updated_during_resend),
                "rows",
                target="0 (n_tup_upd, xmin)",
                passed=updated_during_resend == 0 and rewritten_rows == 0,
                note=(
                    f"n_tup_upd delta {updated_during_resend}"
                    + (" (not awaited: --stats-wait 0)" if not ctx.settings.stats_wait else "")
                    + f"; xmin changed in {rewritten_rows} of {ctx.settings.repetitions} passes"
                ),
            )
        )
    return figures
