"""3. Typed stream: all N invoices as StreamInvoices batches (1,000 per message, basic view),
received and parsed by a Python client: invoices/s at the client."""

from __future__ import annotations

import time

from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc

from bench.context import BenchContext
from bench.report import Figure, median

NAME = "stream"
BATCH_SIZE = 1000
TARGET_PER_SECOND = 100_000


async def stream_once(ctx: BenchContext) -> tuple[int, float]:
    stub = invoice_service_pb2_grpc.InvoiceServiceStub(ctx.channel)
    request = isvc.StreamInvoicesRequest(batch_size=BATCH_SIZE)
    received = 0
    started = time.perf_counter()
    async for reply in stub.StreamInvoices(request, metadata=ctx.metadata()):
        received += len(reply.invoices)
    return received, time.perf_counter() - started


async def run(ctx: BenchContext) -> list[Figure]:
    runs = await ctx.repeat(lambda: stream_once(ctx))
    for received, _ in runs:
        if received != ctx.big.invoices:
            raise AssertionError(f"stream gave {received} invoices, expected {ctx.big.invoices}")
    rate = median([received / seconds for received, seconds in runs])
    return [
        Figure(
            NAME,
            f"typed stream invoices/s ({ctx.big.invoices:,})",
            rate,
            "inv/s",
            target=f">= {TARGET_PER_SECOND:,}/s",
            passed=rate >= TARGET_PER_SECOND,
        )
    ]
