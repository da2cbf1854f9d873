"""Exact invoice arithmetic: line and invoice totals in integer minor units.

Pure functions, no I/O. Rounding happens once per line and per rule (the sub-total half to
even, the tax half up), so an invoice's totals are plain sums of its lines and always add up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from invoice_rpc.domain.money import multiply_minor, percent_of

MAX_TAX_RATE_PERCENT = Decimal(100)


@dataclass(frozen=True, slots=True)
class LineAmounts:
    """One line's computed amounts, in minor units of the invoice's currency."""

    sub_total_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    """An invoice's computed amounts, in minor units of its currency."""

    sub_total_minor: int
    total_discount_minor: int
    total_tax_minor: int
    credits_minor: int
    total_minor: int
    amount_paid_minor: int
    amount_remaining_minor: int


def line_sub_total(quantity: Decimal, unit_price_minor: int) -> int:
    """quantity × unit price, rounded half to even to whole minor units."""
    return multiply_minor(quantity, unit_price_minor)


def line_amounts(
    quantity: Decimal, unit_price_minor: int, *, discount_minor: int = 0, tax_rate_percent: Decimal | None = None
) -> LineAmounts:
    """A line's sub-total, tax and total. The tax is rate % of (sub-total − discount), rounded
    half up. ValueError if the discount is outside 0..sub-total or the rate outside 0..100."""
    sub_total = line_sub_total(quantity, unit_price_minor)
    if not 0 <= discount_minor <= max(sub_total, 0):
        raise ValueError(f"discount {discount_minor} is outside 0..{sub_total}")
    rate = tax_rate_percent if tax_rate_percent is not None else Decimal(0)
    if not 0 <= rate <= MAX_TAX_RATE_PERCENT:
        raise ValueError(f"tax rate {rate} is outside 0..100")
    taxable = sub_total - discount_minor
    tax = percent_of(taxable, rate)
    return LineAmounts(
        sub_total_minor=sub_total, discount_minor=discount_minor, tax_minor=tax, total_minor=taxable + tax
    )


def invoice_amounts(
    lines: Iterable[LineAmounts], *, credits_minor: int = 0, amount_paid_minor: int = 0
) -> InvoiceAmounts:
    """The invoice's sums of its lines; total = sub-total − discounts + taxes, and what remains
    is total − credits − paid. ValueError if credits are outside 0..total or the payments
    outside 0..total − credits."""
    sub_total = discount = tax = 0
    for line in lines:
        sub_total += line.sub_total_minor
        discount += line.discount_minor
        tax += line.tax_minor
    total = sub_total - discount + tax
    if not 0 <= credits_minor <= max(total, 0):
        raise ValueError(f"credits {credits_minor} are outside 0..{total}")
    if not 0 <= amount_paid_minor <= max(total - credits_minor, 0):
        raise ValueError(f"amount paid {amount_paid_minor} is outside 0..{total - credits_minor}")
    return InvoiceAmounts(
        sub_total_minor=sub_total,
        total_discount_minor=discount,
        total_tax_minor=tax,
        credits_minor=credits_minor,
        total_minor=total,
        amount_paid_minor=amount_paid_minor,
        amount_remaining_minor=total - credits_minor - amount_paid_minor,
    )
