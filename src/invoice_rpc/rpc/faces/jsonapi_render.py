"""Seed 002/003 JSON:API documents rendered from invoice records and related resources: the
invoice resource with its relationships, and the `included` resources with seed 002's attributes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from google.protobuf import struct_pb2
from invoice_rpc.v1 import jsonapi_face_pb2 as face

from invoice_rpc.domain import money
from invoice_rpc.domain.enums import DocumentTypeCode, InvoiceStatus
from invoice_rpc.rpc.faces.rest import rfc3339
from invoice_rpc.service.invoice_records import InvoiceRecord, LineItemRecord
from invoice_rpc.service.invoice_related import (
    CompanyView,
    DocumentView,
    PaymentMeansView,
    PersonView,
    RelatedIds,
    RelatedResources,
    related_ids_of,
)

_DOCUMENT_TYPES = {
    DocumentTypeCode.COMMERCIAL_INVOICE.value: "commercial_invoice",
    DocumentTypeCode.CREDIT_NOTE.value: "credit_note",
}
INVOICE_ID_PREFIX = "invoice_"


class Include(StrEnum):
    """What `include=` may ask for."""

    COMPANY = "company"
    PAYMENT_MEANS = "payment_means"
    PEOPLE = "people"
    DOCUMENTS = "documents"
    # Not in seed 002's list of options, but its example response includes invoice items.
    INVOICE_ITEMS = "invoice_items"


ALL_INCLUDES = frozenset(Include)


# --- rendering ----------------------------------------------------------------------------


def _identifier(kind: str, resource_id: str) -> face.JsonApiIdentifier:
    return face.JsonApiIdentifier(type=kind, id=resource_id)


def jsonapi_invoice_to_pb(record: InvoiceRecord, contract_ids: Mapping[uuid.UUID, str]) -> face.JsonApiInvoice:
    """The invoice resource; `contract_ids` gives the imported id of its contract, by reference
    (`RelatedResources.contract_ids`)."""
    currency = record.currency
    attributes = face.JsonApiInvoiceAttributes(
        reference_number=record.invoice_number,
        document_type=_DOCUMENT_TYPES.get(record.document_type_code, record.document_type_code),
        document_type_code=record.document_type_code,
        issue_date=record.issue_date.isoformat(),
        local_currency=currency,
        local_totals=face.JsonApiLocalTotals(
            subtotal=money.format_major(record.sub_total_minor, currency),
            tax_total=money.format_major(record.total_tax_minor, currency),
            total_amount=money.format_major(record.total_minor, currency),
        ),
        billing_context=record.billing_type,
        payment_status=face.JsonApiPaymentStatus(
            paid=record.status == InvoiceStatus.PAID.value,
            amount_paid=float(money.to_major(record.amount_paid_minor, currency)),
            amount_remaining=float(money.to_major(record.amount_remaining_minor, currency)),
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
    if record.contract_ref is not None and record.contract_ref in contract_ids:
        relationships.contract.data.CopyFrom(_identifier("contract", contract_ids[record.contract_ref]))
    return face.JsonApiInvoice(
        type="invoice", id=f"{INVOICE_ID_PREFIX}{record.id}", attributes=attributes, relationships=relationships
    )


def _resource(kind: str, resource_id: str, attributes: dict[str, Any]) -> face.JsonApiResource:
    """A resource of `included`; attributes without a value (None, empty object) are left out."""
    struct = struct_pb2.Struct()
    struct.update(_without_empty(attributes))
    return face.JsonApiResource(type=kind, id=resource_id, attributes=struct)


def _without_empty(values: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _without_empty(value)
        if value is not None and value != {}:
            kept[key] = value
    return kept


def _renamed_keys(values: Any, names: dict[str, str]) -> Any:
    """A stored JSON object with some keys renamed to the document's spelling."""
    if not isinstance(values, dict):
        return values
    return {names.get(key, key): value for key, value in values.items()}


def _number(text: str | None) -> float | None:
    """Decimal text (a quantity, a rate) as the JSON number the document shows."""
    return None if text is None else float(Decimal(text))


def _day(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).date().isoformat()


