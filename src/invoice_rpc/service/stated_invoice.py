"""Create an invoice from a document that states its own totals and payment (seed 003's
`POST /v1/invoices`), through the one Create use case and the one Reconcile use case.

What the caller states is checked against what we compute, to the minor unit; nothing stated is
taken on trust except the amounts of an invoice that lists no priced lines (the caller's items
live in a catalog this service does not keep): it then gets one line carrying the stated items
total and tax, so that its totals are, as for every invoice, the sums of its lines.

Violations are named in this module's terms (`totals.grand_total`, `payment.amount_paid`,
`document_type_code`) beside Create's (`invoice.…`); a face renames both to its own fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import DocumentTypeCode, InvoiceStatus
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.domain.money import format_major, is_currency, percent_of
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_create import (
    NewInvoice,
    NewLineItem,
    create_invoice,
    document_type_for,
    find_by_request_id,
)
from invoice_rpc.service.invoice_records import InvoiceRecord, get_invoice_record
from invoice_rpc.service.invoice_totals import MAX_TAX_RATE_PERCENT
from invoice_rpc.service.reconcile import UNPAYABLE_STATUSES, Payment, reconcile_invoice
from invoice_rpc.storage.types import utcnow

# The key of the payment a create records: one per invoice, so a replay records nothing twice.
STATED_PAYMENT_ID = "stated-at-creation"
# A rate derived from a stated tax is kept only if it is this exact (e.g. 20 or 19.6).
_RATE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class StatedTotals:
    """Totals in minor units as the document states them; None where it states none."""

    items_total_minor: int | None = None
    tax_total_minor: int | None = None
    grand_total_minor: int | None = None


@dataclass(frozen=True, slots=True)
class StatedPayment:
    """What the document says is paid: `paid` means in full; amounts in minor units."""

    paid: bool = False
    amount_paid_minor: int | None = None
    amount_remaining_minor: int | None = None


@dataclass(frozen=True, slots=True)
class StatedInvoice:
    """An invoice to create with what its document states. `invoice.line_items` may be empty:
    the invoice then gets one line named `summary_line_name` priced from `totals`."""

    invoice: NewInvoice
    totals: StatedTotals
    payment: StatedPayment | None = None
    document_type_code: DocumentTypeCode | None = None
    summary_line_name: str = "Invoice total"


def summary_line(totals: StatedTotals, name: str) -> NewLineItem:
    """One line of quantity 1 carrying the stated items total and tax exactly. Its tax rate is
    kept when the stated amounts imply an exact one (500 on 2500 is 20 %), else left unknown."""
    items = totals.items_total_minor or 0
    tax = totals.tax_total_minor or 0
    rate: str | None = None
    if items > 0:
        implied = Decimal(tax) * 100 / Decimal(items)
        exact = implied == implied.quantize(_RATE_QUANTUM) and percent_of(items, implied) == tax
        if exact and implied <= MAX_TAX_RATE_PERCENT:
            rate = str(implied.normalize())
    return NewLineItem(name=name, quantity="1", unit_price_minor=items, tax_minor=tax, tax_rate_percent=rate)


async def create_stated_invoice(
    session: AsyncSession,
    caller: Caller,
    stated: StatedInvoice,
    *,
    request_id: str | None = None,
    violations: ViolationCollector | None = None,
) -> InvoiceRecord:
    """Create the invoice in the caller's write transaction, record the stated payment, and
    return the invoice as stored.

    InvalidArgument (every bad field at once, with `violations` the caller found) also when a
    stated total or amount differs from ours; the caller's transaction must then roll back,
    which gives the invoice number back. NotFound for unknown related ids (from Create). With a
    request_id the tenant already used (and no violation already found), the invoice it created,
    unchecked and unchanged.
    """
    violations = violations or ViolationCollector()
    if request_id and not violations.violations:
        existing = await find_by_request_id(session, caller.tenant_id, request_id)
        if existing is not None:
            record = await get_invoice_record(session, caller.tenant_id, existing)
            assert record is not None
            return record
    new = stated.invoice
    if not new.line_items:
        if stated.totals.items_total_minor is None:
            violations.add("totals.items_total", "is required when the invoice lists no priced items")
        new = replace(new, line_items=[summary_line(stated.totals, stated.summary_line_name)])
    if stated.document_type_code is not None and new.billing_type is not None:
        expected, _ = document_type_for(new.billing_type)
        if stated.document_type_code is not expected:
            violations.add(
                "document_type_code",
                f"must be {expected.value} for billing type {new.billing_type.value}"
                f" (got {stated.document_type_code.value})",
            )
    pays = stated.payment is not None and (stated.payment.paid or (stated.payment.amount_paid_minor or 0) > 0)
    if pays and (new.status or InvoiceStatus.DRAFT) in UNPAYABLE_STATUSES:
        violations.add("payment", "a draft cannot be paid: create it as sent")

    record = await create_invoice(session, caller, new, request_id=request_id, violations=violations)

    _check_totals(stated.totals, record, violations)
    to_record = _payment_to_record(stated.payment, record, violations) if stated.payment else None
    violations.raise_if_any()
    if to_record is not None:
        payment = Payment(
            paid_at=utcnow(),
            invoice_ref=str(record.id),
            amount_minor=to_record.amount_minor,
            payment_id=STATED_PAYMENT_ID,
        )
        record = await reconcile_invoice(session, caller, payment)
    return record


def _money(amount_minor: int, currency: str) -> str:
    return format_major(amount_minor, currency) if is_currency(currency) else str(amount_minor)


def _check_totals(totals: StatedTotals, record: InvoiceRecord, violations: ViolationCollector) -> None:
    computed = (
        ("items_total", totals.items_total_minor, record.sub_total_minor - record.total_discount_minor),
        ("tax_total", totals.tax_total_minor, record.total_tax_minor),
        ("grand_total", totals.grand_total_minor, record.total_minor),
    )
    for name, stated_minor, ours in computed:
        if stated_minor is not None and stated_minor != ours:
            violations.add(
                f"totals.{name}",
                f"is {_money(stated_minor, record.currency)} but the invoice's lines give"
                f" {_money(ours, record.currency)}",
            )


@dataclass(frozen=True, slots=True)
class _PaymentToRecord:
    amount_minor: int | None  # None: all that remains (a payment in full)


def _payment_to_record(
    payment: StatedPayment, record: InvoiceRecord, violations: ViolationCollector
) -> _PaymentToRecord | None:
    """The payment the statement implies, or None if nothing is paid."""
    due = record.total_minor - record.credits_minor
    currency = record.currency
    paid = payment.amount_paid_minor
    if payment.paid:
        if paid is not None and paid != due:
            violations.add(
                "payment.amount_paid",
                f"must be the invoice total {_money(due, currency)} when paid is true (got {_money(paid, currency)})",
            )
        paid = due
    elif paid is not None and paid >= due > 0:
        violations.add("payment.paid", f"must be true when amount_paid covers the total {_money(due, currency)}")
    paid = paid or 0
    if paid > due:
        violations.add("payment.amount_paid", f"must be at most the invoice total {_money(due, currency)}")
    remaining = payment.amount_remaining_minor
    if remaining is not None and remaining != due - paid:
        violations.add(
            "payment.amount_remaining",
            f"must be {_money(due - paid, currency)}, the total less what is paid (got {_money(remaining, currency)})",
        )
    if payment.paid:
        return _PaymentToRecord(amount_minor=None)
    return _PaymentToRecord(amount_minor=paid) if paid > 0 else None
