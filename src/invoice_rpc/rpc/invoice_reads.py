"""InvoiceService reads: Get, List, Summarize, Stream, Export, ListAuditEvents.

Each handler checks the request's shape, converts it to domain values, calls the service layer
inside one read transaction and converts the result back. Every violation of a request is
reported at once, before anything is read or sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.rpc.convert import (
    BILLING_TYPE_TO_PB,
    STATUS_TO_PB,
    add_invoices_pb,
    invoice_to_pb,
    page_info_to_pb,
    timestamp_to_pb,
)
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.rpc.invoice_filters import query_from_pb, sort_from_pb, with_line_items
from invoice_rpc.rpc.invoice_wire import (
    frame_list_response,
    frame_stream_response,
    invoice_parts_wire,
    invoice_wire_column,
)
from invoice_rpc.service import audit_trail, invoice_export, invoice_lookup, invoice_queries, invoice_ranges
from invoice_rpc.service.invoice_queries import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, PageRequest, resolve_size
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.service.invoice_summary import CurrencyTotals, summarize_invoices
from invoice_rpc.storage.database import Database
from invoice_rpc.storage.types import utcnow

EXPORT_FORMAT_FROM_PB: dict[int, invoice_export.ExportFormat] = {
    isvc.EXPORT_FORMAT_CSV: invoice_export.ExportFormat.CSV,
    isvc.EXPORT_FORMAT_JSON: invoice_export.ExportFormat.JSON,
}


def _uuid(text: str, field: str, violations: ViolationCollector) -> uuid.UUID | None:
    if not text:
        violations.add(field, "is required")
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        violations.add(field, f"{text!r} is not a UUID")
        return None


def _currency_totals_to_pb(totals: CurrencyTotals) -> isvc.CurrencyTotals:
    return isvc.CurrencyTotals(
        currency_code=totals.currency,
        invoice_count=totals.invoice_count,
        total_minor=totals.total_minor,
        tax_minor=totals.tax_minor,
        paid_minor=totals.paid_minor,
        outstanding_minor=totals.outstanding_minor,
    )


def _audit_event_to_pb(event: audit_trail.AuditEventRecord) -> pb.AuditEvent:
    return pb.AuditEvent(
        id=str(event.id),
        invoice_ref=str(event.invoice_id),
        action=event.action,
        api_key_id=str(event.api_key_id) if event.api_key_id else "",
        request_id=event.request_id or "",
        before_json=json.dumps(event.before, sort_keys=True),
        after_json=json.dumps(event.after, sort_keys=True),
        create_time=timestamp_to_pb(event.created_at),
    )


class InvoiceReadHandlers:
    db: Database

    async def GetInvoice(
        self, request: isvc.GetInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Invoice:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        key = request.WhichOneof("key")
        invoice_ref = None
        if key is None:
            violations.add("key", "one of invoice_number, invoice_ref or external_key is required")
        elif key == "invoice_number" and not request.invoice_number:
            violations.add("invoice_number", "must not be empty")
        elif key == "invoice_ref":
            invoice_ref = _uuid(request.invoice_ref, "invoice_ref", violations)
        elif key == "external_key":
            if not request.external_key.data_source:
                violations.add("external_key.data_source", "is required")
            if not request.external_key.external_id:
                violations.add("external_key.external_id", "is required")
        violations.raise_if_any()

        async with self.db.read_autocommit() as session:
            record: InvoiceRecord
            if invoice_ref is not None:
                record = await invoice_lookup.get_invoice_by_ref(session, tenant_id, invoice_ref)
            elif key == "invoice_number":
                record = await invoice_lookup.get_invoice_by_number(session, tenant_id, request.invoice_number)
            else:
                record = await invoice_lookup.get_invoice_by_external_key(
                    session, tenant_id, request.external_key.data_source, request.external_key.external_id
                )
        return invoice_to_pb(record)

    async def ListInvoices(
        self, request: isvc.ListInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> isvc.ListInvoicesResponse | bytes:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        query = query_from_pb(request.filter, violations)
        sort = sort_from_pb(request.sort_field, request.sort_direction, violations)
        full = with_line_items(request.view, violations, default_full=False)
        page_request = PageRequest(page_size=request.page_size, page=request.page, page_token=request.page_token)
        invoice_queries.check_list_request(query, sort, page_request, violations)
        violations.raise_if_any()

        if not full and self.db.dialect == "postgresql":
            # The basic view on PostgreSQL: each invoice's own fields are read as the wire bytes
            # stored with it, its linked fields are written here (invoice_wire.py), and the
            # response's bytes are sent as they are (server.add_invoice_service).
            async with self.db.read_driver() as connection:
                parts = await invoice_queries.list_invoice_parts(connection, tenant_id, query, sort, page_request)
            rest = isvc.ListInvoicesResponse(
                next_page_token=parts.next_page_token, page_info=page_info_to_pb(parts.page_info)
            )
            return frame_list_response(map(invoice_parts_wire, parts.invoices), rest)
        async with self.db.read_autocommit() as session:
            page = await invoice_queries.list_invoices(
                session, tenant_id, query, sort, page_request, with_line_items=full
            )
        response = isvc.ListInvoicesResponse(
            next_page_token=page.next_page_token, page_info=page_info_to_pb(page.page_info)
        )
        add_invoices_pb(response.invoices, page.invoices)
        return response

    async def SummarizeInvoices(
        self, request: isvc.SummarizeInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> isvc.SummarizeInvoicesResponse:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        query = query_from_pb(request.filter, violations)
        query.check(violations)
        violations.raise_if_any()

        async with self.db.read() as session:
            summary = await summarize_invoices(session, tenant_id, query)
        return isvc.SummarizeInvoicesResponse(
            invoice_count=summary.invoice_count,
            currencies=[_currency_totals_to_pb(t) for t in summary.currencies],
            billing_types=[
                isvc.BillingTypeTotals(
                    billing_type=BILLING_TYPE_TO_PB[row.billing_type], totals=_currency_totals_to_pb(row.totals)
                )
                for row in summary.billing_types
            ],
            statuses=[
                isvc.StatusTotals(status=STATUS_TO_PB[row.status], totals=_currency_totals_to_pb(row.totals))
                for row in summary.statuses
            ],
        )

    async def StreamInvoices(
        self, request: isvc.StreamInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[isvc.StreamInvoicesResponse | bytes]:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        query = query_from_pb(request.filter, violations)
        query.check(violations)
        sort = sort_from_pb(request.sort_field, request.sort_direction, violations)
        full = with_line_items(request.view, violations, default_full=False)
        batch_size = resolve_size(
            request.batch_size, "batch_size", violations, default=DEFAULT_BATCH_SIZE, maximum=MAX_BATCH_SIZE
        )
        violations.raise_if_any()

        if not full and self.db.dialect == "postgresql":
            # The basic view on PostgreSQL: the database writes each invoice's wire bytes, several
            # backends at once (invoice_ranges.py), and Python only frames them (invoice_wire.py).
            # The frames are sent as they are (server.add_invoice_service).
            async with self.db.shared_snapshot() as snapshot:
                wire_batches = invoice_ranges.stream_projected_ranges(
                    snapshot, tenant_id, query, sort, invoice_wire_column, batch_size=batch_size
                )
                try:
                    async for wire in wire_batches:
                        yield frame_stream_response(wire)
                finally:
                    await wire_batches.aclose()
            return
        async with self.db.read() as session:
            batches = invoice_queries.stream_invoice_batches(
                session, tenant_id, query, sort, batch_size=batch_size, with_line_items=full
            )
            try:
                async for batch in batches:
                    response = isvc.StreamInvoicesResponse()
                    add_invoices_pb(response.invoices, batch)
                    yield response
            finally:
                await batches.aclose()

    async def ExportInvoices(
        self, request: isvc.ExportInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        query = query_from_pb(request.filter, violations)
        query.check(violations)
        sort = sort_from_pb(request.sort_field, request.sort_direction, violations)
        export_format = EXPORT_FORMAT_FROM_PB.get(request.format)
        if export_format is None:
            violations.add("format", "is required: EXPORT_FORMAT_CSV or EXPORT_FORMAT_JSON")
        include_lines = request.include_line_items if request.HasField("include_line_items") else True
        violations.raise_if_any()
        assert export_format is not None

        await context.send_initial_metadata(
            (("content-disposition", invoice_export.content_disposition(export_format, utcnow())),)
        )
        content_type = invoice_export.CONTENT_TYPES[export_format]
        async with self.db.read() as session:
            chunks = invoice_export.export_chunks(
                session, tenant_id, query, sort, export_format, with_line_items=include_lines
            )
            try:
                async for chunk in chunks:
                    # Only the first message carries the content type, as HttpBody streams do.
                    yield httpbody_pb2.HttpBody(content_type=content_type, data=chunk)
                    content_type = ""
            finally:
                await chunks.aclose()

    async def ListAuditEvents(
        self, request: isvc.ListAuditEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> isvc.ListAuditEventsResponse:
        tenant_id = current_caller().tenant_id
        violations = ViolationCollector()
        invoice_id = _uuid(request.invoice_ref, "invoice_ref", violations)
        if invoice_id is not None:
            audit_trail.check_audit_page(request.page_size, request.page_token, invoice_id, violations)
        violations.raise_if_any()
        assert invoice_id is not None

        async with self.db.read() as session:
            page = await audit_trail.list_audit_events(
                session, tenant_id, invoice_id, page_size=request.page_size, page_token=request.page_token
            )
        return isvc.ListAuditEventsResponse(
            audit_events=[_audit_event_to_pb(e) for e in page.events], next_page_token=page.next_page_token
        )
