"""3. Typed stream: all N invoices as StreamInvoices batches (1,000 per message, basic view),
received and parsed by a Python client: invoices/s at the client.

Ceiling (PostgreSQL): the statement StreamInvoices runs, captured from the service layer, read
through psycopg alone with a server-side cursor, 1,000 rows a fetch, nothing parsed: how fast
this machine's PostgreSQL produces the invoices' wire bytes, with no server, gRPC or client.
"""

from __future__ import annotations

import asyncio
import time
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
from invoice_rpc.service.invoice_queries import InvoiceQuery, stream_projected_batches
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


async def stream_statement(ctx: BenchContext) -> tuple[str, Any]:
    """The (statement, parameters) StreamInvoices sends for stream_request() on PostgreSQL."""
    request = stream_request()
    violations = ViolationCollector()
    sort = sort_from_pb(request.sort_field, request.sort_direction, violations)
    violations.raise_if_any()
    async with ctx.db.read() as session:
        await session.connection()
        async with ctx.captured_sql() as statements:
            batches = stream_projected_batches(
                session, ctx.big.tenant_id, InvoiceQuery(), sort, invoice_wire_column, batch_size=BATCH_SIZE
            )
            await anext(batches)
            await batches.aclose()
    selects = [(sql, parameters) for sql, parameters in statements if not sql.startswith("SET LOCAL")]
    if len(selects) != 1:
        raise AssertionError(f"expected the stream's one statement, captured {[sql[:80] for sql, _ in selects]}")
    return selects[0]


def read_with_driver(url: str, statement: str, parameters: Any) -> tuple[int, float]:
    """Every row of `statement` through a server-side cursor, as the server reads it."""
    with psycopg.connect(url, options=POSTGRESQL_SESSION_OPTIONS) as connection:
        connection.execute("SET LOCAL jit = off")  # as the service does for this statement
        rows = 0
        started = time.perf_counter()
        with connection.cursor(name="bench_stream_ceiling") as cursor:
            cursor.execute(statement, parameters)
            while batch := cursor.fetchmany(BATCH_SIZE):
                rows += len(batch)
        return rows, time.perf_counter() - started


async def run(ctx: BenchContext) -> list[Figure]:
    runs = await ctx.repeat(lambda: stream_once(ctx))
    for received, _ in runs:
        if received != ctx.big.invoices:
            raise AssertionError(f"stream gave {received} invoices, expected {ctx.big.invoices}")
    rate = median([received / seconds for received, seconds in runs])
    ceiling = None
    if ctx.is_postgresql:
        statement, parameters = await stream_statement(ctx)
        url = libpq_url(ctx.settings.url)
        reads = await ctx.repeat(lambda: asyncio.to_thread(read_with_driver, url, statement, parameters))
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
            ceiling_name="same SQL, driver only (wire bytes, no parse)",
            target=f">= {TARGET_PER_SECOND:,}/s",
            passed=rate >= TARGET_PER_SECOND,
        )
    ]
