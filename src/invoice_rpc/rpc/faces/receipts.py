"""Seed 000's face: `/api/v1/invoice-receipts` list, get, summary, export, generate-marketplace
and backfill, over the same service functions as InvoiceService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc
from google.api import httpbody_pb2
from google.protobuf import struct_pb2
from invoice_rpc.v1 import receipts_face_pb2 as face
from invoice_rpc.v1 import receipts_face_pb2_grpc

from invoice_rpc.domain.enums import BillingType, InvoiceStatus, SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, ViolationCollector
from invoice_rpc.domain.money import to_major
from invoice_rpc.rpc.faces.rest import created, parse_choice, parse_day, renamed, rfc3339
from invoice_rpc.rpc.interceptor import current_caller, current_tenant_key
from invoice_rpc.service import invoice_export
from invoice_rpc.service.backfill import backfill_invoices
from invoice_rpc.service.invoice_lookup import get_invoice_by_number
from invoice_rpc.service.invoice_queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    list_invoices,
)
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.service.invoice_summary import CurrencyTotals, summarize_invoices
from invoice_rpc.service.marketplace import billing_period, generate_marketplace_invoices
from invoice_rpc.storage.database import Database
from invoice_rpc.storage.types import utcnow

# The service names its checks after InvoiceService's request fields; this face's are flat.
_FIELD_NAMES = {"filter": "", "page_size": "per_page"}


class _Filtered(Protocol):
    """The filter and sort fields List and Export share."""

    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def start_date(self) -> str: ...
    @property
    def end_date(self) -> str: ...
    @property
    def sort(self) -> str: ...
    @property
    def dir(self) -> str: ...


def _query_and_sort(request: _Filtered, violations: ViolationCollector) -> tuple[InvoiceQuery, InvoiceSort]:
    billing_type = parse_choice(request.type, "type", BillingType, violations)
    status = parse_choice(request.status, "status", InvoiceStatus, violations)
    query = InvoiceQuery(
        billing_types=(billing_type,) if billing_type else (),
        statuses=(status,) if status else (),
        start_date=parse_day(request.start_date, "start_date", violations),
        end_date=parse_day(request.end_date, "end_date", violations),
    )
    sort = InvoiceSort(
        field=parse_choice(request.sort, "sort", SortField, violations) or SortField.CREATED_AT,
        direction=parse_choice(request.dir, "dir", SortDirection, violations) or SortDirection.DESC,
    )
    return query, sort


def _add_service_violations(violations: ViolationCollector, scratch: ViolationCollector) -> None:
    if scratch.violations:
        violations.violations.extend(renamed(InvalidArgument(scratch.violations), _FIELD_NAMES).violations)


def _major(amount_minor: int, currency: str) -> float:
    # Exact decimal -> the nearest double, which prints back as the same decimal (99.0 as 99).
    return float(to_major(amount_minor, currency))


def receipt_to_pb(record: InvoiceRecord) -> face.InvoiceReceipt:
    return face.InvoiceReceipt(
        invoice_number=record.invoice_number,
        billing_type=record.billing_type,
        status=record.status,
        total_amount=_major(record.total_minor, record.currency),
        currency=record.currency,
        created_at=rfc3339(record.created_at),
    )


def _totals_to_pb(totals: CurrencyTotals) -> face.ReceiptTotals:
    currency = totals.currency
    return face.ReceiptTotals(
        currency=currency,
        invoice_count=totals.invoice_count,
        total_amount=_major(totals.total_minor, currency),
        tax_amount=_major(totals.tax_minor, currency),
        paid_amount=_major(totals.paid_minor, currency),
        outstanding_amount=_major(totals.outstanding_minor, currency),
    )


def _filters_applied(values: dict[str, str | None]) -> struct_pb2.Struct:
    applied = struct_pb2.Struct()
    applied.update(values)  # None becomes JSON null, as the document shows absent filters
    return applied


class InvoiceReceiptsFaceServicer(receipts_face_pb2_grpc.InvoiceReceiptsFaceServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListInvoiceReceipts(
        self, request: face.ListInvoiceReceiptsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.ListInvoiceReceiptsResponse:
        violations = ViolationCollector()
        query, sort = _query_and_sort(request, violations)
        per_page = request.per_page if request.HasField("per_page") else DEFAULT_PAGE_SIZE
        page = request.page if request.HasField("page") else 1
        # Checked here rather than by the service: to it, 0 means "the default" (page size) or
        # "keyset pages" (page); this face has neither.
        if not 1 <= per_page <= MAX_PAGE_SIZE:
            violations.add("per_page", f"must be from 1 to {MAX_PAGE_SIZE} (got {per_page})")
        if page < 1:
            violations.add("page", f"must be 1 or more (got {page})")
        scratch = ViolationCollector()
        query.check(scratch)
        _add_service_violations(violations, scratch)
        violations.raise_if_any()
        async with self.db.read_autocommit() as session:
            result = await list_invoices(
                session, current_caller().tenant_id, query, sort, PageRequest(page_size=per_page, page=page)
            )
        info = result.page_info
        assert info is not None  # numbered pages always carry it
        return face.ListInvoiceReceiptsResponse(
            data=[receipt_to_pb(record) for record in result.invoices],
            pagination=face.ReceiptPagination(
                current_page=info.current_page, per_page=info.per_page, total=info.total, last_page=info.last_page
            ),
            filters_applied=_filters_applied(
                {
                    "type": request.type or None,
                    "status": request.status or None,
                    "start_date": request.start_date or None,
                    "end_date": request.end_date or None,
                    "sort": sort.field.value,
                    "dir": sort.direction.value,
                }
            ),
        )

    async def GetInvoiceReceipt(
        self, request: face.GetInvoiceReceiptRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.GetInvoiceReceiptResponse:
        async with self.db.read_autocommit() as session:
            record = await get_invoice_by_number(session, current_caller().tenant_id, request.invoice_number)
        return face.GetInvoiceReceiptResponse(data=receipt_to_pb(record))

    async def SummarizeInvoiceReceipts(
        self, request: face.SummarizeInvoiceReceiptsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.SummarizeInvoiceReceiptsResponse:
        violations = ViolationCollector()
        query = InvoiceQuery(
            start_date=parse_day(request.start_date, "start_date", violations),
            end_date=parse_day(request.end_date, "end_date", violations),
        )
        scratch = ViolationCollector()
        query.check(scratch)
        _add_service_violations(violations, scratch)
        violations.raise_if_any()
        async with self.db.read() as session:
            summary = await summarize_invoices(session, current_caller().tenant_id, query)
        by_billing_type = []
        for group in summary.billing_types:
            totals = _totals_to_pb(group.totals)
            totals.billing_type = group.billing_type.value
            by_billing_type.append(totals)
        by_status = []
        for status_group in summary.statuses:
            totals = _totals_to_pb(status_group.totals)
            totals.status = status_group.status.value
            by_status.append(totals)
        return face.SummarizeInvoiceReceiptsResponse(
            data=face.ReceiptSummary(
                invoice_count=summary.invoice_count,
                totals=[_totals_to_pb(t) for t in summary.currencies],
                by_billing_type=by_billing_type,
                by_status=by_status,
            ),
            filters_applied=_filters_applied(
                {"start_date": request.start_date or None, "end_date": request.end_date or None}
            ),
        )

    async def ExportInvoiceReceipts(
        self, request: face.ExportInvoiceReceiptsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        violations = ViolationCollector()
        query, sort = _query_and_sort(request, violations)
        export_format = parse_choice(request.format, "format", invoice_export.ExportFormat, violations)
        scratch = ViolationCollector()
        query.check(scratch)
        _add_service_violations(violations, scratch)
        # Everything is checked before the first byte: after it, a failure cannot become a 400.
        violations.raise_if_any()
        assert export_format is not None
        with_line_items = request.line_items if request.HasField("line_items") else True
        await context.send_initial_metadata(
            (("content-disposition", invoice_export.content_disposition(export_format, utcnow())),)
        )
        content_type = invoice_export.CONTENT_TYPES[export_format]
        async with self.db.read() as session:
            chunks = invoice_export.export_chunks(
                session, current_caller().tenant_id, query, sort, export_format, with_line_items=with_line_items
            )
            try:
                async for chunk in chunks:
                    # Only the first message carries the content type, as HttpBody streams do.
                    yield httpbody_pb2.HttpBody(content_type=content_type, data=chunk)
                    content_type = ""
            finally:
                await chunks.aclose()

    async def GenerateMarketplaceInvoiceReceipts(
        self, request: face.GenerateMarketplaceInvoiceReceiptsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.GenerateMarketplaceInvoiceReceiptsResponse:
        violations = ViolationCollector()
        # Seed 000's defaults: the start and the end of the current month, each on its own (the
        # core rpc's period_end defaults to the end of period_start's month instead).
        month_start, month_end = billing_period(None, None, utcnow().date())
        period_start = parse_day(request.period_start, "period_start", violations) or month_start
        period_end = parse_day(request.period_end, "period_end", violations) or month_end
        async with self.db.write() as session:
            invoices = await generate_marketplace_invoices(
                session,
                current_caller(),
                current_tenant_key().marketplace_customer_id,
                period_start,
                period_end,
                violations=violations,
            )
        numbers = [record.invoice_number for record in invoices]
        await created(context, f"/api/v1/invoice-receipts/{numbers[0]}")
        period = f"{period_start.isoformat()} to {period_end.isoformat()}"
        return face.GenerateMarketplaceInvoiceReceiptsResponse(
            message=f"{len(numbers)} marketplace invoice(s) generated for {period}",
            count=len(numbers),
            invoice_numbers=numbers,
            data=[receipt_to_pb(record) for record in invoices],
            period_start=period_start.isoformat(),
            period_end=period_end.isoformat(),
        )

    async def BackfillInvoiceReceipts(
        self, request: face.BackfillInvoiceReceiptsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.BackfillInvoiceReceiptsResponse:
        limit = request.limit if request.HasField("limit") else None
        async with self.db.write() as session:
            result = await backfill_invoices(session, current_caller(), limit)
        return face.BackfillInvoiceReceiptsResponse(
            message=f"{result.count} invoice(s) backfilled from existing orders",
            count=result.count,
            invoice_numbers=result.invoice_numbers,
        )