def company_resource(company: CompanyView, workspace_id: str) -> face.JsonApiResource:
    details = company.details
    return _resource(
        "company",
        company.external_id,
        {
            "name": company.name,
            "description": details.get("description"),
            "domain_name_primary_link_url": details.get("domain"),
            "locale": details.get("locale"),
            "tax_id": details.get("tax_id"),
            "registration": details.get("registration"),
            "registration_number": details.get("registration_number"),
            # A workspace is what this service calls a tenant.
            "workspace_id": workspace_id,
            "created_at": rfc3339(company.created_at),
            "updated_at": rfc3339(company.updated_at),
        },
    )


# Payment means details are stored as ImportService's PaymentMeans gives them (proto field names).
_PAYMENT_MEANS_DETAIL_NAMES = {
    "account_details": {"currency_code": "currency"},
    "compliance": {"last_compliance_check_time": "last_compliance_check"},
}


def payment_means_resource(payment_means: PaymentMeansView) -> face.JsonApiResource:
    details = {
        key: _renamed_keys(value, _PAYMENT_MEANS_DETAIL_NAMES.get(key, {}))
        for key, value in payment_means.details.items()
    }
    return _resource(
        "payment_means",
        payment_means.external_id,
        {
            "type": payment_means.type,
            "scheme": payment_means.scheme,
            "status": payment_means.status,
            **details,
            "created_at": rfc3339(payment_means.created_at),
            "updated_at": rfc3339(payment_means.updated_at),
        },
    )


def document_resource(document: DocumentView) -> face.JsonApiResource:
    return _resource(
        "document",
        document.external_id,
        {
            "file_name": document.file_name,
            "status": document.status,
            "uploaded_at": rfc3339(document.uploaded_at) or None,
            "processed_at": rfc3339(document.processed_at) or None,
            "file_type": document.file_type,
            "size_bytes": document.size_bytes,
            "created_at": rfc3339(document.created_at),
            "updated_at": rfc3339(document.updated_at),
        },
    )


def person_resource(person: PersonView) -> face.JsonApiResource:
    full_name = " ".join(part for part in (person.first_name, person.last_name) if part)
    return _resource(
        "people",
        person.external_id,
        {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "full_name": full_name or None,
            "email": person.email,
            "created_at": rfc3339(person.created_at),
            "updated_at": rfc3339(person.updated_at),
        },
    )


def invoice_item_resource(line: LineItemRecord, currency: str) -> face.JsonApiResource:
    return _resource(
        "invoice_item",
        str(line.id),
        {
            "line_id": str(line.position),
            "sku": line.sku,
            "name": line.name,
            "description": line.description,
            "quantity": _number(line.quantity),
            "unit_price": float(money.to_major(line.unit_price_minor, currency)),
            "currency": currency,
            "unit": line.unit,
            "min_quantity": _number(line.min_quantity),
            "max_quantity": _number(line.max_quantity),
            "tax": {"rate": _number(line.tax_rate), "category": line.tax_category, "scheme": line.tax_scheme},
            "period": {"start": _day(line.period_start), "end": _day(line.period_end)},
            "created_at": rfc3339(line.created_at),
            "updated_at": rfc3339(line.updated_at),
        },
    )


def wanted_related_ids(records: Sequence[InvoiceRecord], includes: frozenset[Include]) -> RelatedIds:
    """The related resources `include` asks for, and always the contracts: their imported ids
    are what `relationships.contract` shows."""
    return related_ids_of(
        records,
        companies=Include.COMPANY in includes,
        payment_means=Include.PAYMENT_MEANS in includes,
        documents=Include.DOCUMENTS in includes,
        people=Include.PEOPLE in includes,
        contracts=True,
    )


def included_resources(
    records: Sequence[InvoiceRecord],
    related: RelatedResources,
    wanted: RelatedIds,
    includes: frozenset[Include],
    workspace_id: str,
) -> list[face.JsonApiResource]:
    """`included`: each resource once, grouped by type in seed 002's order (people, documents,
    items, payment means, companies), each group in order of first mention."""
    included = [person_resource(related.people[i]) for i in wanted.person_ids if i in related.people]
    included += [document_resource(related.documents[i]) for i in wanted.document_ids if i in related.documents]
    if Include.INVOICE_ITEMS in includes:
        included += [invoice_item_resource(line, r.currency) for r in records for line in r.line_items]
    included += [
        payment_means_resource(related.payment_means[i]) for i in wanted.payment_means_ids if i in related.payment_means
    ]
    included += [
        company_resource(related.companies[i], workspace_id) for i in wanted.company_ids if i in related.companies
    ]
    return included
