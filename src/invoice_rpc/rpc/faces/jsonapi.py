"""Seeds 002 and 003's JSON:API face: `GET /v1/invoices` with cursor pages (`page[limit]`,
`page[cursor]`, rewritten to `page.limit` / `page.cursor` by Envoy's Lua shim) and `include=`,
`GET /v1/invoices/{id}`, and `POST /v1/invoices` (201 Created).

Only translation lives here: the document's shapes and field names to the service layer's
plain values and back. Create is the Create use case (through `stated_invoice`), related
resources come from `invoice_related` in one query per kind for a whole page.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import grpc
from google.protobuf import struct_pb2
from invoice_rpc.v1 import jsonapi_face_pb2 as face
from invoice_rpc.v1 import jsonapi_face_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain import money
from invoice_rpc.domain.enums import BillingType, DocumentTypeCode, InvoiceStatus, SortDirection, SortField
from invoice_rpc.domain.errors import FieldViolation, InvalidArgument, NotFound, ViolationCollector
from invoice_rpc.rpc.faces.rest import created, parse_choice, parse_day, renamed, rfc3339
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.invoice_create import NewInvoice, NewLineItem
from invoice_rpc.service.invoice_queries import (
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    check_list_request,
    list_invoices,
    resolve_size,
)
from invoice_rpc.service.invoice_records import InvoiceRecord, LineItemRecord, get_invoice_record
from invoice_rpc.service.invoice_related import (
    CompanyView,
    DocumentView,
    PaymentMeansView,
    PersonView,
    RelatedIds,
    RelatedResources,
    existing_contract_ids,
    load_related,
    related_ids_of,
)
from invoice_rpc.service.invoice_summary import summarize_invoices
from invoice_rpc.service.page_tokens import decode_page_token, encode_page_token
from invoice_rpc.service.stated_invoice import StatedInvoice, StatedPayment, StatedTotals, create_stated_invoice
from invoice_rpc.storage.database import Database

DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # seed 002: 1 <= page[limit] <= 100
MAX_IDEMPOTENCY_KEY_LENGTH = 200  # the width of invoices.creation_request_id
MAX_REFERENCE_LENGTH = 200  # the width of invoices.external_id, where reference_number is kept
_NEWEST_FIRST = InvoiceSort(SortField.CREATED_AT, SortDirection.DESC)
_DOCUMENT_TYPES = {
    DocumentTypeCode.COMMERCIAL_INVOICE.value: "commercial_invoice",
    DocumentTypeCode.CREDIT_NOTE.value: "credit_note",
}
_INVOICE_TYPES = ("invoices", "invoice")  # seed 003 sends "invoices"; its answers say "invoice"
_INVOICE_ID_PREFIX = "invoice_"
# The service names its checks after InvoiceService's request fields; these are the face's.
_LIST_FIELD_NAMES = {
    "filter.start_date": "date_from",
    "filter.end_date": "date_to",
    "filter": "",
    "page_size": "page[limit]",
    "page_token": "page[cursor]",
}


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
        type="invoice", id=f"{_INVOICE_ID_PREFIX}{record.id}", attributes=attributes, relationships=relationships
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
    if text.startswith(_INVOICE_ID_PREFIX):
        text = text[len(_INVOICE_ID_PREFIX) :]
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _decimal(value: struct_pb2.Value, path: str, violations: ViolationCollector) -> Decimal | None:
    """A JSON number or decimal string as an exact Decimal; None if absent or null. A number is
    read as the shortest decimal that gives back the same double (0.1 is 0.1, not 0.1000…055)."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    try:
        if kind == "number_value":
            result = Decimal(repr(value.number_value))
        elif kind == "string_value":
            result = Decimal(value.string_value.strip())
        else:
            violations.add(path, "must be a number or a decimal string")
            return None
    except InvalidOperation:
        violations.add(path, f"{value.string_value!r} is not a decimal number")
        return None
    if not result.is_finite():
        violations.add(path, "must be a finite number")
        return None
    if result < 0:
        violations.add(path, "must not be negative")
        return None
    return result


def _decimal_text(value: struct_pb2.Value, path: str, violations: ViolationCollector) -> str | None:
    number = _decimal(value, path, violations)
    return None if number is None else money.format_decimal(number)


def _amount(message: Any, name: str, path: str, currency: str | None, violations: ViolationCollector) -> int | None:
    """An amount in major units as minor units of `currency`; None if absent, or if the
    currency is not one (Create reports that)."""
    if not message.HasField(name):
        return None
    number = _decimal(getattr(message, name), path, violations)
    if number is None or currency is None:
        return None
    try:
        return money.parse_major(str(number), currency)
    except ValueError as exc:
        violations.add(path, str(exc))
        return None


