"""What every REST face needs beyond conversion: field names in its own terms, the 201 hint
for Envoy, and RFC 3339 rendering as the documents print it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, TypeVar

import grpc

from invoice_rpc.domain.errors import FieldViolation, InvalidArgument, ViolationCollector

_E = TypeVar("_E", bound=StrEnum)


def renamed(error: InvalidArgument, names: Mapping[str, str]) -> InvalidArgument:
    """The same violations with the service's field paths replaced by the face's: a path equal
    to a key of `names`, or starting with it and `.` or `[`, gets that prefix replaced."""

    def rename(path: str) -> str:
        for old, new in names.items():
            if path == old:
                return new
            if path.startswith(old + ".") or path.startswith(old + "["):
                rest = path[len(old) :]
                # "" drops the prefix: {"filter": ""} turns "filter.end_date" into "end_date".
                return new + rest if new else rest.lstrip(".")
        return path

    return InvalidArgument([FieldViolation(rename(v.field), v.description) for v in error.violations])


def parse_uuid(text: str, field: str, violations: ViolationCollector, *, required: bool = True) -> uuid.UUID | None:
    """`text` as a UUID; a violation on `field` if it is missing (when required) or malformed."""
    if not text.strip():
        if required:
            violations.add(field, "is required")
        return None
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        violations.add(field, f"must be a UUID (got {text!r})")
        return None


async def created(context: grpc.aio.ServicerContext[Any, Any], location: str | None = None) -> None:
    """Tell Envoy's REST shim to answer 201 Created (with `location`, if given). Call it only
    once the work succeeded: initial metadata leaves at once and cannot be taken back."""
    metadata = [("x-http-status", "201")]
    if location is not None:
        metadata.append(("location", location))
    await context.send_initial_metadata(tuple(metadata))


def rfc3339(value: datetime | None) -> str:
    """UTC, second precision, `Z` suffix: "2024-07-01T00:00:00Z" ("" for None)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_midnight(value: date) -> str:
    """A date as its midnight UTC, for documents that print dates as timestamps."""
    return rfc3339(datetime.combine(value, time(), tzinfo=UTC))


def parse_day(text: str, field: str, violations: ViolationCollector) -> date | None:
    """An optional YYYY-MM-DD day; a violation on `field` if it is given but not a real day."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        violations.add(field, f"must be a date YYYY-MM-DD (got {text!r})")
        return None


def parse_choice(text: str, field: str, choices: type[_E], violations: ViolationCollector) -> _E | None:
    """An optional value of the StrEnum `choices`; a violation naming the allowed values if it is
    given but not one of them."""
    if not text.strip():
        return None
    try:
        return choices(text.strip())
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        violations.add(field, f"must be one of {allowed} (got {text!r})")
        return None
