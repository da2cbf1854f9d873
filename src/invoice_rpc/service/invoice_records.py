"""The invoice read model: one typed record per invoice with everything a reader shows, loaded
with one query for the invoices and one per child table for a whole batch (never per row).

On PostgreSQL the linked ids (payment means, documents, people) come as array columns of the
invoice query itself, so a page or batch without line items is one statement. Rows are read as
Core rows (no ORM objects) and records are built positionally.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Dialect,
    LargeBinary,
    Select,
    Text,
    Uuid,
    any_,
    case,
    cast,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.types import TypeDecorator

from invoice_rpc.storage import models as m


# The records are read-only by convention (change one with dataclasses.replace) but not frozen:
# a frozen dataclass's __init__ sets every field through object.__setattr__, which made building
# an InvoiceRecord cost 6.4 µs against 0.5 µs, on a path that builds 50 per listed page.
@dataclass(slots=True)
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


@dataclass(slots=True)
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


_LINK_FIELDS = ("payment_means_ids", "document_ids", "person_ids")

_customer = aliased(m.Customer, name="customer")
_contract = aliased(m.Contract, name="contract")
_issuer = aliased(m.Company, name="issuer")
_receiver = aliased(m.Company, name="receiver")
_plan = aliased(m.Plan, name="plan")
_order = aliased(m.Order, name="source_order")

# The record's scalar fields in declaration order: a row of `invoice_record_select()` lists its
# columns in this order, so a record is built positionally (no dict per row).
_SCALAR_FIELDS = tuple(f.name for f in fields(InvoiceRecord) if f.name not in ("line_items", *_LINK_FIELDS))
_PARENT_COLUMNS: dict[str, Any] = {
    "customer_ref": _customer.id,
    "customer_external_id": _customer.external_id,
    "customer_name": _customer.name,
    "customer_legal_name": _customer.legal_name,
    "contract_ref": _contract.id,
    "contract_number": _contract.contract_number,
    "issuer_company_id": _issuer.external_id,
    "issuer_company_name": _issuer.name,
    "issuer_company_legal_name": _issuer.legal_name,
    "receiver_company_id": _receiver.external_id,
    "plan_id": _plan.external_id,
    "order_id": _order.external_id,
}
_LINKS: dict[str, tuple[Any, Any, Any]] = {
    "payment_means_ids": (m.InvoicePaymentMeans, m.InvoicePaymentMeans.payment_means_id, m.PaymentMeans),
    "document_ids": (m.InvoiceDocument, m.InvoiceDocument.document_id, m.Document),
    "person_ids": (m.InvoicePerson, m.InvoicePerson.person_id, m.Person),
}


class _TextList(TypeDecorator[list[str]]):
    """PostgreSQL text[] taken as psycopg gives it, a list of str. ARRAY's own result processor
    copies every list: three calls a row, 150 a list page, for nothing."""

    impl = ARRAY(Text)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


def _linked_ids_column(name: str, invoice: Any, *, hashed_probe: bool) -> Any:
    """PostgreSQL: the invoice's linked external ids in position order, as one array column
    (NULL when there are none), so a page needs no query per link table.

    With `hashed_probe` (statements over many invoices: streams) the per-invoice subquery runs only
    for invoices in the link table: PostgreSQL hashes the table's invoice ids once (a hashed
    SubPlan) and probes that per row. On the 1M-invoice bench tenant, where one invoice in ten has
    a payment means, that takes the three link columns from ~10 µs to ~2 µs per streamed invoice;
    a page of 50 would pay the hashing for nothing, so pages keep the plain subquery."""
    link, link_target, target = _LINKS[name]
    linked = (
        select(func.array_agg(aggregate_order_by(target.external_id, link.position), type_=_TextList()))
        .select_from(link)
        .join(target, target.id == link_target)
        .where(link.invoice_id == invoice.id)
        .scalar_subquery()
    )
    if not hashed_probe:
        return linked.label(name)
    return case((invoice.id.in_(select(link.invoice_id)), linked), else_=null()).label(name)


def invoice_record_select(
    invoice: Any = m.Invoice,
    *,
    with_links: bool = False,
    hashed_link_probe: bool = False,
    with_own_wire: bool = False,
) -> Select[Any]:
    """SELECT of every column an InvoiceRecord needs, joined to its parents; add WHERE and
    ORDER BY (always with the tenant) and read rows with `record_from_row`.

    `invoice` may be an alias of a subquery of invoices (a page already cut to size), so the
    parents are joined to those rows only. `with_links` (PostgreSQL only) adds the linked ids
    of payment means, documents and people as array columns; `hashed_link_probe` suits a statement
    that reads many invoices (see `_linked_ids_column`); `with_own_wire` adds `own_wire` last
    (for rpc/invoice_wire.py, not for `record_from_row`)."""
    columns = [
        _PARENT_COLUMNS[name].label(name) if name in _PARENT_COLUMNS else getattr(invoice, name)
        for name in _SCALAR_FIELDS
    ]
    if with_links:
        columns += [_linked_ids_column(name, invoice, hashed_probe=hashed_link_probe) for name in _LINK_FIELDS]
    if with_own_wire:
        columns.append(invoice.own_wire)
    return _with_parents(select(*columns), invoice)


def _with_parents(statement: Select[Any], invoice: Any) -> Select[Any]:
    return (
        statement.select_from(invoice)
        .outerjoin(_customer, _customer.id == invoice.customer_id)
        .outerjoin(_contract, _contract.id == invoice.contract_id)
        .outerjoin(_issuer, _issuer.id == invoice.issuer_company_id)
        .outerjoin(_receiver, _receiver.id == invoice.receiver_company_id)
        .outerjoin(_plan, _plan.id == invoice.plan_id)
        .outerjoin(_order, _order.id == invoice.order_id)
    )


def stored_own_wire(invoice: Any) -> ColumnElement[bytes]:
    """PostgreSQL: `invoices.own_wire` (the wire bytes of the invoice's own fields, kept by the
    trigger of migration 0006), or an error naming the invoice when it is missing (a load that
    ran with the trigger disabled) rather than an invoice without those fields."""
    return func.coalesce(invoice.own_wire, func.invoice_own_wire_missing(invoice.id, type_=LargeBinary))


class InvoicePartsRow(NamedTuple):
    """An invoice in two parts (PostgreSQL, basic view: no line items): the stored wire bytes of
    its own fields, and the values of the fields that come from its parents and links, which are
    read, never stored with the invoice, so that a renamed parent shows at once."""

    own_wire: bytes
    customer_ref: str | None
    customer_external_id: str | None
    customer_name: str | None
    customer_legal_name: str | None
    contract_ref: str | None
    contract_number: int | None
    issuer_company_id: str | None
    receiver_company_id: str | None
    plan_id: str | None
    order_id: str | None
    payment_means_ids: list[str] | None
    document_ids: list[str] | None
    person_ids: list[str] | None


def invoice_parts_select(invoice: Any = m.Invoice) -> Select[Any]:
    """PostgreSQL: SELECT of an InvoicePartsRow's columns (in order) per invoice, joined to its
    parents; `invoice` as for `invoice_record_select`. Far fewer values per row to read than a
    record's, and none to convert but a few strings."""
    columns: list[Any] = [stored_own_wire(invoice).label("own_wire")]
    # After `own_wire`, the fields that come from the invoice's parents and links, ids as text
    # (as the rpc edge writes them).
    for name in InvoicePartsRow._fields[1:]:
        if name in _LINK_FIELDS:
            columns.append(_linked_ids_column(name, invoice, hashed_probe=False))
        elif name in ("customer_ref", "contract_ref"):
            columns.append(cast(_PARENT_COLUMNS[name], Text).label(name))
        else:
            columns.append(_PARENT_COLUMNS[name].label(name))
    return _with_parents(select(*columns), invoice)


