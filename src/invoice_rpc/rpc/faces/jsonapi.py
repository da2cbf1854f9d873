"""Seeds 002 and 003's JSON:API face: `GET /v1/invoices` with cursor pages (`page[limit]`,
`page[cursor]`, rewritten to `page.limit` / `page.cursor` by Envoy's Lua shim) and `include=`,
`GET /v1/invoices/{id}`, and `POST /v1/invoices` (201 Created).

Only translation lives here: the document's shapes and field names to the service layer's
plain values and back. Create is the Create use case (through `stated_invoice`), related
resources come from `invoice_related` in one query per kind for a whole page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import grpc
from invoice_rpc.v1 import jsonapi_face_pb2 as face
from invoice_rpc.v1 import jsonapi_face_pb2_grpc

from invoice_rpc.domain.enums import InvoiceStatus, SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, NotFound, ViolationCollector
from invoice_rpc.rpc.faces.jsonapi_create import CreateReader, face_error, missing_related
from invoice_rpc.rpc.faces.jsonapi_render import (
    ALL_INCLUDES,
    INVOICE_ID_PREFIX,
    Include,
    included_resources,
    jsonapi_invoice_to_pb,
    wanted_related_ids,
)
from invoice_rpc.rpc.faces.rest import created, parse_choice, parse_day, renamed
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.invoice_queries import (
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    check_list_request,
    list_invoices,
    resolve_size,
)
from invoice_rpc.service.invoice_records import get_invoice_record
from invoice_rpc.service.invoice_related import load_related
from invoice_rpc.service.invoice_summary import summarize_invoices
from invoice_rpc.service.page_tokens import decode_page_token, encode_page_token
from invoice_rpc.service.stated_invoice import create_stated_invoice
from invoice_rpc.storage.database import Database

DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # seed 002: 1 <= page[limit] <= 100
MAX_IDEMPOTENCY_KEY_LENGTH = 200  # the width of invoices.creation_request_id
_NEWEST_FIRST = InvoiceSort(SortField.CREATED_AT, SortDirection.DESC)
# The service names its checks after InvoiceService's request fields; these are the face's.
_LIST_FIELD_NAMES = {
    "filter.start_date": "date_from",
    "filter.end_date": "date_to",
    "filter": "",
    "page_size": "page[limit]",
    "page_token": "page[cursor]",
}


# --- reading requests ---------------------------------------------------------------------


def parse_includes(values: Iterable[str], violations: ViolationCollector) -> frozenset[Include]:
    includes: set[Include] = set()
    for value in values:
        choice = parse_choice(value, "include", Include, violations)
        if choice is not None:
            includes.add(choice)
    return frozenset(includes)


def _face_cursor(page_number: int, page_token: str) -> str:
    """`page[cursor]`: the service's page token and the number of the page it leads to."""
    return encode_page_token({"page": page_number, "after": page_token})


def _read_face_cursor(text: str, violations: ViolationCollector) -> tuple[int, str]:
    """(page number, the service's page token) of a `page[cursor]`; (1, "") if none is given."""
    if not text:
        return 1, ""
    try:
        payload = decode_page_token(text, "page[cursor]")
    except InvalidArgument as error:
        violations.violations.extend(error.violations)
        return 1, ""
    page_number, page_token = payload.get("page"), payload.get("after")
    if not isinstance(page_number, int) or page_number < 2 or not isinstance(page_token, str) or not page_token:
        violations.add("page[cursor]", "is not a page token this service issued")
        return 1, ""
    return page_number, page_token


def _invoice_ref(resource_id: str) -> uuid.UUID | None:
    text = resource_id.strip()
    if text.startswith(INVOICE_ID_PREFIX):
        text = text[len(INVOICE_ID_PREFIX) :]
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# --- the servicer -------------------------------------------------------------------------


