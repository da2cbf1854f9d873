"""CreateInvoice: a draft or sent invoice from plain values, with totals computed from its lines.

Validation reports every bad field at once and happens before anything is written. The
invoice number (and the contract's number_in_contract) are taken inside the caller's write
transaction, so a create that fails later gives them back and the series stays gapless.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain import money
from invoice_rpc.domain.enums import (
    AccountingEventType,
    BillingType,
    DocumentTypeCode,
    InvoiceStatus,
    PaymentTerm,
)
from invoice_rpc.domain.errors import Aborted, InvalidArgument, NotFound, ViolationCollector
from invoice_rpc.service.audit import record_audit
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_records import InvoiceRecord, get_invoice_record
from invoice_rpc.service.invoice_totals import MAX_TAX_RATE_PERCENT, LineAmounts, invoice_amounts, line_amounts
from invoice_rpc.service.numbering import next_invoice_number
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow

CREATABLE_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.SENT)


@dataclass(frozen=True, slots=True)
class NewLineItem:
    """One line as a caller gives it; amounts are computed, never taken."""

    name: str
    quantity: str
    unit_price_minor: int
    discount_minor: int = 0
    tax_rate_percent: str | None = None
    tax_category: str | None = None
    tax_scheme: str | None = None
    sku: str | None = None
    description: str | None = None
    unit: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    minimum_fee_minor: int = 0
    min_quantity: str | None = None
    max_quantity: str | None = None
    # The line's tax as the caller's document states it, instead of rate × taxable amount: for
    # documents that give a tax amount without a rate. With a rate too, the two must agree.
    tax_minor: int | None = None


@dataclass(frozen=True, slots=True)
class NewInvoice:
    """An invoice to create. None means "not given" (defaults apply where there are any).
    Companies, plan, payment means, documents and people are named by their external ids;
    the customer by its reference (UUID text); the contract by its reference or by its
    external id (`contract_id`, unique per tenant), not both."""

    billing_type: BillingType | None
    currency: str
    line_items: Sequence[NewLineItem]
    status: InvoiceStatus | None = None
    customer_ref: str | None = None
    contract_ref: str | None = None
    contract_id: str | None = None
    issuer_company_id: str | None = None
    receiver_company_id: str | None = None
    plan_id: str | None = None
    subscription_id: str | None = None
    external_id: str | None = None
    credits_minor: int = 0
    net_terms_days: int | None = None
    payment_term: PaymentTerm | None = None
    issue_date: date | None = None
    due_date: date | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    is_partial_period: bool = False
    terms: str | None = None
    description: str | None = None
    quantity: str | None = None
    payment_means_ids: Sequence[str] = field(default=())
    document_ids: Sequence[str] = field(default=())
    person_ids: Sequence[str] = field(default=())


@dataclass(frozen=True, slots=True)
class _CheckedLine:
    line: NewLineItem
    quantity: Decimal
    tax_rate: Decimal | None
    amounts: LineAmounts


def document_type_for(billing_type: BillingType) -> tuple[DocumentTypeCode, AccountingEventType]:
    """Refunds and cancellations are credit notes (381); everything else is an invoice (380)."""
    if billing_type.is_credit_note:
        return DocumentTypeCode.CREDIT_NOTE, AccountingEventType.CREDIT_NOTE
    return DocumentTypeCode.COMMERCIAL_INVOICE, AccountingEventType.INVOICE


def line_row(invoice_id: uuid.UUID, position: int, line: NewLineItem, amounts: LineAmounts) -> m.InvoiceLine:
    """The stored line for a checked NewLineItem and its computed amounts."""
    return m.InvoiceLine(
        id=uuid.uuid4(),
        invoice_id=invoice_id,
        position=position,
        sku=line.sku,
        name=line.name.strip(),
        description=line.description,
        quantity=money.format_decimal(money.parse_quantity(line.quantity)),
        unit=line.unit,
        unit_price_minor=line.unit_price_minor,
        discount_minor=amounts.discount_minor,
        tax_rate=_normalized_rate(line.tax_rate_percent),
        tax_category=line.tax_category,
        tax_scheme=line.tax_scheme,
        period_start=line.period_start,
        period_end=line.period_end,
        minimum_fee_minor=line.minimum_fee_minor,
        min_quantity=line.min_quantity,
        max_quantity=line.max_quantity,
        sub_total_minor=amounts.sub_total_minor,
        tax_minor=amounts.tax_minor,
        total_minor=amounts.total_minor,
    )


def _normalized_rate(text: str | None) -> str | None:
    return None if text is None else money.format_decimal(Decimal(text.strip()))


def _parse_rate(text: str | None, path: str, violations: ViolationCollector) -> tuple[bool, Decimal | None]:
    if text is None:
        return True, None
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:
        violations.add(path, f"{text!r} is not a decimal number")
        return False, None
    if not rate.is_finite() or not 0 <= rate <= MAX_TAX_RATE_PERCENT:
        violations.add(path, "must be a percentage from 0 to 100")
        return False, None
    return True, rate


def _check_quantity(text: str | None, path: str, violations: ViolationCollector, *, required: bool) -> Decimal | None:
    if text is None or not text.strip():
        if required:
            violations.add(path, "is required")
        return None
    try:
        return money.parse_quantity(text)
    except ValueError as exc:
        violations.add(path, str(exc))
        return None


def _check_period(start: datetime | None, end: datetime | None, path: str, violations: ViolationCollector) -> None:
    if start is not None and end is not None and end < start:
        violations.add(f"{path}.end_time", "must not be before start_time")


def _check_line(index: int, line: NewLineItem, violations: ViolationCollector) -> _CheckedLine | None:
    path = f"invoice.line_items[{index}]"
    ok = True
    if not line.name.strip():
        violations.add(f"{path}.name", "is required")
        ok = False
    quantity = _check_quantity(line.quantity, f"{path}.quantity", violations, required=True)
    if line.unit_price_minor < 0:
        violations.add(f"{path}.unit_price_minor", "must be at least 0")
        ok = False
    if line.discount_minor < 0:
        violations.add(f"{path}.discount_minor", "must be at least 0")
        ok = False
    if line.minimum_fee_minor < 0:
        violations.add(f"{path}.minimum_fee_minor", "must be at least 0")
    _check_quantity(line.min_quantity, f"{path}.min_quantity", violations, required=False)
    _check_quantity(line.max_quantity, f"{path}.max_quantity", violations, required=False)
    _check_period(line.period_start, line.period_end, f"{path}.period", violations)
    rate_ok, rate = _parse_rate(line.tax_rate_percent, f"{path}.tax.rate_percent", violations)
    if not (ok and rate_ok) or quantity is None:
        return None
    sub_total = money.multiply_minor(quantity, line.unit_price_minor)
    if line.discount_minor > sub_total:
        violations.add(f"{path}.discount_minor", f"must be at most the line's sub-total ({sub_total})")
        return None
    amounts = line_amounts(quantity, line.unit_price_minor, discount_minor=line.discount_minor, tax_rate_percent=rate)
    if line.tax_minor is not None:
        taxable = amounts.sub_total_minor - amounts.discount_minor
        if not 0 <= line.tax_minor <= taxable:
            violations.add(f"{path}.tax_minor", f"must be from 0 to the line's taxable amount ({taxable})")
            return None
        if rate is not None and line.tax_minor != amounts.tax_minor:
            violations.add(f"{path}.tax_minor", f"must be {amounts.tax_minor}, the tax rate applied to the line")
            return None
        amounts = LineAmounts(
            sub_total_minor=amounts.sub_total_minor,
            discount_minor=amounts.discount_minor,
            tax_minor=line.tax_minor,
            total_minor=taxable + line.tax_minor,
        )
    return _CheckedLine(line=line, quantity=quantity, tax_rate=rate, amounts=amounts)


def _parse_ref(text: str | None, path: str, violations: ViolationCollector) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        violations.add(path, f"{text!r} is not a UUID")
        return None


@dataclass(frozen=True, slots=True)
class _Checked:
    lines: list[_CheckedLine]
    status: InvoiceStatus
    issue_date: date
    due_date: date
    customer_id: uuid.UUID | None
    contract_id: uuid.UUID | None


def _validate(new: NewInvoice, today: date, violations: ViolationCollector) -> _Checked | None:
    """Every rule that needs no database; None (with violations) if any is broken."""
    if new.billing_type is None:
        violations.add("invoice.billing_type", "is required")
    if not money.is_currency(new.currency):
        violations.add("invoice.currency_code", f"{new.currency!r} is not an ISO 4217 currency code")
    if not new.line_items:
        violations.add("invoice.line_items", "at least one line item is required")
    lines = [_check_line(i, line, violations) for i, line in enumerate(new.line_items)]
    status = new.status or InvoiceStatus.DRAFT
    if status not in CREATABLE_STATUSES:
        violations.add("invoice.status", "must be DRAFT or SENT")
    if new.net_terms_days is not None and new.net_terms_days < 0:
        violations.add("invoice.net_terms.days", "must be at least 0")
    issue_date = new.issue_date or today
    if new.due_date is not None and new.due_date < issue_date:
        violations.add("invoice.due_date", "must not be before the issue date")
    _check_period(new.period_start, new.period_end, "invoice.service_period", violations)
    _check_quantity(new.quantity, "invoice.quantity", violations, required=False)
    customer_id = _parse_ref(new.customer_ref, "invoice.customer.customer_ref", violations)
    contract_id = _parse_ref(new.contract_ref, "invoice.contract.contract_ref", violations)
    if new.contract_id is not None:
        if new.contract_ref is not None:
            violations.add("invoice.contract_id", "name the contract by contract_ref or contract_id, not both")
        elif not new.contract_id.strip():
            violations.add("invoice.contract_id", "must not be empty")
    checked_lines = [line for line in lines if line is not None]
    if len(checked_lines) == len(lines) and lines:
        total = invoice_amounts(line.amounts for line in checked_lines).total_minor
        if not 0 <= new.credits_minor <= max(total, 0):
            violations.add("invoice.credits_minor", f"must be from 0 to the invoice total ({total})")
    elif new.credits_minor < 0:
        violations.add("invoice.credits_minor", "must be at least 0")
    for name, ids in (
        ("payment_means_ids", new.payment_means_ids),
        ("document_ids", new.document_ids),
        ("person_ids", new.person_ids),
    ):
        if len(set(ids)) != len(ids):
            violations.add(f"invoice.{name}", "must not repeat an id")
        for i, value in enumerate(ids):
            if not value.strip():
                violations.add(f"invoice.{name}[{i}]", "must not be empty")
    if violations.violations:
        return None
    if new.due_date is not None:
        due_date = new.due_date
    elif new.net_terms_days is not None:
        due_date = issue_date + timedelta(days=new.net_terms_days)
    else:
        due_date = issue_date  # DUE_UPON_RECEIPT, DUE_UPON_USAGE or no terms: due on issue
    return _Checked(
        lines=checked_lines,
        status=status,
        issue_date=issue_date,
        due_date=due_date,
        customer_id=customer_id,
        contract_id=contract_id,
    )


async def find_by_request_id(session: AsyncSession, tenant_id: uuid.UUID, request_id: str) -> uuid.UUID | None:
    stmt = select(m.Invoice.id).where(m.Invoice.tenant_id == tenant_id, m.Invoice.creation_request_id == request_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _resolve_parents(
    session: AsyncSession, tenant_id: uuid.UUID, new: NewInvoice, checked: _Checked
) -> dict[str, Any]:
    """Ids of the customer, contract, companies and plan named, checked to be the tenant's."""
    missing: list[str] = []
    resolved: dict[str, Any] = {}
    if checked.customer_id is not None:
        found = await session.scalar(
            select(m.Customer.id).where(m.Customer.tenant_id == tenant_id, m.Customer.id == checked.customer_id)
        )
        if found is None:
            missing.append(f"customer {new.customer_ref}")
        resolved["customer_id"] = found
    if checked.contract_id is not None or new.contract_id is not None:
        # By reference (core API) or by external id (REST faces): the same checks either way.
        if checked.contract_id is not None:
            named, path, which = new.contract_ref, "invoice.contract.contract_ref", m.Contract.id == checked.contract_id
        else:
            named, path, which = new.contract_id, "invoice.contract_id", m.Contract.external_id == new.contract_id
        row = (
            await session.execute(
                select(m.Contract.id, m.Contract.customer_id).where(m.Contract.tenant_id == tenant_id, which)
            )
        ).one_or_none()
        if row is None:
            missing.append(f"contract {named}")
        elif resolved.get("customer_id") is not None and row.customer_id != checked.customer_id:
            raise InvalidArgument.single(path, f"contract {named} does not belong to customer {new.customer_ref}")
        elif checked.customer_id is None:
            resolved["customer_id"] = row.customer_id  # the contract's customer is the invoice's
        resolved["contract_id"] = None if row is None else row.id
    for key, external_id, label in (
        ("issuer_company_id", new.issuer_company_id, "issuer company"),
        ("receiver_company_id", new.receiver_company_id, "receiver company"),
    ):
        if external_id is not None:
            found = await session.scalar(
                select(m.Company.id).where(m.Company.tenant_id == tenant_id, m.Company.external_id == external_id)
            )
            if found is None:
                missing.append(f"{label} {external_id}")
            resolved[key] = found
    if new.plan_id is not None:
        plan_ids = (
            await session.scalars(
                select(m.Plan.id).where(m.Plan.tenant_id == tenant_id, m.Plan.external_id == new.plan_id).limit(2)
            )
        ).all()
        if not plan_ids:
            missing.append(f"plan {new.plan_id}")
        elif len(plan_ids) > 1:
            raise InvalidArgument.single("invoice.plan_id", f"plan {new.plan_id} exists in several data sources")
        else:
            resolved["plan_id"] = plan_ids[0]
    if missing:
        raise NotFound("not found: " + ", ".join(missing))
    return resolved