def record_from_row(row: Any) -> InvoiceRecord:
    """An InvoiceRecord from a row of `invoice_record_select()`: without children, or with the
    linked ids when the select had `with_links`."""
    if len(row) == len(_SCALAR_FIELDS):
        return InvoiceRecord(*row)
    scalars = len(_SCALAR_FIELDS)
    links = (tuple(ids or ()) for ids in row[scalars:])
    return InvoiceRecord(*row[:scalars], (), *links)  # type: ignore[call-arg]  # fields in select order


async def core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for Core statements that need no ORM objects (cheaper per
    row). Pending ORM changes are flushed first, as the session's own execute would: a write
    that reads back what it just changed must see it."""
    await session.flush()
    return await session.connection()


def links_in_select(session: AsyncSession) -> bool:
    """Whether `invoice_record_select(with_links=True)` works on the session's database."""
    return session.get_bind().dialect.name == "postgresql"


async def attach_children(
    session: AsyncSession, records: Sequence[InvoiceRecord], *, with_line_items: bool, links_loaded: bool = False
) -> list[InvoiceRecord]:
    """The records with their payment means, documents, people (unless `links_loaded`: the
    rows came from a select `with_links`) and (optionally) line items, fetched with one query
    per child table for the whole batch."""
    if not records:
        return []
    if links_loaded and not with_line_items:
        return list(records)
    ids = [r.id for r in records]
    lines: dict[uuid.UUID, list[LineItemRecord]] = defaultdict(list)
    if with_line_items:
        for line in await load_line_items(session, ids):
            lines[line[0]].append(line[1])
    if links_loaded:
        return [replace(r, line_items=tuple(lines.get(r.id, ()))) for r in records]
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
    ids = list(invoice_ids)
    stmt = (
        select(m.InvoiceLine.invoice_id, *(getattr(m.InvoiceLine, c) for c in _LINE_COLUMNS))
        .where(_id_in(session, m.InvoiceLine.invoice_id, ids))
        .order_by(m.InvoiceLine.invoice_id, m.InvoiceLine.position)
    )
    result = await session.execute(stmt)
    pairs = []
    for row in result:
        values = row._asdict()
        invoice_id = values.pop("invoice_id")
        pairs.append((invoice_id, LineItemRecord(**values)))
    return pairs


def _id_in(session: AsyncSession, column: Any, ids: list[uuid.UUID]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`: one parameter, however many ids (an
    IN list of a thousand placeholders costs the driver more than the query)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(literal(ids, type_=ARRAY(Uuid)), ARRAY(Uuid)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


async def _linked_external_ids(
    session: AsyncSession, link: Any, link_target: Any, target: Any, invoice_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    stmt = (
        select(link.invoice_id, target.external_id)
        .join(target, target.id == link_target)
        .where(_id_in(session, link.invoice_id, invoice_ids))
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
    links = links_in_select(session)
    stmt = invoice_record_select(with_links=links).where(m.Invoice.tenant_id == tenant_id, m.Invoice.id == invoice_id)
    row = (await (await core_connection(session)).execute(stmt)).one_or_none()
    if row is None:
        return None
    [record] = await attach_children(
        session, [record_from_row(row)], with_line_items=with_line_items, links_loaded=links
    )
    return record