def _text(value: str) -> str | None:
    """proto3 strings cannot be unset: empty (or blank) means "not given"."""
    return value.strip() or None


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


@dataclass
class _CreateReader:
    """Reads seed 003's body into a StatedInvoice. Bad fields are named as the body names them
    (`data.attributes.status`, `included[1].attributes.unit_price`); `names` renames the service's
    field paths (`invoice.status`, `totals.grand_total`) to the body's."""

    request: face.CreateJsonApiInvoiceRequest
    violations: ViolationCollector = field(default_factory=ViolationCollector)
    names: dict[str, str] = field(default_factory=dict)
    # The related ids named, with the field naming each, to say which one a NotFound is about.
    named_ids: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, id, field)

    def read(self) -> StatedInvoice:
        resource, prefix = self._resource()
        attributes, relationships = resource.attributes, resource.relationships
        a, r = f"{prefix}attributes.", f"{prefix}relationships."
        if not resource.type:
            self.violations.add(f"{prefix}type", "is required")
        elif resource.type not in _INVOICE_TYPES:
            self.violations.add(f"{prefix}type", f"must be invoices (got {resource.type!r})")
        if not resource.HasField("attributes"):
            self.violations.add(f"{prefix}attributes", "is required")
        currency = attributes.local_currency.strip()
        valid_currency = currency if money.is_currency(currency) else None
        document_type = parse_choice(
            attributes.document_type_code, f"{a}document_type_code", DocumentTypeCode, self.violations
        )
        issuer = self._to_one(relationships, "issuer", "company", r)
        receiver = self._to_one(relationships, "receiver", "company", r)
        contract = self._to_one(relationships, "contract", "contract", r)
        payment_means_key = "payment_type"
        if relationships.payment_means.data:
            payment_means_key = "payment_means"
            if relationships.payment_type.data:
                self.violations.add(
                    f"{r}payment_means", "give payment means as payment_type or payment_means, not both"
                )
        new = NewInvoice(
            billing_type=parse_choice(attributes.billing_context, f"{a}billing_context", BillingType, self.violations),
            currency=currency,
            line_items=self._line_items(relationships, valid_currency, currency, r),
            status=parse_choice(attributes.status, f"{a}status", InvoiceStatus, self.violations),
            issuer_company_id=issuer,
            receiver_company_id=receiver,
            contract_id=contract,
            external_id=self._reference_number(attributes.reference_number, f"{a}reference_number"),
            issue_date=parse_day(attributes.issue_date, f"{a}issue_date", self.violations),
            due_date=parse_day(attributes.due_date, f"{a}due_date", self.violations),
            terms=_text(attributes.terms),
            description=_text(attributes.description),
            payment_means_ids=self._to_many(
                getattr(relationships, payment_means_key),
                "payment_means",
                f"{r}{payment_means_key}",
                "payment_means_ids",
            ),
            document_ids=self._to_many(relationships.documents, "document", f"{r}documents", "document_ids"),
            person_ids=self._to_many(relationships.people, "people", f"{r}people", "person_ids"),
        )
        totals = attributes.local_totals
        t = f"{a}local_totals."
        if not new.line_items:
            # The one line priced from the stated totals (see stated_invoice.summary_line).
            self.names["invoice.line_items[0].unit_price_minor"] = f"{t}items_total"
            self.names["invoice.line_items[0].tax_minor"] = f"{t}tax_total"
            self.names["invoice.line_items[0]"] = f"{a}local_totals"
        stated_totals = StatedTotals(
            items_total_minor=_amount(totals, "items_total", f"{t}items_total", valid_currency, self.violations),
            tax_total_minor=_amount(totals, "tax_total", f"{t}tax_total", valid_currency, self.violations),
            grand_total_minor=_amount(totals, "grand_total", f"{t}grand_total", valid_currency, self.violations),
        )
        payment = None
        if attributes.HasField("payment_status"):
            status = attributes.payment_status
            p = f"{a}payment_status."
            payment = StatedPayment(
                paid=status.paid,
                amount_paid_minor=_amount(
                    status, "local_amount_paid", f"{p}local_amount_paid", valid_currency, self.violations
                ),
                amount_remaining_minor=_amount(
                    status, "local_amount_remaining", f"{p}local_amount_remaining", valid_currency, self.violations
                ),
            )
        self.names.update(
            {
                "invoice.billing_type": f"{a}billing_context",
                "invoice.currency_code": f"{a}local_currency",
                "invoice.status": f"{a}status",
                "invoice.issue_date": f"{a}issue_date",
                "invoice.due_date": f"{a}due_date",
                "invoice.line_items": f"{r}invoice_items",
                "invoice.contract_id": f"{r}contract.data.id",
                "document_type_code": f"{a}document_type_code",
                "totals.items_total": f"{t}items_total",
                "totals.tax_total": f"{t}tax_total",
                "totals.grand_total": f"{t}grand_total",
                "payment.paid": f"{a}payment_status.paid",
                "payment.amount_paid": f"{a}payment_status.local_amount_paid",
                "payment.amount_remaining": f"{a}payment_status.local_amount_remaining",
                "payment": f"{a}payment_status",
            }
        )
        return StatedInvoice(
            invoice=new,
            totals=stated_totals,
            payment=payment,
            document_type_code=document_type,
            summary_line_name=new.description or "Invoice total",
        )

    def _resource(self) -> tuple[face.JsonApiNewInvoice, str]:
        """The invoice resource and the prefix its fields are named with ("data." if wrapped)."""
        request = self.request
        bare = bool(request.type) or request.HasField("attributes") or request.HasField("relationships")
        if request.HasField("data"):
            if bare:
                self.violations.add("data", "give the invoice either in data or bare, not both")
            return request.data, "data."
        if not bare:
            raise InvalidArgument.single("data", "is required")  # nothing else to check
        return (
            face.JsonApiNewInvoice(
                type=request.type, attributes=request.attributes, relationships=request.relationships
            ),
            "",
        )

    def _reference_number(self, value: str, path: str) -> str | None:
        reference = _text(value)
        if reference is not None and len(reference) > MAX_REFERENCE_LENGTH:
            self.violations.add(path, f"must be at most {MAX_REFERENCE_LENGTH} characters")
            return None
        return reference

    def _to_one(self, relationships: face.JsonApiNewInvoiceRelationships, name: str, kind: str, r: str) -> str | None:
        relationship = getattr(relationships, name)
        if not relationship.HasField("data"):
            return None  # left out, or `{"data": null}`: no such relation
        path = f"{r}{name}.data"
        return self._identifier_id(relationship.data, kind, path)

    def _to_many(self, relationship: face.JsonApiToMany, kind: str, path: str, service_name: str) -> list[str]:
        ids = []
        for i, identifier in enumerate(relationship.data):
            self.names[f"invoice.{service_name}[{i}]"] = f"{path}.data[{i}].id"
            resource_id = self._identifier_id(identifier, kind, f"{path}.data[{i}]")
            if resource_id is not None:
                ids.append(resource_id)
        self.names[f"invoice.{service_name}"] = f"{path}.data"
        return ids

    def _identifier_id(self, identifier: face.JsonApiIdentifier, kind: str, path: str) -> str | None:
        if identifier.type and identifier.type != kind:
            self.violations.add(f"{path}.type", f"must be {kind} (got {identifier.type!r})")
        resource_id = identifier.id.strip()
        if not resource_id:
            self.violations.add(f"{path}.id", "is required")
            return None
        self.named_ids.append((kind, resource_id, f"{path}.id"))
        return resource_id

    def _line_items(
        self, relationships: face.JsonApiNewInvoiceRelationships, currency: str | None, currency_text: str, r: str
    ) -> list[NewLineItem]:
        """Lines from `included` items, in the order `relationships.invoice_items` lists them;
        none if nothing is included (the listed ids then name the caller's own catalog)."""
        listed = [identifier.id.strip() for identifier in relationships.invoice_items.data]
        for i, identifier in enumerate(relationships.invoice_items.data):
            if identifier.type and identifier.type != "invoice_item":
                self.violations.add(
                    f"{r}invoice_items.data[{i}].type", f"must be invoice_item (got {identifier.type!r})"
                )
        included: dict[str, int] = {}
        for j, item in enumerate(self.request.included):
            if item.type != "invoice_item":
                self.violations.add(f"included[{j}].type", f"must be invoice_item (got {item.type!r})")
            if item.id in included:
                self.violations.add(f"included[{j}].id", f"repeats invoice_item {item.id!r}")
            elif item.id not in listed:
                self.violations.add(f"included[{j}].id", f"is not listed in {r}invoice_items")
            included.setdefault(item.id, j)
        if not included:
            return []
        lines: list[NewLineItem] = []
        for i, item_id in enumerate(listed):
            if item_id not in included:
                self.violations.add(f"{r}invoice_items.data[{i}].id", "has no invoice_item in included to price it")
                continue
            j = included[item_id]
            self._name_line(len(lines), j)
            lines.append(
                self._line(self.request.included[j].attributes, f"included[{j}].attributes", currency, currency_text)
            )
        return lines

    def _name_line(self, index: int, j: int) -> None:
        line, item = f"invoice.line_items[{index}]", f"included[{j}].attributes"
        for service_name, face_name in (
            ("unit_price_minor", "unit_price"),
            ("tax.rate_percent", "tax.rate"),
            ("period.end_time", "period.end"),
        ):
            self.names[f"{line}.{service_name}"] = f"{item}.{face_name}"
        self.names[line] = item

    def _line(
        self, attributes: face.JsonApiNewInvoiceItemAttributes, path: str, currency: str | None, currency_text: str
    ) -> NewLineItem:
        if attributes.currency and attributes.currency != currency_text:
            self.violations.add(f"{path}.currency", f"must be the invoice's local_currency {currency_text!r}")
        if not attributes.HasField("unit_price"):
            self.violations.add(f"{path}.unit_price", "is required")
        unit_price = _amount(attributes, "unit_price", f"{path}.unit_price", currency, self.violations)
        tax, period = attributes.tax, attributes.period
        return NewLineItem(
            name=attributes.name,
            quantity=_decimal_text(attributes.quantity, f"{path}.quantity", self.violations) or "1",
            unit_price_minor=unit_price or 0,
            tax_rate_percent=_decimal_text(tax.rate, f"{path}.tax.rate", self.violations),
            tax_category=_text(tax.category),
            tax_scheme=_text(tax.scheme),
            sku=_text(attributes.sku),
            description=_text(attributes.description),
            unit=_text(attributes.unit),
            period_start=_midnight(parse_day(period.start, f"{path}.period.start", self.violations)),
            period_end=_midnight(parse_day(period.end, f"{path}.period.end", self.violations)),
            min_quantity=_decimal_text(attributes.min_quantity, f"{path}.min_quantity", self.violations),
            max_quantity=_decimal_text(attributes.max_quantity, f"{path}.max_quantity", self.violations),
        )


