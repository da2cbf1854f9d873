"""5. Summary: SummarizeInvoices (per currency, billing type and status) over every invoice of
the tenant and over one calendar year of issue dates: milliseconds per call."""

from __future__ import annotations

import time

from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc

from bench.context import BenchContext
from bench.report import Figure, median

NAME = "summary"
TARGET_MS = 300.0


async def timed_summary(ctx: BenchContext, request: isvc.SummarizeInvoicesRequest) -> tuple[int, float]:
    stub = invoice_service_pb2_grpc.InvoiceServiceStub(ctx.channel)
    started = time.perf_counter()
    reply = await stub.SummarizeInvoices(request, metadata=ctx.metadata())
    return reply.invoice_count, (time.perf_counter() - started) * 1000


async def run(ctx: BenchContext) -> list[Figure]:
    everything = isvc.SummarizeInvoicesRequest()
    year = isvc.SummarizeInvoicesRequest(
        filter=isvc.InvoiceFilter(
            start_date=Date(year=2025, month=1, day=1), end_date=Date(year=2025, month=12, day=31)
        )
    )
    await timed_summary(ctx, everything)  # warm the cache, as a busy server's would be
    all_runs = await ctx.repeat(lambda: timed_summary(ctx, everything))
    year_runs = await ctx.repeat(lambda: timed_summary(ctx, year))
    if all_runs[0][0] != ctx.big.invoices:
        raise AssertionError(f"summary counted {all_runs[0][0]} invoices, expected {ctx.big.invoices}")
    if not 0 < year_runs[0][0] < ctx.big.invoices:
        raise AssertionError(f"summary of 2025 counted {year_runs[0][0]} invoices")
    all_ms = median([ms for _, ms in all_runs])
    return [
        Figure(
            NAME,
            f"all {ctx.big.invoices:,} invoices",
            all_ms,
            "ms",
            target=f"< {TARGET_MS:.0f} ms",
            passed=all_ms < TARGET_MS,
        ),
        Figure(NAME, f"issue year 2025 ({year_runs[0][0]:,} invoices)", median([ms for _, ms in year_runs]), "ms"),
    ]
