"""Exact money: integer minor units, ISO 4217 currencies and their exponents."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 active codes and their minor-unit exponents (the standard's "E" column).
# Codes absent from the standard's exponent list (e.g. XAU) are not accepted.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN "
        "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
        "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR KES KGS KHR KPW KYD KZT LAK LBP LKR LRD "
        "LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB "
        "PEN PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP "
        "SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG".split(),
        2,
    ),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}


def is_currency(code: str) -> bool:
    """True for an upper-case ISO 4217 code this service knows the exponent of."""
    return code in _EXPONENTS


def exponent(code: str) -> int:
    """Minor-unit exponent of a currency (JPY 0, USD 2, KWD 3). KeyError for unknown codes."""
    return _EXPONENTS[code]


def to_major(amount_minor: int, currency: str) -> Decimal:
    """Minor units as an exact Decimal in major units with the currency's scale: 9900 USD -> 99.00."""
    exp = exponent(currency)
    return Decimal(amount_minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_major(amount_minor: int, currency: str) -> str:
    """Minor units as a decimal string: 9900 USD -> "99.00", 500 JPY -> "500", 1234 KWD -> "1.234"."""
    return str(to_major(amount_minor, currency))


def parse_major(text: str, currency: str) -> int:
    """A decimal string in major units to minor units; ValueError if it has too many decimals."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal number") from exc
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {currency} allows ({exponent(currency)})")
    return int(minor)


QUANTITY_SCALE = 6


def parse_quantity(text: str) -> Decimal:
    """A non-negative decimal quantity with at most 6 fractional digits; ValueError otherwise."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and -exp > QUANTITY_SCALE:
        raise ValueError(f"has more than {QUANTITY_SCALE} decimals")
    return value


def format_decimal(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros: 1.500 -> "1.5", 2E+1 -> "20"."""
    text = format(value.normalize(), "f")
    return text


def multiply_minor(quantity: Decimal, unit_price_minor: int) -> int:
    """quantity × unit price, rounded half to even to whole minor units."""
    return int((quantity * unit_price_minor).to_integral_value(rounding=ROUND_HALF_EVEN))


def percent_of(amount_minor: int, rate_percent: Decimal) -> int:
    """rate % of an amount, rounded half up (away from zero) to whole minor units, as tax is."""
    return int((Decimal(amount_minor) * rate_percent / 100).to_integral_value(rounding=ROUND_HALF_UP))