def _face_error(error: InvalidArgument, names: dict[str, str]) -> InvalidArgument:
    """The error with the face's field names, one violation per field (a value the face could
    not read is not also reported as missing by the service)."""
    seen: set[str] = set()
    violations: list[FieldViolation] = []
    for violation in renamed(error, names).violations:
        if violation.field not in seen:
            seen.add(violation.field)
            violations.append(violation)
    return InvalidArgument(violations)


_KIND_LABELS = {
    "company": "company",
    "payment_means": "payment means",
    "document": "document",
    "people": "person",
    "contract": "contract",
}


async def _missing_related(session: AsyncSession, tenant_id: uuid.UUID, named_ids: list[tuple[str, str, str]]) -> str:
    """'<field>: no company 'x'; …' for each named id the tenant does not have ("" if none)."""

    def ids_of(kind: str) -> list[str]:
        return [resource_id for k, resource_id, _ in named_ids if k == kind]

    related = await load_related(
        session,
        tenant_id,
        RelatedIds(
            company_ids=ids_of("company"),
            payment_means_ids=ids_of("payment_means"),
            document_ids=ids_of("document"),
            person_ids=ids_of("people"),
        ),
    )
    found: dict[str, Collection[str]] = {
        "company": related.companies,
        "payment_means": related.payment_means,
        "document": related.documents,
        "people": related.people,
        "contract": await existing_contract_ids(session, tenant_id, ids_of("contract")),
    }
    return "; ".join(
        f"{path}: no {_KIND_LABELS[kind]} {resource_id!r}"
        for kind, resource_id, path in named_ids
        if resource_id not in found[kind]
    )


