"""6. Envoy REST vs direct gRPC on the same list and get: seed 000's face rpcs
(ListInvoiceReceipts, GetInvoiceReceipt) called directly over gRPC, and the same rpcs as
`GET /api/v1/invoice-receipts?…` and `GET /api/v1/invoice-receipts/{number}` through Envoy's
transcoder (HTTP/1.1), both at concurrency 32 from the same load generator."""

from __future__ import annotations

from invoice_rpc.v1 import receipts_face_pb2 as face
from invoice_rpc.v1 import receipts_face_pb2_grpc

from bench.context import BenchContext
from bench.loadgen import grpc_load, http_load
from bench.report import Figure, median

NAME = "rest"
CONCURRENCY = 32
TARGET_RATIO = 0.7
FACE = "/invoice_rpc.v1.InvoiceReceiptsFaceService"
# A month of paid subscriptions: a numbered page counts its matches, so the filter is narrow.
LIST_QUERY = {"type": "subscription", "status": "paid", "start_date": "2025-06-01", "end_date": "2025-06-30"}


async def run(ctx: BenchContext) -> list[Figure]:
    assert ctx.gateway is not None
    stub = receipts_face_pb2_grpc.InvoiceReceiptsFaceServiceStub(ctx.channel)
    list_request = face.ListInvoiceReceiptsRequest(**LIST_QUERY, sort="issue_date", per_page=50)  # type: ignore[arg-type]
    get_request = face.GetInvoiceReceiptRequest(invoice_number=ctx.big.sample_invoice_number)
    listed = await stub.ListInvoiceReceipts(list_request, metadata=ctx.metadata())
    got = await stub.GetInvoiceReceipt(get_request, metadata=ctx.metadata())
    if not listed.data or got.data.invoice_number != ctx.big.sample_invoice_number:
        raise AssertionError("the face's list or get did not answer as expected")
    query = "&".join(f"{k}={v}" for k, v in LIST_QUERY.items()) + "&sort=issue_date&per_page=50"
    cases = (
        ("list", "ListInvoiceReceipts", list_request.SerializeToString(), f"/api/v1/invoice-receipts?{query}", True),
        (
            "get",
            "GetInvoiceReceipt",
            get_request.SerializeToString(),
            f"/api/v1/invoice-receipts/{ctx.big.sample_invoice_number}",
            False,
        ),
    )
    seconds = ctx.settings.load_seconds
    figures = []
    for label, method, body, path, has_target in cases:
        direct = await ctx.repeat(
            lambda m=method, b=body: grpc_load(  # type: ignore[misc]
                ctx.fleet.port, f"{FACE}/{m}", b, key=ctx.big.api_key, concurrency=CONCURRENCY, seconds=seconds
            )
        )
        rest = await ctx.repeat(
            lambda p=path: http_load(  # type: ignore[misc]
                ctx.gateway.http_port,
                p,
                key=ctx.big.api_key,
                concurrency=CONCURRENCY,
                seconds=seconds,
            )
        )
        if any(r.errors for r in direct + rest):
            raise AssertionError(f"non-200 answers in the REST/gRPC {label} comparison")
        rest_rate = median([r.rate for r in rest])
        direct_rate = median([r.rate for r in direct])
        figures.append(
            Figure(
                NAME,
                f"Envoy REST {label} c{CONCURRENCY} requests/s",
                rest_rate,
                "req/s",
                direct_rate,
                "same rpc, direct gRPC",
                target=f">= {TARGET_RATIO:.0%} of gRPC" if has_target else "",
                passed=rest_rate >= TARGET_RATIO * direct_rate if has_target else None,
                note=f"REST p99 {median([r.p99_ms for r in rest]):.1f} ms, "
                f"gRPC p99 {median([r.p99_ms for r in direct]):.1f} ms",
            )
        )
    return figures
