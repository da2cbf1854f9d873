"""2. Export: all N invoices as CSV (with line items: one row per line) over gRPC (HttpBody
stream) and through Envoy (seed 000's REST download, to a file with curl), rows/s and the
servers' peak resident memory, also for the small tenant to show memory does not grow with N.

Ceiling: PostgreSQL's own `COPY (SELECT …) TO STDOUT WITH CSV` of the same rows (the export's
joins and order, raw columns) through psycopg. On SQLite, which has no COPY: the same SELECT
through the sqlite3 module, every row fetched.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc
from sqlalchemy.dialects import postgresql, sqlite

from bench.context import BenchContext
from bench.procs import RssSampler
from bench.report import Figure, median
from bench.seed import SeededTenant, libpq_url, sqlite_path
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort, ordered_invoice_select
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import POSTGRESQL_SESSION_OPTIONS

NAME = "export"
MIB = 1024 * 1024
RSS_GROWTH_TARGET_MIB = 100
RATIO_TARGET = 0.5


def ceiling_sql(ctx: BenchContext, tenant: SeededTenant) -> str:
    """The export's rows as one SELECT: invoices with their parents, one row per line item."""
    stmt = ordered_invoice_select(tenant.tenant_id, InvoiceQuery(), InvoiceSort())
    line_columns = [c for c in m.InvoiceLine.__table__.columns if c.name not in ("id", "invoice_id")]
    stmt = stmt.add_columns(*line_columns).outerjoin(m.InvoiceLine, m.InvoiceLine.invoice_id == m.Invoice.id)
    stmt = stmt.order_by(m.InvoiceLine.position)
    dialect = postgresql.dialect() if ctx.is_postgresql else sqlite.dialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def copy_ceiling(ctx: BenchContext, tenant: SeededTenant) -> tuple[int, float]:
    sql = ceiling_sql(ctx, tenant)

    def postgresql_copy() -> tuple[int, float]:
        rows = 0
        options = POSTGRESQL_SESSION_OPTIONS  # planned as the server plans it
        with psycopg.connect(libpq_url(ctx.settings.url), options=options) as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            with cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy:
                for _ in copy:
                    rows += 1
            return rows, time.perf_counter() - started

    def sqlite_select() -> tuple[int, float]:
        rows = 0
        conn = sqlite3.connect(sqlite_path(ctx.settings.url))
        try:
            started = time.perf_counter()
            cursor = conn.execute(sql)
            while batch := cursor.fetchmany(5000):
                rows += len(batch)
            return rows, time.perf_counter() - started
        finally:
            conn.close()

    return await asyncio.to_thread(postgresql_copy if ctx.is_postgresql else sqlite_select)


async def grpc_export(ctx: BenchContext, tenant: SeededTenant) -> tuple[int, float, int]:
    """(data rows, seconds, peak server RSS bytes) of a CSV export over gRPC."""
    stub = invoice_service_pb2_grpc.InvoiceServiceStub(ctx.channel)
    request = isvc.ExportInvoicesRequest(format=isvc.EXPORT_FORMAT_CSV)
    line_ends = 0
    with RssSampler(ctx.fleet.pids) as rss:
        started = time.perf_counter()
        async for chunk in stub.ExportInvoices(request, metadata=ctx.metadata(tenant)):
            line_ends += chunk.data.count(b"\r\n")
        seconds = time.perf_counter() - started
    return line_ends - 1, seconds, rss.peak_bytes


async def envoy_export(ctx: BenchContext, tenant: SeededTenant) -> tuple[int, float]:
    """(data rows, seconds) of seed 000's CSV download through Envoy, written to a file by curl
    (or, without curl, by urllib in a thread)."""
    assert ctx.gateway is not None
    url = f"http://127.0.0.1:{ctx.gateway.http_port}/api/v1/invoice-receipts/export/csv"
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as directory:
        target = Path(directory) / "invoices.csv"
        started = time.perf_counter()
        curl = shutil.which("curl")
        if curl is not None:
            process = await asyncio.create_subprocess_exec(
                curl, "-sS", "--fail", "-o", str(target), "-H", f"Authorization: {headers['Authorization']}", url
            )
            if await process.wait() != 0:
                raise RuntimeError("curl of the Envoy export failed")
        else:

            def download() -> None:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=600) as response, target.open("wb") as file:
                    shutil.copyfileobj(response, file, 1024 * 1024)

            await asyncio.to_thread(download)
        seconds = time.perf_counter() - started
        rows = await asyncio.to_thread(lambda: target.read_bytes().count(b"\r\n") - 1)
    return rows, seconds


async def run(ctx: BenchContext) -> list[Figure]:
    big, small = ctx.big, ctx.small
    small_runs = await ctx.repeat(lambda: grpc_export(ctx, small))
    big_runs = await ctx.repeat(lambda: grpc_export(ctx, big))
    copies = await ctx.repeat(lambda: copy_ceiling(ctx, big))
    for rows, _, _ in big_runs:
        if rows != big.line_rows:
            raise AssertionError(f"gRPC export gave {rows} rows, expected {big.line_rows}")
    for rows, _, _ in small_runs:
        if rows != small.line_rows:
            raise AssertionError(f"gRPC export of the small tenant gave {rows} rows, expected {small.line_rows}")
    if copies[0][0] != big.line_rows:
        raise AssertionError(f"COPY ceiling gave {copies[0][0]} rows, expected {big.line_rows}")
    copy_rate = median([rows / seconds for rows, seconds in copies])
    grpc_rate = median([rows / seconds for rows, seconds, _ in big_runs])
    peak_small = median([peak for _, _, peak in small_runs]) / MIB
    peak_big = median([peak for _, _, peak in big_runs]) / MIB
    growth = peak_big - peak_small
    ceiling_name = "COPY TO STDOUT" if ctx.is_postgresql else "driver-only SELECT"
    figures = [
        Figure(
            NAME,
            f"gRPC CSV rows/s ({big.line_rows:,} rows)",
            grpc_rate,
            "rows/s",
            copy_rate,
            ceiling_name,
            target=f">= {RATIO_TARGET:.0%} of COPY" if ctx.is_postgresql else "",
            passed=grpc_rate >= RATIO_TARGET * copy_rate if ctx.is_postgresql else None,
        ),
        Figure(NAME, f"server peak RSS, {small.line_rows:,} rows", peak_small, "MiB"),
        Figure(NAME, f"server peak RSS, {big.line_rows:,} rows", peak_big, "MiB"),
        Figure(
            NAME,
            "peak RSS growth small -> N",
            growth,
            "MiB",
            target=f"< {RSS_GROWTH_TARGET_MIB} MiB",
            passed=growth < RSS_GROWTH_TARGET_MIB,
        ),
    ]
    if ctx.gateway is not None:
        envoy_runs = await ctx.repeat(lambda: envoy_export(ctx, big))
        for rows, _ in envoy_runs:
            if rows != big.line_rows:
                raise AssertionError(f"Envoy export gave {rows} rows, expected {big.line_rows}")
        envoy_rate = median([rows / seconds for rows, seconds in envoy_runs])
        figures.insert(
            1, Figure(NAME, "Envoy REST CSV rows/s (curl to a file)", envoy_rate, "rows/s", copy_rate, ceiling_name)
        )
    return figures
