"""Seed 002's JSON:API face: `GET /v1/invoices` with cursor pages (`page[limit]`,
`page[cursor]`, rewritten to `page.limit` / `page.cursor` by Envoy's Lua shim)."""

from __future__ import annotations

import grpc
from invoice_rpc.v1 import jsonapi_face_pb2 as face
from invoice_rpc.v1 import jsonapi_face_pb2_grpc

from invoice_rpc.domain.enums import DocumentTypeCode, InvoiceStatus, SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, ViolationCollector
from invoice_rpc.domain.money import format_major, to_major
from invoice_rpc.rpc.faces.rest import parse_choice, parse_day, renamed, rfc3339
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.invoice_queries import (
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    check_list_request,
    list_invoices,
    resolve_size,
)
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.service.invoice_summary import summarize_invoices
from invoice_rpc.storage.database import Database

DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # seed 002: 1 <= page[limit] <= 100
_NEWEST_FIRST = InvoiceSort(SortField.CREATED_AT, SortDirection.DESC)
_DOCUMENT_TYPES = {
    DocumentTypeCode.COMMERCIAL_INVOICE.value: "commercial_invoice",
    DocumentTypeCode.CREDIT_NOTE.value: "credit_note",
}
# The service names its checks after InvoiceService's request fields; these are the face's.
_FIELD_NAMES = {
    "filter.start_date": "date_from",
    "filter.end_date": "date_to",
    "filter": "",
    "page_size": "page.limit",
    "page_token": "page.cursor",
}


def _identifier(kind: str, resource_id: str) -> face.JsonApiIdentifier:
    return face.JsonApiIdentifier(type=kind, id=resource_id)


def jsonapi_invoice_to_pb(record: InvoiceRecord) -> face.JsonApiInvoice:
    currency = record.currency
    attributes = face.JsonApiInvoiceAttributes(
        reference_number=record.invoice_number,
        document_type=_DOCUMENT_TYPES.get(record.document_type_code, record.document_type_code),
        document_type_code=record.document_type_code,
        issue_date=record.issue_date.isoformat(),
        local_currency=currency,
        local_totals=face.JsonApiLocalTotals(
            subtotal=format_major(record.sub_total_minor, currency),
            tax_total=format_major(record.total_tax_minor, currency),
            total_amount=format_major(record.total_minor, currency),
        ),
        billing_context=record.billing_type,
        payment_status=face.JsonApiPaymentStatus(
            paid=record.status == InvoiceStatus.PAID.value,
            amount_paid=float(to_major(record.amount_paid_minor, currency)),
            amount_remaining=float(to_major(record.amount_remaining_minor, currency)),
        ),
        status=record.status,
        created_at=rfc3339(record.created_at),
        updated_at=rfc3339(record.updated_at),
    )
    if record.due_date is not None:
        attributes.due_date = record.due_date.isoformat()
    if record.terms:
        attributes.terms = record.terms
    if record.description:
        attributes.description = record.description
    relationships = face.JsonApiInvoiceRelationships(
        payment_means=face.JsonApiToMany(data=[_identifier("payment_means", i) for i in record.payment_means_ids]),
        invoice_items=face.JsonApiToMany(
            data=[_identifier("invoice_item", str(line.id)) for line in record.line_items]
        ),
        documents=face.JsonApiToMany(data=[_identifier("document", i) for i in record.document_ids]),
        people=face.JsonApiToMany(data=[_identifier("people", i) for i in record.person_ids]),
    )
    if record.issuer_company_id:
        relationships.issuer.data.CopyFrom(_identifier("company", record.issuer_company_id))
    if record.receiver_company_id:
        relationships.receiver.data.CopyFrom(_identifier("company", record.receiver_company_id))
    return face.JsonApiInvoice(
        type="invoice", id=f"invoice_{record.id}", attributes=attributes, relationships=relationships
    )


class JsonApiFaceServicer(jsonapi_face_pb2_grpc.JsonApiFaceServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListJsonApiInvoices(
        self, request: face.ListJsonApiInvoicesRequest, context: grpc.aio.ServicerContext
    ) -> face.ListJsonApiInvoicesResponse:
        violations = ViolationCollector()
        status = parse_choice(request.status, "status", InvoiceStatus, violations)
        query = InvoiceQuery(
            statuses=(status,) if status else (),
            issuer_company_id=request.issuer_id or None,
            receiver_company_id=request.receiver_id or None,
            start_date=parse_day(request.date_from, "date_from", violations),
            end_date=parse_day(request.date_to, "date_to", violations),
        )
        limit = DEFAULT_LIMIT
        if request.page.HasField("limit"):
            if request.page.limit == 0:
                violations.add("page.limit", f"must be between 1 and {MAX_LIMIT} (got 0)")
            limit = resolve_size(request.page.limit, "page.limit", violations, default=limit, maximum=MAX_LIMIT)
        if request.include:
            # No service function reads companies, people, documents or payment means yet;
            # refusing beats answering without the `included` the caller asked for.
            violations.add("include", "related resources cannot be included yet")
        page_request = PageRequest(page_size=limit, page_token=request.page.cursor)
        scratch = ViolationCollector()
        check_list_request(query, _NEWEST_FIRST, page_request, scratch)
        if scratch.violations:
            violations.violations.extend(renamed(InvalidArgument(scratch.violations), _FIELD_NAMES).violations)
        violations.raise_if_any()
        tenant_id = current_caller().tenant_id
        async with self.db.read() as session:
            page = await list_invoices(session, tenant_id, query, _NEWEST_FIRST, page_request, with_line_items=True)
            total = (await summarize_invoices(session, tenant_id, query)).invoice_count
        meta = face.JsonApiMeta(total=total, limit=limit)
        if page.next_page_token:
            meta.next_cursor = page.next_page_token
        return face.ListJsonApiInvoicesResponse(
            data=[jsonapi_invoice_to_pb(record) for record in page.invoices], meta=meta
        )
