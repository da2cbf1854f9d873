"""The invoice read model: one typed record per invoice with everything a reader shows, loaded
with one query for the invoices and one per child table for a whole batch (never per row)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class LineItemRecord:
    id: uuid.UUID
    position: int
    sku: str | None
    name: str
    description: str | None
    quantity: str
    unit: str | None
    unit_price_minor: int
    discount_minor: int
    tax_rate: str | None
    tax_category: str | None
    tax_scheme: str | None
    period_start: datetime | None
    period_end: datetime | None
    minimum_fee_minor: int
    min_quantity: str | None
    max_quantity: str | None
    sub_total_minor: int
    tax_minor: int
    total_minor: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    id: uuid.UUID
    invoice_number: str
    data_source_id: uuid.UUID | None
    external_id: str | None
    document_type_code: str
    accounting_event_type: str
    billing_type: str
    status: str
    customer_ref: uuid.UUID | None
    customer_external_id: str | None
    customer_name: str | None
    customer_legal_name: str | None
    contract_ref: uuid.UUID | None
    contract_number: int | None
    number_in_contract: int | None
    issuer_company_id: str | None
    issuer_company_name: str | None
    issuer_company_legal_name: str | None
    receiver_company_id: str | None
    plan_id: str | None
    subscription_id: str | None
    currency: str
    sub_total_minor: int
    total_discount_minor: int
    total_tax_minor: int
    credits_minor: int
    total_minor: int
    amount_paid_minor: int
    amount_remaining_minor: int
    net_terms_days: int | None
    payment_term: str | None
    issue_date: date
    due_date: date | None
    submitted_at: datetime | None
    paid_at: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    is_partial_period: bool
    terms: str | None
    description: str | None
    quantity: str | None
    order_id: str | None
    created_at: datetime
    updated_at: datetime
    line_items: tuple[LineItemRecord, ...] = field(default=())
    payment_means_ids: tuple[str, ...] = field(default=())
    document_ids: tuple[str, ...] = field(default=())
    person_ids: tuple[str, ...] = field(default=())


_customer = aliased(m.Customer, name="customer")
_contract = aliased(m.Contract, name="contract")
_issuer = aliased(m.Company, name="issuer")
_receiver = aliased(m.Company, name="receiver")
_plan = aliased(m.Plan, name="plan")
_order = aliased(m.Order, name="source_order")

_INVOICE_COLUMNS = (
    "id invoice_number data_source_id external_id document_type_code accounting_event_type "
    "billing_type status number_in_contract subscription_id currency sub_total_minor "
    "total_discount_minor total_tax_minor credits_minor total_minor amount_paid_minor "
    "amount_remaining_minor net_terms_days payment_term issue_date due_date submitted_at paid_at "
    "period_start period_end is_partial_period terms description quantity created_at updated_at"
).split()


def invoice_record_select() -> Select[Any]:
    """SELECT of every column an InvoiceRecord needs, joined to its parents; add WHERE and
    ORDER BY (always with m.Invoice.tenant_id) and read rows with `record_from_row`."""
    return (
        select(
            *(getattr(m.Invoice, name) for name in _INVOICE_COLUMNS),
            _customer.id.label("customer_ref"),
            _customer.external_id.label("customer_external_id"),
            _customer.name.label("customer_name"),
            _customer.legal_name.label("customer_legal_name"),
            _contract.id.label("contract_ref"),
            _contract.contract_number.label("contract_number"),
            _issuer.external_id.label("issuer_company_id"),
            _issuer.name.label("issuer_company_name"),
            _issuer.legal_name.label("issuer_company_legal_name"),
            _receiver.external_id.label("receiver_company_id"),
            _plan.external_id.label("plan_id"),
            _order.external_id.label("order_id"),
        )
        .select_from(m.Invoice)
        .outerjoin(_customer, _customer.id == m.Invoice.customer_id)
        .outerjoin(_contract, _contract.id == m.Invoice.contract_id)
        .outerjoin(_issuer, _issuer.id == m.Invoice.issuer_company_id)
        .outerjoin(_receiver, _receiver.id == m.Invoice.receiver_company_id)
        .outerjoin(_plan, _plan.id == m.Invoice.plan_id)
        .outerjoin(_order, _order.id == m.Invoice.order_id)
    )


def record_from_row(row: Any) -> InvoiceRecord:
    """An InvoiceRecord (without children) from a row of `invoice_record_select()`."""
    return InvoiceRecord(**row._asdict())


async def attach_children(
    session: AsyncSession, records: Sequence[InvoiceRecord], *, with_line_items: bool
) -> list[InvoiceRecord]:
    """The records with their payment means, documents, people and (optionally) line items,
    fetched with one query per child table for the whole batch."""
    if not records:
        return []
    ids = [r.id for r in records]
    lines: dict[uuid.UUID, list[LineItemRecord]] = defaultdict(list)
    if with_line_items:
        for line in await load_line_items(session, ids):
            lines[line[0]].append(line[1])
    payment_means = await _linked_external_ids(
        session, m.InvoicePaymentMeans, m.InvoicePaymentMeans.payment_means_id, m.PaymentMeans, ids
    )
    documents = await _linked_external_ids(session, m.InvoiceDocument, m.InvoiceDocument.document_id, m.Document, ids)
    people = await _linked_external_ids(session, m.InvoicePerson, m.InvoicePerson.person_id, m.Person, ids)
    return [
        replace(
            r,
            line_items=tuple(lines.get(r.id, ())),
            payment_means_ids=tuple(payment_means.get(r.id, ())),
            document_ids=tuple(documents.get(r.id, ())),
            person_ids=tuple(people.get(r.id, ())),
        )
        for r in records
    ]


_LINE_COLUMNS = [c.name for c in m.InvoiceLine.__table__.columns if c.name != "invoice_id"]


async def load_line_items(
    session: AsyncSession, invoice_ids: Iterable[uuid.UUID]
) -> list[tuple[uuid.UUID, LineItemRecord]]:
    """(invoice id, line) pairs for the invoices, ordered by invoice and position."""
    stmt = (
        select(m.InvoiceLine.invoice_id, *(getattr(m.InvoiceLine, c) for c in _LINE_COLUMNS))
        .where(m.InvoiceLine.invoice_id.in_(list(invoice_ids)))
        .order_by(m.InvoiceLine.invoice_id, m.InvoiceLine.position)
    )
    result = await session.execute(stmt)
    pairs = []
    for row in result:
        values = row._asdict()
        invoice_id = values.pop("invoice_id")
        pairs.append((invoice_id, LineItemRecord(**values)))
    return pairs


async def _linked_external_ids(
    session: AsyncSession, link: Any, link_target: Any, target: Any, invoice_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    stmt = (
        select(link.invoice_id, target.external_id)
        .join(target, target.id == link_target)
        .where(link.invoice_id.in_(invoice_ids))
        .order_by(link.invoice_id, link.position)
    )
    linked: dict[uuid.UUID, list[str]] = defaultdict(list)
    for invoice_id, external_id in await session.execute(stmt):
        linked[invoice_id].append(external_id)
    return linked


async def get_invoice_record(
    session: AsyncSession, tenant_id: uuid.UUID, invoice_id: uuid.UUID, *, with_line_items: bool = True
) -> InvoiceRecord | None:
    """One invoice of the tenant by its id (invoice_ref), with children; None if absent."""
    stmt = invoice_record_select().where(m.Invoice.tenant_id == tenant_id, m.Invoice.id == invoice_id)
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        return None
    [record] = await attach_children(session, [record_from_row(row)], with_line_items=with_line_items)
    return record
