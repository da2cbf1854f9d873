"""Test-data builders: insert rows through the typed models inside the caller's write session.

    async with api.db.write() as s:
        source = await make_data_source(s, api.tenant_id)
        customer = await make_customer(s, api.tenant_id, data_source=source)
        invoice = await make_invoice(s, api.tenant_id, customer=customer, lines=[line("Pro", "1", 9900)])

Every builder takes keyword overrides for any model column and fills the rest with valid,
unique values. Invoices get real numbers from the tenant's gapless series and consistent
amounts: sub_total = Σ line sub-totals, total = sub_total − discount + tax, and paid/remaining
follow the status (paid: fully paid; sent and draft: nothing paid; cancelled: nothing due).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import AccountingEventType, BillingType, DocumentTypeCode, InvoiceStatus
from invoice_rpc.domain.money import multiply_minor
from invoice_rpc.service.numbering import next_invoice_number, reserve_invoice_numbers
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow

RowT = TypeVar("RowT", bound=m.Base)


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _add(session: AsyncSession, row: RowT) -> RowT:
    session.add(row)
    await session.flush()
    return row


async def make_data_source(session: AsyncSession, tenant_id: uuid.UUID, **overrides: Any) -> m.DataSource:
    values: dict[str, Any] = {"id": uuid.uuid4(), "tenant_id": tenant_id, "name": _unique("source")}
    return await _add(session, m.DataSource(**(values | overrides)))


async def make_company(session: AsyncSession, tenant_id: uuid.UUID, **overrides: Any) -> m.Company:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "external_id": _unique("company"),
        "name": "Example GmbH",
        "legal_name": "Example GmbH",
        "details": {},
        "fingerprint": "test",
    }
    return await _add(session, m.Company(**(values | overrides)))


async def make_customer(
    session: AsyncSession, tenant_id: uuid.UUID, *, data_source: m.DataSource | None = None, **overrides: Any
) -> m.Customer:
    """A customer; a data source is made for it unless given (or `data_source_id` is overridden)."""
    if data_source is None and "data_source_id" not in overrides:
        data_source = await make_data_source(session, tenant_id)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "data_source_id": data_source.id if data_source else None,
        "external_id": _unique("cus"),
        "name": "Acme Corporation",
        "legal_name": "Acme Corp Ltd",
        "email": "billing@acme.example",
        "fingerprint": "test",
    }
    return await _add(session, m.Customer(**(values | overrides)))


async def make_plan(
    session: AsyncSession, tenant_id: uuid.UUID, *, data_source: m.DataSource | None = None, **overrides: Any
) -> m.Plan:
    if data_source is None and "data_source_id" not in overrides:
        data_source = await make_data_source(session, tenant_id)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "data_source_id": data_source.id if data_source else None,
        "external_id": _unique("plan"),
        "name": "Pro",
        "interval": "month",
        "amount_minor": 9900,
        "currency": "USD",
        "fingerprint": "test",
    }
    return await _add(session, m.Plan(**(values | overrides)))


async def make_contract(
    session: AsyncSession, tenant_id: uuid.UUID, *, customer: m.Customer | None = None, **overrides: Any
) -> m.Contract:
    """A contract of `customer` (made if not given), numbered after the tenant's highest."""
    if customer is None and "customer_id" not in overrides:
        customer = await make_customer(session, tenant_id)
    highest = select(func.coalesce(func.max(m.Contract.contract_number), 0)).where(m.Contract.tenant_id == tenant_id)
    next_number = int((await session.execute(highest)).scalar_one()) + 1
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "external_id": _unique("contract"),
        "contract_number": next_number,
        "customer_id": customer.id if customer else None,
        "name": "Master agreement",
        "last_number_in_contract": 0,
        "fingerprint": "test",
    }
    return await _add(session, m.Contract(**(values | overrides)))


