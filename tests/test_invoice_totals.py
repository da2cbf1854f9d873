"""Exact invoice arithmetic: line sub-totals half to even, taxes half up, sums that add up."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest

from invoice_rpc.service.invoice_totals import LineAmounts, invoice_amounts, line_amounts


@pytest.mark.parametrize(
    ("quantity", "unit_price_minor", "sub_total_minor"),
    [
        ("0.5", 5, 2),  # 2.5 -> 2 (half to even)
        ("1.5", 5, 8),  # 7.5 -> 8 (half to even)
        ("0.5", 3, 2),  # 1.5 -> 2
        ("0.000001", 1_000_000, 1),
        ("0.000001", 499_999, 0),
        ("3", 333, 999),  # JPY: whole yen
        ("2.5", 1234, 3085),  # KWD: 1.234 KWD × 2.5 = 3.085 KWD
        ("0", 9900, 0),
        ("1000000", 9_000_000_000, 9_000_000_000_000_000),
    ],
)
def test_line_sub_total_is_quantity_times_price_rounded_half_even(
    quantity: str, unit_price_minor: int, sub_total_minor: int
) -> None:
    assert line_amounts(Decimal(quantity), unit_price_minor).sub_total_minor == sub_total_minor


@pytest.mark.parametrize(
    ("sub_total_minor", "rate", "tax_minor"),
    [
        (1005, "10", 101),  # JPY 100.5 yen -> 101 (half up, not half even)
        (1015, "10", 102),  # 101.5 -> 102
        (1, "50", 1),  # 0.5 -> 1
        (1, "7.5", 0),  # 0.075 -> 0
        (3085, "5", 154),  # KWD 154.25 fils -> 154
        (3090, "5", 155),  # KWD 154.5 fils -> 155
        (9900, "0", 0),
        (9900, "100", 9900),
        (12345, "19.25", 2376),  # 2376.4125 -> 2376
    ],
)
def test_tax_is_rate_of_taxable_amount_rounded_half_up(sub_total_minor: int, rate: str, tax_minor: int) -> None:
    amounts = line_amounts(Decimal(1), sub_total_minor, tax_rate_percent=Decimal(rate))
    assert amounts.tax_minor == tax_minor
    assert amounts.total_minor == sub_total_minor + tax_minor


def test_tax_applies_after_discount() -> None:
    amounts = line_amounts(Decimal(4), 2500, discount_minor=2500, tax_rate_percent=Decimal(20))
    assert amounts == LineAmounts(sub_total_minor=10000, discount_minor=2500, tax_minor=1500, total_minor=9000)


def test_discount_may_be_the_whole_sub_total() -> None:
    amounts = line_amounts(Decimal(1), 500, discount_minor=500, tax_rate_percent=Decimal(20))
    assert (amounts.tax_minor, amounts.total_minor) == (0, 0)


@pytest.mark.parametrize("discount_minor", [-1, 10001])
def test_discount_outside_zero_to_sub_total_is_refused(discount_minor: int) -> None:
    with pytest.raises(ValueError, match="discount"):
        line_amounts(Decimal(1), 10000, discount_minor=discount_minor)


@pytest.mark.parametrize("rate", ["-0.01", "100.01"])
def test_tax_rate_outside_zero_to_hundred_is_refused(rate: str) -> None:
    with pytest.raises(ValueError, match="tax rate"):
        line_amounts(Decimal(1), 10000, tax_rate_percent=Decimal(rate))


def test_invoice_totals_are_sums_of_lines() -> None:
    lines = [
        line_amounts(Decimal("2"), 1000, discount_minor=100, tax_rate_percent=Decimal("19")),  # 2000-100, tax 361
        line_amounts(Decimal("1.5"), 333, tax_rate_percent=Decimal("7")),  # 499.5 -> 500 (even), tax 35
    ]
    amounts = invoice_amounts(lines, credits_minor=96)
    assert amounts.sub_total_minor == 2500
    assert amounts.total_discount_minor == 100
    assert amounts.total_tax_minor == 396
    assert amounts.total_minor == 2500 - 100 + 396
    assert amounts.credits_minor == 96
    assert amounts.amount_paid_minor == 0
    assert amounts.amount_remaining_minor == 2796 - 96


def test_credits_may_cover_the_whole_total() -> None:
    amounts = invoice_amounts([line_amounts(Decimal(1), 500)], credits_minor=500)
    assert amounts.amount_remaining_minor == 0


@pytest.mark.parametrize("credits_minor", [-1, 501])
def test_credits_outside_zero_to_total_are_refused(credits_minor: int) -> None:
    with pytest.raises(ValueError, match="credits"):
        invoice_amounts([line_amounts(Decimal(1), 500)], credits_minor=credits_minor)


def test_invoice_without_lines_is_zero() -> None:
    amounts = invoice_amounts([])
    assert (amounts.total_minor, amounts.amount_remaining_minor) == (0, 0)


def test_random_lines_match_a_decimal_reference_exactly() -> None:
    """Against an independent Decimal computation, over quantities with up to 6 decimals,
    currencies of exponent 0, 2 and 3 (prices of any size) and rates with decimals."""
    rng = random.Random(20260101)
    for _ in range(2000):
        quantity = Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 6))
        unit_price = rng.choice([rng.randint(0, 100), rng.randint(0, 10**6), rng.randint(0, 10**12)])
        rate = Decimal(rng.randint(0, 10000)).scaleb(-2)
        exact_sub_total = quantity * unit_price
        sub_total = int(exact_sub_total.to_integral_value(rounding=ROUND_HALF_EVEN))
        discount = rng.randint(0, max(sub_total, 0))
        expected_tax = int(((sub_total - discount) * rate / 100).to_integral_value(rounding=ROUND_HALF_UP))

        amounts = line_amounts(quantity, unit_price, discount_minor=discount, tax_rate_percent=rate)

        assert amounts.sub_total_minor == sub_total
        assert amounts.tax_minor == expected_tax
        assert amounts.total_minor == sub_total - discount + expected_tax