async def _link(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    invoice_id: uuid.UUID,
    target: Any,
    link: Any,
    key: str,
    external_ids: Sequence[str],
    label: str,
) -> None:
    """Link rows to the tenant's `target` rows named by external id, in the order given."""
    if not external_ids:
        return
    rows = await session.execute(
        select(target.external_id, target.id).where(
            target.tenant_id == tenant_id, target.external_id.in_(list(external_ids))
        )
    )
    ids: dict[str, uuid.UUID] = {external_id: id_ for external_id, id_ in rows}
    missing = [x for x in external_ids if x not in ids]
    if missing:
        raise NotFound(f"{label} not found: " + ", ".join(missing))
    session.add_all(
        link(invoice_id=invoice_id, position=i, **{key: ids[x]}) for i, x in enumerate(external_ids, start=1)
    )


async def create_invoice(
    session: AsyncSession,
    caller: Caller,
    new: NewInvoice,
    *,
    request_id: str | None = None,
    violations: ViolationCollector | None = None,
) -> InvoiceRecord:
    """Create the invoice in the caller's write transaction and return it.

    `violations` are ones the caller already found (e.g. an impossible date), reported with
    these. InvalidArgument for bad fields; NotFound naming every unknown id; with a request_id
    already used by the tenant, the invoice it created (nothing new is written); Aborted when a
    concurrent call with the same request_id won the race (its retry returns the original).
    """
    violations = violations or ViolationCollector()
    checked = _validate(new, utcnow().date(), violations)
    violations.raise_if_any()
    assert checked is not None and new.billing_type is not None
    tenant_id = caller.tenant_id
    if request_id:
        existing = await find_by_request_id(session, tenant_id, request_id)
        if existing is not None:
            record = await get_invoice_record(session, tenant_id, existing)
            assert record is not None
            return record

    parents = await _resolve_parents(session, tenant_id, new, checked)
    invoice_number = await next_invoice_number(session, tenant_id, checked.issue_date.year)
    number_in_contract = None
    contract_id = parents.get("contract_id")
    if contract_id is not None:
        number_in_contract = await session.scalar(
            update(m.Contract)
            .where(m.Contract.tenant_id == tenant_id, m.Contract.id == contract_id)
            .values(last_number_in_contract=m.Contract.last_number_in_contract + 1)
            .returning(m.Contract.last_number_in_contract)
        )
    amounts = invoice_amounts((line.amounts for line in checked.lines), credits_minor=new.credits_minor)
    document_type, accounting_event = document_type_for(new.billing_type)
    now = utcnow()
    invoice = m.Invoice(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        invoice_number=invoice_number,
        external_id=new.external_id,
        document_type_code=document_type.value,
        accounting_event_type=accounting_event.value,
        billing_type=new.billing_type.value,
        status=checked.status.value,
        number_in_contract=number_in_contract,
        subscription_id=new.subscription_id,
        currency=new.currency,
        sub_total_minor=amounts.sub_total_minor,
        total_discount_minor=amounts.total_discount_minor,
        total_tax_minor=amounts.total_tax_minor,
        credits_minor=amounts.credits_minor,
        total_minor=amounts.total_minor,
        amount_paid_minor=amounts.amount_paid_minor,
        amount_remaining_minor=amounts.amount_remaining_minor,
        net_terms_days=new.net_terms_days,
        payment_term=new.payment_term.value if new.payment_term else None,
        issue_date=checked.issue_date,
        due_date=checked.due_date,
        submitted_at=now if checked.status is InvoiceStatus.SENT else None,
        period_start=new.period_start,
        period_end=new.period_end,
        is_partial_period=new.is_partial_period,
        terms=new.terms,
        description=new.description,
        quantity=money.format_decimal(money.parse_quantity(new.quantity)) if new.quantity else None,
        creation_request_id=request_id or None,
        **parents,
    )
    session.add(invoice)
    try:
        await session.flush()
    except IntegrityError as exc:
        if request_id and "creation_request_id" in str(exc.orig):
            raise Aborted(f"a concurrent call with request_id {request_id!r} created the invoice; retry") from exc
        raise
    session.add_all(line_row(invoice.id, i, c.line, c.amounts) for i, c in enumerate(checked.lines, start=1))
    await _link(
        session,
        tenant_id,
        invoice.id,
        m.PaymentMeans,
        m.InvoicePaymentMeans,
        "payment_means_id",
        new.payment_means_ids,
        "payment means",
    )
    await _link(
        session, tenant_id, invoice.id, m.Document, m.InvoiceDocument, "document_id", new.document_ids, "documents"
    )
    await _link(session, tenant_id, invoice.id, m.Person, m.InvoicePerson, "person_id", new.person_ids, "people")
    record_audit(
        session,
        caller,
        invoice.id,
        "invoice.created",
        {},
        {
            "invoice_number": invoice_number,
            "status": checked.status.value,
            "currency": new.currency,
            "total_minor": amounts.total_minor,
        },
    )
    await session.flush()
    record = await get_invoice_record(session, tenant_id, invoice.id)
    assert record is not None
    return record
