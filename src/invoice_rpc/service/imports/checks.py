"""Item checks shared by the import modules. Each appends a problem in the voice of seed 004
("Missing date", "Invalid currency 'US': must be a 3-letter ISO 4217 code") and returns the
normalized value, or None when the value is missing or bad."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from invoice_rpc.domain import money

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def parse_import_time(text: str, name: str, problems: list[str], *, required: bool = True) -> datetime | None:
    """An RFC 3339 timestamp (with offset) or a YYYY-MM-DD date (midnight UTC), as UTC."""
    text = text.strip()
    if not text:
        if required:
            problems.append(f"Missing {name}")
        return None
    parsed = _parse_time(text)
    if parsed is None:
        problems.append(f"Invalid {name} '{text}': expected RFC 3339 or YYYY-MM-DD")
    return parsed


@functools.lru_cache(maxsize=4096)
def _parse_time(text: str) -> datetime | None:
    """The UTC time `text` names, or None; cached because a batch repeats its dates a lot."""
    upper = text.upper()
    try:
        if _DATE_ONLY.fullmatch(upper):
            return datetime.fromisoformat(upper).replace(tzinfo=UTC)
        if _RFC3339.fullmatch(upper):
            # fromisoformat takes at most microseconds: drop nanosecond digits beyond six.
            trimmed = re.sub(r"(\.\d{6})\d+", r"\1", upper)
            return datetime.fromisoformat(trimmed).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range by its offset
        pass
    return None


def check_currency(text: str, problems: list[str]) -> str | None:
    """An ISO 4217 code, upper-cased."""
    code = text.strip().upper()
    if not code:
        problems.append("Missing currency")
        return None
    if not money.is_currency(code):
        problems.append(f"Invalid currency '{text}': must be a 3-letter ISO 4217 code")
        return None
    return code


# Amounts are stored as 64-bit minor units and summed (sub total = amount + discount, customer
# totals): 10^15 minor units (10 trillion dollars) leaves that arithmetic far from overflow.
MAX_IMPORT_AMOUNT = 10**15


def check_non_negative(value: int | None, name: str, problems: list[str], *, required: bool = False) -> int | None:
    """The value if it is from 0 to MAX_IMPORT_AMOUNT; None (and a problem if required) when unset."""
    if value is None:
        if required:
            problems.append(f"Missing {name}")
        return None
    if value < 0:
        problems.append(f"{name} must be a non-negative number")
        return None
    if value > MAX_IMPORT_AMOUNT:
        problems.append(f"{name} must be at most {MAX_IMPORT_AMOUNT}")
        return None
    return value


def check_choice(text: str, name: str, choices: tuple[str, ...], problems: list[str]) -> str | None:
    """One of `choices` (compared as given)."""
    if not text:
        problems.append(f"Missing {name}")
        return None
    if text not in choices:
        problems.append(f"Invalid {name} '{text}': must be one of {', '.join(choices)}")
        return None
    return text


def check_length(text: str, name: str, limit: int, problems: list[str]) -> str | None:
    """The text stripped, None if empty; a problem if longer than the column allows."""
    text = text.strip()
    if len(text) > limit:
        problems.append(f"{name} must be at most {limit} characters")
    return text or None
