"""1. List: a page of 50 (filtered, sorted) over gRPC at concurrency 1 and 32.

Ceilings, measured in the same run: the same SQL the List runs (captured from the service
layer), replayed through the database driver alone from a separate process; and a trivial
unary rpc (grpc.health.v1.Health/Check) on the same servers through the same load generator.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import tempfile
from pathlib import Path

from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc
from invoice_rpc.v1 import resources_pb2 as pb

from bench.context import BenchContext
from bench.loadgen import LoadResult, grpc_load, percentile
from bench.report import Figure, median
from bench.seed import libpq_url, sqlite_path
from invoice_rpc.domain.enums import BillingType, InvoiceStatus, SortDirection, SortField
from invoice_rpc.service.invoice_queries import (
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    list_invoice_parts,
    list_invoices,
)

NAME = "list"
LIST_METHOD = "/invoice_rpc.v1.InvoiceService/ListInvoices"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
PAGE_SIZE = 50
CONCURRENCIES = (1, 32)
P99_TARGET_MS = 25.0


def list_request() -> isvc.ListInvoicesRequest:
    """Paid subscription invoices, newest issue date first: a third of all rows match."""
    return isvc.ListInvoicesRequest(
        filter=isvc.InvoiceFilter(billing_types=[pb.BILLING_TYPE_SUBSCRIPTION], statuses=[pb.INVOICE_STATUS_PAID]),
        sort_field=isvc.INVOICE_SORT_FIELD_ISSUE_DATE,
        sort_direction=isvc.SORT_DIRECTION_DESC,
        page_size=PAGE_SIZE,
    )


DOMAIN_QUERY = InvoiceQuery(billing_types=(BillingType.SUBSCRIPTION,), statuses=(InvoiceStatus.PAID,))
DOMAIN_SORT = InvoiceSort(field=SortField.ISSUE_DATE, direction=SortDirection.DESC)


async def replay_sql(ctx: BenchContext, statements: list[tuple[str, object]], concurrency: int) -> LoadResult:
    """The statements as one unit, through the driver alone, in a separate process."""
    spec = {
        "dialect": ctx.settings.database,
        "url": libpq_url(ctx.settings.url) if ctx.is_postgresql else "",
        "path": "" if ctx.is_postgresql else sqlite_path(ctx.settings.url),
        "statements": statements,
        "binary": ctx.is_postgresql,
        "concurrency": concurrency,
        "seconds": ctx.settings.load_seconds,
    }
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as directory:
        spec_path = Path(directory) / "spec.pickle"
        spec_path.write_bytes(pickle.dumps(spec))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sql_replay", str(spec_path), stdout=asyncio.subprocess.PIPE
        )
        output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("bench.sql_replay failed")
    result = json.loads(output)
    latencies = sorted(result["latencies_ms"])
    return LoadResult(
        requests=len(latencies),
        errors=0,
        seconds=result["seconds"],
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        generator_cpu_seconds=0.0,
    )


def _p99_bound(concurrency: int, sql_rate: float) -> str:
    """What the p99 target asks of throughput. The load generator keeps `concurrency` calls in
    flight, so the mean latency is concurrency / throughput (Little's law), and a p99 under the
    target needs at least a mean under it."""
    needed = concurrency / (P99_TARGET_MS / 1000)
    return (
        f"p99 < {P99_TARGET_MS:.0f} ms needs >= {needed:,.0f} req/s at c{concurrency}, driver only does {sql_rate:,.0f}"
    )


async def run(ctx: BenchContext) -> list[Figure]:
    request = list_request()
    stub = invoice_service_pb2_grpc.InvoiceServiceStub(ctx.channel)
    reply = await stub.ListInvoices(request, metadata=ctx.metadata())
    if len(reply.invoices) != min(PAGE_SIZE, ctx.big.invoices) or not all(
        i.billing_type == pb.BILLING_TYPE_SUBSCRIPTION and i.status == pb.INVOICE_STATUS_PAID for i in reply.invoices
    ):
        raise AssertionError(f"List returned {len(reply.invoices)} invoices, not a page of paid subscriptions")

    # What the server runs for a basic-view page: on PostgreSQL the page's parts (stored own-field
    # bytes and linked values, read in binary), elsewhere its records. The connection is checked
    # out before the capture starts, so that opening or pinging it is not captured.
    if ctx.is_postgresql:
        async with ctx.db.read_driver() as connection, ctx.captured_sql() as statements:
            await list_invoice_parts(
                connection, ctx.big.tenant_id, DOMAIN_QUERY, DOMAIN_SORT, PageRequest(page_size=PAGE_SIZE)
            )
    else:
        async with ctx.db.read() as session:
            await session.connection()
            async with ctx.captured_sql() as statements:
                await list_invoices(
                    session, ctx.big.tenant_id, DOMAIN_QUERY, DOMAIN_SORT, PageRequest(page_size=PAGE_SIZE)
                )
    if not statements:
        raise AssertionError("no SQL was captured for the list: its driver-only ceiling cannot be measured")
    body = request.SerializeToString()
    figures: list[Figure] = []
    seconds = ctx.settings.load_seconds

    async def one_round(concurrency: int) -> tuple[LoadResult, LoadResult, LoadResult]:
        """The list and its two ceilings, one after the other: each repetition measures all three,
        so that the shared machine's drift over a run moves a figure and its ceilings alike,
        rather than favouring whichever of three blocks ran in a quiet minute."""
        listed = await grpc_load(
            ctx.fleet.port, LIST_METHOD, body, key=ctx.big.api_key, concurrency=concurrency, seconds=seconds
        )
        trivial = await grpc_load(
            ctx.fleet.port, HEALTH_METHOD, b"", key=None, concurrency=concurrency, seconds=seconds
        )
        return listed, trivial, await replay_sql(ctx, statements, concurrency)

    for concurrency in CONCURRENCIES:
        rounds = await ctx.repeat(lambda c=concurrency: one_round(c))  # type: ignore[misc]
        lists = [listed for listed, _, _ in rounds]
        trivial = [trivial for _, trivial, _ in rounds]
        sql = [sql for _, _, sql in rounds]
        if any(r.errors for r in lists + trivial):
            raise AssertionError(f"load generator saw non-200 answers at concurrency {concurrency}")
        rate = median([r.rate for r in lists])
        trivial_rate = median([r.rate for r in trivial])
        sql_rate = median([r.rate for r in sql])
        p99 = median([r.p99_ms for r in lists])
        gen_share = median([r.generator_cpu_share for r in lists])
        at_32 = concurrency == 32
        sql_is_lower = sql_rate <= trivial_rate
        target = ">= 50% of the lower ceiling"
        figures += [
            Figure(
                NAME,
                f"c{concurrency} requests/s",
                rate,
                "req/s",
                sql_rate,
                "same SQL, driver only",
                target=target if at_32 and sql_is_lower else "",
                passed=(rate >= 0.5 * sql_rate) if at_32 and sql_is_lower else None,
                note=f"{len(statements)} statement(s) per list",
            ),
            Figure(
                NAME,
                f"c{concurrency} requests/s",
                rate,
                "req/s",
                trivial_rate,
                "trivial rpc",
                target=target if at_32 and not sql_is_lower else "",
                passed=(rate >= 0.5 * trivial_rate) if at_32 and not sql_is_lower else None,
                note=f"load generator CPU {gen_share:.0%} of a core",
            ),
            Figure(NAME, f"c{concurrency} p50", median([r.p50_ms for r in lists]), "ms"),
            Figure(
                NAME,
                f"c{concurrency} p99",
                p99,
                "ms",
                target=f"< {P99_TARGET_MS:.0f} ms" if at_32 else "",
                passed=(p99 < P99_TARGET_MS) if at_32 else None,
                note=f"same SQL, driver only: p99 {median([r.p99_ms for r in sql]):.1f} ms; "
                f"trivial rpc: p99 {median([r.p99_ms for r in trivial]):.1f} ms"
                + (f"; {_p99_bound(concurrency, sql_rate)}" if at_32 else ""),
            ),
        ]
    return figures
