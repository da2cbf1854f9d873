"""3. Typed stream: all N invoices as StreamInvoices batches (1,000 per message, basic view),
received and parsed by a Python client: invoices/s at the client.

Ceiling (PostgreSQL): the statements StreamInvoices runs, captured from the service layer (the
ranges' boundaries, then one statement per range of invoices: service/invoice_ranges.py),
replayed through psycopg alone as the service runs them: the boundaries through a server-side
cursor in a REPEATABLE READ transaction whose snapshot the helper connections import, the ranges
prepared, in binary, on as many helpers at once, nothing parsed: how fast this machine's
PostgreSQL produces the invoices' wire bytes, with no server, gRPC or client.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc

from bench.context import BenchContext
from bench.report import Figure, median
from bench.seed import libpq_url
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.rpc.invoice_filters import sort_from_pb
from invoice_rpc.rpc.invoice_wire import invoice_wire_column
from invoice_rpc.service.invoice_queries import InvoiceQuery
from invoice_rpc.service.invoice_ranges import HELPER_SETTINGS, RANGE_ROWS, STREAM_HELPERS, stream_projected_ranges
from invoice_rpc.storage.database import POSTGRESQL_SESSION_OPTIONS

NAME = "stream"
BATCH_SIZE = 1000
TARGET_PER_SECOND = 100_000


def stream_request() -> isvc.StreamInvoicesRequest:
    return isvc.StreamInvoicesRequest(batch_size=BATCH_SIZE)


async def stream_once(ctx: BenchContext) -> tuple[int, float]:
    stub = invoice_service_pb2_grpc.InvoiceServiceStub(ctx.channel)
    received = 0
    started = time.perf_counter()
    async for reply in stub.StreamInvoices(stream_request(), metadata=ctx.metadata()):
        received += len(reply.invoices)
    return received, time.perf_counter() - started


Statement = tuple[str, dict[str, Any]]


async def stream_statements(ctx: BenchContext) -> tuple[Statement, Statement, Statement]:
    """(range boundaries, first range, next range): the statements StreamInvoices sends for
    stream_request() on PostgreSQL, with their parameters."""
    request = stream_request()
    violations = ViolationCollector()
    sort = sort_from_pb(request.sort_field, request.sort_direction, violations)
    violations.raise_if_any()
    async with ctx.db.shared_snapshot() as snapshot, ctx.captured_sql() as statements:
        # Ranges of one batch, so that both range statements run whatever N is; the boundaries
        # are then replayed with the service's range size.
        batches = stream_projected_ranges(
            snapshot,
            ctx.big.tenant_id,
            InvoiceQuery(),
            sort,
            invoice_wire_column,
            batch_size=BATCH_SIZE,
            range_rows=BATCH_SIZE,
        )
        await anext(batches)
        await anext(batches)  # the second range has been read: its statement was sent
        await batches.aclose()
    selects = [(sql, dict(parameters or {})) for sql, parameters in statements if sql.lstrip().startswith("SELECT")]
    boundaries = [s for s in selects if "invoice_wire" not in s[0] and "pg_export_snapshot" not in s[0]]
    first = [s for s in selects if "invoice_wire" in s[0] and "after_value" not in s[1]]
    following = [s for s in selects if "invoice_wire" in s[0] and "after_value" in s[1]]
    # Every later range runs the same statement: one of them is the one to replay.
    if len(boundaries) != 1 or len(first) != 1 or not following or len({sql for sql, _ in following}) != 1:
        captured = [sql[:80] for sql, _ in selects]
        raise AssertionError(f"expected the stream's boundaries and two ranges, captured {captured}")
    service_range_rows = BATCH_SIZE * max(1, RANGE_ROWS // BATCH_SIZE)  # as stream_projected_ranges rounds it
    boundaries_sql, boundaries_parameters = boundaries[0]
    return (boundaries_sql, boundaries_parameters | {"range_rows": service_range_rows}), first[0], following[0]


def read_with_driver(url: str, boundaries: Statement, first: Statement, following: Statement) -> tuple[int, float]:
    """Every range of the stream through psycopg, STREAM_HELPERS ranges at once, all reading the
    snapshot of the transaction that reads the ranges' boundaries."""
    helpers = [psycopg.connect(url, options=POSTGRESQL_SESSION_OPTIONS) for _ in range(STREAM_HELPERS)]
    idle = list(helpers)

    def read_range(after: tuple[Any, Any] | None, last: tuple[Any, Any]) -> int:
        connection = idle.pop()
        try:
            sql, parameters = first if after is None else following
            values = parameters | {"last_value": last[0], "last_id": last[1]}
            if after is not None:
                values |= {"after_value": after[0], "after_id": after[1]}
            with connection.cursor(binary=True) as cursor:
                return len(cursor.execute(sql, values, prepare=True).fetchall())
        finally:
            idle.append(connection)

    try:
        with psycopg.connect(url, options=POSTGRESQL_SESSION_OPTIONS) as leader:
            started = time.perf_counter()
            leader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = leader.execute("SELECT pg_export_snapshot()").fetchone()
            assert snapshot is not None
            for helper in helpers:
                helper.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                helper.execute(f"SET TRANSACTION SNAPSHOT '{snapshot[0]}'")
                for setting in HELPER_SETTINGS:  # as the service's helpers run the ranges
                    helper.execute(setting)
            leader.execute("SET LOCAL jit = off")
            with ThreadPoolExecutor(STREAM_HELPERS) as pool, leader.cursor(name="bench_stream_boundaries") as cursor:
                cursor.execute(*boundaries)
                after = None
                futures = []
                for sort_value, invoice_id, _position in cursor:
                    last = (sort_value, invoice_id)
                    futures.append(pool.submit(read_range, after, last))
                    after = last
                rows = sum(future.result() for future in futures)
            return rows, time.perf_counter() - started
    finally:
        for helper in helpers:
            helper.close()


async def run(ctx: BenchContext) -> list[Figure]:
    runs = await ctx.repeat(lambda: stream_once(ctx))
    for received, _ in runs:
        if received != ctx.big.invoices:
            raise AssertionError(f"stream gave {received} invoices, expected {ctx.big.invoices}")
    rate = median([received / seconds for received, seconds in runs])
    ceiling = None
    if ctx.is_postgresql:
        boundaries, first, following = await stream_statements(ctx)
        url = libpq_url(ctx.settings.url)
        reads = await ctx.repeat(lambda: asyncio.to_thread(read_with_driver, url, boundaries, first, following))
        for rows, _ in reads:
            if rows != ctx.big.invoices:
                raise AssertionError(f"the stream's SQL gave {rows} rows, expected {ctx.big.invoices}")
        ceiling = median([rows / seconds for rows, seconds in reads])
    return [
        Figure(
            NAME,
            f"typed stream invoices/s ({ctx.big.invoices:,})",
            rate,
            "inv/s",
            ceiling=ceiling,
            ceiling_name=f"same SQL, driver only, {STREAM_HELPERS} backends (wire bytes, no parse)",
            target=f">= {TARGET_PER_SECOND:,}/s",
            passed=rate >= TARGET_PER_SECOND,
        )
    ]
