"""Seed 001's face ("Received"): `/api/invoices/{invoice_ref}`, `/api/invoices/reconcile` and
`/api/documents/filter`, behind the `Version: V0` header the document requires."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from invoice_rpc.v1 import received_face_pb2 as face
from invoice_rpc.v1 import received_face_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, ViolationCollector
from invoice_rpc.domain.money import to_major
from invoice_rpc.rpc.faces.rest import parse_uuid, renamed, rfc3339
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.imports.checks import parse_import_time
from invoice_rpc.service.invoice_lookup import get_invoice_by_ref
from invoice_rpc.service.invoice_queries import (
    MAX_PAGE_SIZE,
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    list_invoices,
)
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.service.received_invoices import ReceivedExtras, load_received_extras
from invoice_rpc.service.reconcile import Payment, reconcile_invoice
from invoice_rpc.storage.database import Database

API_VERSIONS = ("V0",)
_NEWEST_FIRST = InvoiceSort(SortField.CREATED_AT, SortDirection.DESC)


def check_version(context: grpc.aio.ServicerContext[Any, Any], violations: ViolationCollector) -> None:
    """The `Version` header (metadata `version`) must name a version this face speaks."""
    versions = [value for key, value in context.invocation_metadata() or () if key == "version"]
    if not versions:
        violations.add("Version", "header is required: `Version: V0`")
    elif versions[0] not in API_VERSIONS:
        violations.add("Version", f"unknown API version {versions[0]!r}; supported: {', '.join(API_VERSIONS)}")


def _major(amount_minor: int, currency: str) -> float:
    return float(to_major(amount_minor, currency))


def received_invoice_to_pb(record: InvoiceRecord, extras: ReceivedExtras) -> face.ReceivedInvoice:
    """The invoice as seed 001 shows it; parts it does not have (customer, contract, dates,
    entity, billing details) are left out."""
    currency = record.currency
    message = face.ReceivedInvoice(
        invoice_ref=str(record.id),
        document_number=record.invoice_number,
        state=record.status.upper(),
        created_at=rfc3339(record.created_at),
        issue_date=record.issue_date.isoformat(),
        is_partial_period=record.is_partial_period,
        accounting_event_type=record.accounting_event_type,
        currency=currency,
        sub_total=_major(record.sub_total_minor, currency),
        total_discount=_major(record.total_discount_minor, currency),
        total_tax=_major(record.total_tax_minor, currency),
        credits_amount=_major(record.credits_minor, currency),
        total=_major(record.total_minor, currency),
        products=[
            face.ReceivedProduct(
                product_name=line.name,
                minimum_fee=_major(line.minimum_fee_minor, currency),
                sub_total=_major(line.sub_total_minor, currency),
                total=_major(line.total_minor, currency),
            )
            for line in record.line_items
        ],
    )
    if record.customer_ref is not None:
        message.customer.CopyFrom(
            face.ReceivedCustomer(
                customer_ref=str(record.customer_ref),
                customer_name=record.customer_name or "",
                customer_legal_name=record.customer_legal_name or "",
            )
        )
    if record.due_date is not None:
        message.due_date = record.due_date.isoformat()
    if record.submitted_at is not None:
        message.submission_date = rfc3339(record.submitted_at)
    if record.paid_at is not None:
        message.paid_date = rfc3339(record.paid_at)
    if record.payment_term:
        message.net_terms.CopyFrom(struct_pb2.Value(string_value=record.payment_term))
    elif record.net_terms_days is not None:
        message.net_terms.CopyFrom(struct_pb2.Value(number_value=record.net_terms_days))
    if record.contract_ref is not None:
        message.contract.CopyFrom(
            face.ReceivedContract(contract_ref=str(record.contract_ref), contract_number=record.contract_number or 0)
        )
    if record.number_in_contract is not None:
        message.number_in_contract = record.number_in_contract
    if extras.total_in_contract_minor is not None:
        message.total_in_contract = _major(extras.total_in_contract_minor, currency)
    if extras.entity is not None:
        message.entity.CopyFrom(
            face.ReceivedEntity(
                entity_ref=str(extras.entity.ref),
                entity_name=extras.entity.name,
                entity_legal_name=extras.entity.legal_name or "",
            )
        )
    billing = extras.billing
    if billing.bank_transfer is not None:
        message.billing_bank_transfer_details.CopyFrom(
            face.ReceivedBankTransferDetails(billing_account_id=billing.bank_transfer.billing_account_id)
        )
    if billing.online_payment is not None:
        message.billing_online_payment_details.CopyFrom(
            face.ReceivedOnlinePaymentDetails(
                auto_charge=billing.online_payment.auto_charge,
                payment_gateway_id=billing.online_payment.payment_gateway_id,
                payment_gateway_card_id=billing.online_payment.payment_gateway_card_id,
            )
        )
    if billing.crypto is not None:
        message.billing_crypto_details.CopyFrom(
            face.ReceivedCryptoDetails(address=billing.crypto.address, tokens=billing.crypto.tokens)
        )
    return message


async def received_invoices(
    session: AsyncSession, tenant_id: uuid.UUID, records: Sequence[InvoiceRecord]
) -> list[face.ReceivedInvoice]:
    """The records as seed 001 shows them, their extras loaded for the whole batch at once."""
    extras = await load_received_extras(session, tenant_id, records)
    return [received_invoice_to_pb(record, extras[record.id]) for record in records]


def _refs(values: Iterable[str], field: str, violations: ViolationCollector) -> tuple[uuid.UUID, ...]:
    """UUIDs from repeated keys, each of which may also hold a comma-separated list; a violation
    per bad one, named `field[i]` by its position in the flattened list."""
    texts = [part for value in values for part in value.split(",") if part.strip()]
    refs = [parse_uuid(text, f"{field}[{i}]", violations) for i, text in enumerate(texts)]
    return tuple(ref for ref in refs if ref is not None)


def json_array(messages: Iterable[Message]) -> httpbody_pb2.HttpBody:
    """A bare JSON array of messages, printed as Envoy's transcoder prints one message
    (proto field names, fields without presence always printed)."""
    items = [
        json_format.MessageToDict(message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
        for message in messages
    ]
    return httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(items).encode())


class ReceivedFaceServicer(received_face_pb2_grpc.ReceivedFaceServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def GetReceivedInvoice(
        self, request: face.GetReceivedInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.ReceivedInvoice:
        violations = ViolationCollector()
        check_version(context, violations)
        invoice_ref = parse_uuid(request.invoice_ref, "invoice_ref", violations)
        violations.raise_if_any()
        assert invoice_ref is not None
        tenant_id = current_caller().tenant_id
        async with self.db.read_autocommit() as session:
            record = await get_invoice_by_ref(session, tenant_id, invoice_ref)
            [invoice] = await received_invoices(session, tenant_id, [record])
        return invoice

    async def ReconcileReceivedInvoice(
        self, request: face.ReconcileReceivedInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.ReceivedInvoice:
        violations = ViolationCollector()
        check_version(context, violations)
        invoice_ref = parse_uuid(request.invoice_ref, "invoice_ref", violations)
        problems: list[str] = []
        paid_at = parse_import_time(request.paid_date, "paid_date", problems, required=False)
        if not request.paid_date.strip():
            violations.add("paid_date", "is required: when the invoice was paid, RFC 3339 or YYYY-MM-DD")
        for problem in problems:
            violations.add("paid_date", problem)
        violations.raise_if_any()
        caller = current_caller()
        try:
            async with self.db.write() as session:
                record = await reconcile_invoice(
                    session, caller, Payment(paid_at=paid_at, invoice_ref=str(invoice_ref))
                )
                [invoice] = await received_invoices(session, caller.tenant_id, [record])
        except InvalidArgument as error:
            raise renamed(error, {"paid_time": "paid_date"}) from error
        return invoice

    async def FilterReceivedDocuments(
        self, request: face.FilterReceivedDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> httpbody_pb2.HttpBody:
        violations = ViolationCollector()
        check_version(context, violations)
        query = InvoiceQuery(
            customer_refs=_refs(request.customer_refs, "customer_refs", violations),
            contract_refs=_refs(request.contract_refs, "contract_refs", violations),
        )
        if not request.HasField("limit"):
            violations.add("limit", f"is required: the page size, 1 to {MAX_PAGE_SIZE}")
        elif not 1 <= request.limit <= MAX_PAGE_SIZE:
            violations.add("limit", f"must be from 1 to {MAX_PAGE_SIZE} (got {request.limit})")
        if not request.HasField("page"):
            violations.add("page", "is required: the page number, from 0")
        elif request.page < 0:
            violations.add("page", f"must be 0 or more (got {request.page})")
        violations.raise_if_any()
        # Seed 001 counts pages from 0; the service from 1.
        page_request = PageRequest(page_size=request.limit, page=request.page + 1)
        tenant_id = current_caller().tenant_id
        async with self.db.read_autocommit() as session:
            page = await list_invoices(session, tenant_id, query, _NEWEST_FIRST, page_request, with_line_items=True)
            invoices = await received_invoices(session, tenant_id, page.invoices)
        return json_array(invoices)