# --- the servicer -------------------------------------------------------------------------


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
        self, request: face.GetJsonApiInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> face.JsonApiInvoiceDocument:
        violations = ViolationCollector()
        includes = parse_includes(request.include, violations)
        violations.raise_if_any()
        invoice_ref = _invoice_ref(request.id)
        tenant_id = current_caller().tenant_id
        async with self.db.read() as session:
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
        self, request: face.CreateJsonApiInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> face.JsonApiInvoiceDocument:
        reader = _CreateReader(request)
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
                    missing = await _missing_related(session, caller.tenant_id, reader.named_ids)
                    raise NotFound(missing or error.message) from error
                wanted = wanted_related_ids([record], ALL_INCLUDES)
                related = await load_related(session, caller.tenant_id, wanted)
        except InvalidArgument as error:
            raise _face_error(error, reader.names) from error
        # Only now, after the commit: the 201 hint leaves at once and cannot be taken back.
        await created(context, f"/v1/invoices/{_INVOICE_ID_PREFIX}{record.id}")
        return face.JsonApiInvoiceDocument(
            data=jsonapi_invoice_to_pb(record, related.contract_ids),
            included=included_resources([record], related, wanted, ALL_INCLUDES, str(caller.tenant_id)),
        )


def _idempotency_key(context: grpc.aio.ServicerContext, violations: ViolationCollector) -> str | None:
    """The `Idempotency-Key` header (gRPC metadata `idempotency-key`), if sent."""
    keys = [value for key, value in context.invocation_metadata() or () if key == "idempotency-key"]
    if not keys:
        return None
    key = str(keys[0]).strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        violations.add("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
        return None
    return key