def line(
    name: str = "Pro plan",
    quantity: str = "1",
    unit_price_minor: int = 9900,
    *,
    tax_minor: int = 0,
    discount_minor: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """A line item spec for `make_invoice(lines=[...])`, with its own consistent amounts."""
    sub_total = multiply_minor(Decimal(quantity), unit_price_minor)
    return {
        "name": name,
        "quantity": quantity,
        "unit_price_minor": unit_price_minor,
        "discount_minor": discount_minor,
        "sub_total_minor": sub_total,
        "tax_minor": tax_minor,
        "total_minor": sub_total - discount_minor + tax_minor,
        **overrides,
    }


def _amounts(status: str, sub_total: int, discount: int, tax: int, credits: int) -> dict[str, int]:
    total = sub_total - discount + tax
    paid = total - credits if status == InvoiceStatus.PAID else 0
    remaining = 0 if status in (InvoiceStatus.PAID, InvoiceStatus.CANCELLED) else total - credits - paid
    return {
        "sub_total_minor": sub_total,
        "total_discount_minor": discount,
        "total_tax_minor": tax,
        "credits_minor": credits,
        "total_minor": total,
        "amount_paid_minor": paid,
        "amount_remaining_minor": remaining,
    }


def invoice_values(
    tenant_id: uuid.UUID,
    invoice_number: str,
    *,
    status: str = InvoiceStatus.SENT,
    billing_type: str = BillingType.SUBSCRIPTION,
    currency: str = "USD",
    sub_total_minor: int = 9900,
    total_discount_minor: int = 0,
    total_tax_minor: int = 0,
    credits_minor: int = 0,
    issue_date: date | None = None,
    customer: m.Customer | None = None,
    contract: m.Contract | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Column values of one consistent invoice row (for `insert(m.Invoice)` or `m.Invoice(**...)`)."""
    credit_note = BillingType(billing_type).is_credit_note
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "invoice_number": invoice_number,
        "document_type_code": DocumentTypeCode.CREDIT_NOTE if credit_note else DocumentTypeCode.COMMERCIAL_INVOICE,
        "accounting_event_type": AccountingEventType.CREDIT_NOTE if credit_note else AccountingEventType.INVOICE,
        "billing_type": str(billing_type),
        "status": str(status),
        "customer_id": customer.id if customer else None,
        "contract_id": contract.id if contract else None,
        "currency": currency,
        "issue_date": issue_date or now.date(),
        "is_partial_period": False,
        "created_at": now,
        "updated_at": now,
        **_amounts(status, sub_total_minor, total_discount_minor, total_tax_minor, credits_minor),
    }
    return values | overrides


async def make_invoice(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    lines: Sequence[Mapping[str, Any]] = (),
    issue_date: date | None = None,
    **overrides: Any,
) -> m.Invoice:
    """One invoice numbered from the tenant's series for its issue year. With `lines` (see
    `line()`), the invoice's sub-total, discount and tax are their sums; any column can be
    overridden (`total_minor=...` etc. win over the computed amounts)."""
    issue_date = issue_date or utcnow().date()
    if lines:
        overrides.setdefault("sub_total_minor", sum(li["sub_total_minor"] for li in lines))
        overrides.setdefault("total_discount_minor", sum(li.get("discount_minor", 0) for li in lines))
        overrides.setdefault("total_tax_minor", sum(li.get("tax_minor", 0) for li in lines))
    number = overrides.pop("invoice_number", None) or await next_invoice_number(session, tenant_id, issue_date.year)
    invoice = m.Invoice(**invoice_values(tenant_id, number, issue_date=issue_date, **overrides))
    session.add(invoice)
    await session.flush()
    for position, spec in enumerate(lines, start=1):
        session.add(m.InvoiceLine(id=uuid.uuid4(), invoice_id=invoice.id, position=position, **spec))
    await session.flush()
    return invoice


async def make_invoices_bulk(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    count: int,
    *,
    issue_date: date | None = None,
    created_from: datetime | None = None,
    each: Callable[[int], Mapping[str, Any]] | None = None,
    **overrides: Any,
) -> list[uuid.UUID]:
    """`count` invoices (no lines) in one set-based INSERT, numbered consecutively in the issue
    year's series. created_at steps one millisecond per invoice from `created_from` (default: now
    minus `count` ms), so their order is known. `each(i)` may return per-row overrides.
    Returns the ids in insertion order."""
    issue_date = issue_date or utcnow().date()
    start = created_from or (utcnow() - timedelta(milliseconds=count))
    numbers = await reserve_invoice_numbers(session, tenant_id, issue_date.year, count)
    rows = []
    for i, number in enumerate(numbers):
        created_at = start + timedelta(milliseconds=i)
        row = invoice_values(
            tenant_id, number, issue_date=issue_date, created_at=created_at, updated_at=created_at, **overrides
        )
        if each is not None:
            row |= each(i)
        rows.append(row)
    if rows:
        await session.execute(insert(m.Invoice), rows)
    return [row["id"] for row in rows]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC datetime, for created_at overrides."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The field names of an INVALID_ARGUMENT error's google.rpc.BadRequest, in order."""
    status = rpc_status.from_call(error)
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.extend(v.field for v in bad_request.field_violations)
    return fields
