"""Seed 003's `POST /v1/invoices` body read into a StatedInvoice for the Create use case, with
every bad field named as the body names it (`data.attributes.status`, `included[1]...`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf import struct_pb2
from invoice_rpc.v1 import jsonapi_face_pb2 as face
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain import money
from invoice_rpc.domain.enums import BillingType, DocumentTypeCode, InvoiceStatus
from invoice_rpc.domain.errors import FieldViolation, InvalidArgument, ViolationCollector
from invoice_rpc.rpc.faces.rest import parse_choice, parse_day, renamed
from invoice_rpc.service.invoice_create import NewInvoice, NewLineItem
from invoice_rpc.service.invoice_related import RelatedIds, existing_contract_ids, load_related
from invoice_rpc.service.stated_invoice import StatedInvoice, StatedPayment, StatedTotals

MAX_REFERENCE_LENGTH = 200  # the width of invoices.external_id, where reference_number is kept
_INVOICE_TYPES = ("invoices", "invoice")  # seed 003 sends "invoices"; its answers say "invoice"


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
class CreateReader:
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


def face_error(error: InvalidArgument, names: dict[str, str]) -> InvalidArgument:
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


async def missing_related(session: AsyncSession, tenant_id: uuid.UUID, named_ids: list[tuple[str, str, str]]) -> str:
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