class JsonApiFaceServicer(jsonapi_face_pb2_grpc.JsonApiFaceServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListJsonApiInvoices(
        self, request: face.ListJsonApiInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
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
                violations.add("page[limit]", f"must be between 1 and {MAX_LIMIT} (got 0)")
            limit = resolve_size(request.page.limit, "page[limit]", violations, default=limit, maximum=MAX_LIMIT)
        includes = parse_includes(request.include, violations)
        page_number, page_token = _read_face_cursor(request.page.cursor, violations)
        page_request = PageRequest(page_size=limit, page_token=page_token)
        scratch = ViolationCollector()
        check_list_request(query, _NEWEST_FIRST, page_request, scratch)
        if scratch.violations:
            violations.violations.extend(renamed(InvalidArgument(scratch.violations), _LIST_FIELD_NAMES).violations)
        violations.raise_if_any()
        tenant_id = current_caller().tenant_id
        async with self.db.read() as session:
            page = await list_invoices(session, tenant_id, query, _NEWEST_FIRST, page_request, with_line_items=True)
            total = (await summarize_invoices(session, tenant_id, query)).invoice_count
            wanted = wanted_related_ids(page.invoices, includes)
            related = await load_related(session, tenant_id, wanted)
        meta = face.JsonApiMeta(total=total, page=page_number, limit=limit)
        if page.next_page_token:
            meta.next_cursor = _face_cursor(page_number + 1, page.next_page_token)
        return face.ListJsonApiInvoicesResponse(
            data=[jsonapi_invoice_to_pb(record, related.contract_ids) for record in page.invoices],
            included=included_resources(page.invoices, related, wanted, includes, str(tenant_id)),
            meta=meta,
        )

    async def GetJsonApiInvoice(
        self, request: face.GetJsonApiInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.JsonApiInvoiceDocument:
        violations = ViolationCollector()
        includes = parse_includes(request.include, violations)
        violations.raise_if_any()
        invoice_ref = _invoice_ref(request.id)
        tenant_id = current_caller().tenant_id
        async with self.db.read_autocommit() as session:
            record = None if invoice_ref is None else await get_invoice_record(session, tenant_id, invoice_ref)
            if record is None:
                raise NotFound(f"invoice {request.id!r} not found")
            wanted = wanted_related_ids([record], includes)
            related = await load_related(session, tenant_id, wanted)
        return face.JsonApiInvoiceDocument(
            data=jsonapi_invoice_to_pb(record, related.contract_ids),
            included=included_resources([record], related, wanted, includes, str(tenant_id)),
        )

    async def CreateJsonApiInvoice(
        self, request: face.CreateJsonApiInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.JsonApiInvoiceDocument:
        reader = CreateReader(request)
        stated = reader.read()
        idempotency_key = _idempotency_key(context, reader.violations)
        caller = current_caller()
        try:
            async with self.db.write() as session:
                try:
                    record = await create_stated_invoice(
                        session, caller, stated, request_id=idempotency_key, violations=reader.violations
                    )
                except NotFound as error:
                    # Create says what is missing; the face says which field named it.
                    missing = await missing_related(session, caller.tenant_id, reader.named_ids)
                    raise NotFound(missing or error.message) from error
                wanted = wanted_related_ids([record], ALL_INCLUDES)
                related = await load_related(session, caller.tenant_id, wanted)
        except InvalidArgument as error:
            raise face_error(error, reader.names) from error
        # Only now, after the commit: the 201 hint leaves at once and cannot be taken back.
        await created(context, f"/v1/invoices/{INVOICE_ID_PREFIX}{record.id}")
        return face.JsonApiInvoiceDocument(
            data=jsonapi_invoice_to_pb(record, related.contract_ids),
            included=included_resources([record], related, wanted, ALL_INCLUDES, str(caller.tenant_id)),
        )


def _idempotency_key(context: grpc.aio.ServicerContext[Any, Any], violations: ViolationCollector) -> str | None:
    """The `Idempotency-Key` header (gRPC metadata `idempotency-key`), if sent."""
    keys = [value for key, value in context.invocation_metadata() or () if key == "idempotency-key"]
    if not keys:
        return None
    key = str(keys[0]).strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        violations.add("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
        return None
    return key
