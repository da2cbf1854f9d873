"""Text every request must be able to store: no NUL characters.

Protobuf strings (and JSON strings, `"\\u0000"`, and percent-encoded paths, `%00`) may carry
U+0000, but PostgreSQL text cannot hold it: such a value would fail deep in a query as an
internal error. The edge refuses it up front, naming every field that has one, so that both
databases answer the same INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from invoice_rpc.domain.errors import FieldViolation

NUL_DESCRIPTION = "must not contain the NUL character (U+0000)"


def nul_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """A violation for each string in `message` (nested messages, repeated fields and maps
    included) that contains U+0000, named by its path: "invoices[2].id", "labels[key]"."""
    if not prefix and not _holds_nul(message):
        return []
    violations: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            violations.extend(_map_violations(field, value, path))
        elif field.is_repeated:
            for index, item in enumerate(value):
                violations.extend(_value_violations(field, item, f"{path}[{index}]"))
        else:
            violations.extend(_value_violations(field, value, path))
    return violations


@dataclass(frozen=True)
class _TextFields:
    """Where a message type can hold text: its singular strings, read in one call, and the
    other fields (repeated, nested, maps, JSON values) that may hold some."""

    read_strings: Callable[[Message], Sequence[str]] | None
    other: tuple[FieldDescriptor, ...]


def _holds_nul(message: Message) -> bool:
    """Whether some string in `message` may contain U+0000 (never False when one does).

    The quick test in front of the walk that names fields: it reads only the fields that can
    hold text, with no paths built. For a batch of 1,000 imported invoices it costs a third of
    the walk (a scan of the wire bytes cannot stand in for it: a zero, an empty string or a false
    put a zero byte there as well)."""
    fields = _text_fields(message.DESCRIPTOR)
    if fields.read_strings is not None and "\x00" in "".join(fields.read_strings(message)):
        return True
    for field in fields.other:
        value = getattr(message, field.name)
        if field.message_type is None:  # repeated strings
            if "\x00" in "".join(value):
                return True
        elif field.message_type.GetOptions().map_entry or field.message_type.full_name in _JSON_TYPES:
            if value if field.is_repeated else message.HasField(field.name):
                return True  # rare shapes: the walk decides
        elif field.is_repeated:
            if any(_holds_nul(item) for item in value):
                return True
        elif message.HasField(field.name) and _holds_nul(value):
            return True
    return False


@cache
def _text_fields(descriptor: Descriptor) -> _TextFields:
    strings = [f.name for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated]
    other = tuple(
        field
        for field in descriptor.fields
        if (field.is_repeated or field.type != FieldDescriptor.TYPE_STRING)
        and _can_hold_text(field, frozenset({descriptor.full_name}))
    )
    return _TextFields(_string_reader(strings) if strings else None, other)


def _string_reader(names: list[str]) -> Callable[[Message], Sequence[str]]:
    """Reads the named string fields in one call (attrgetter), always as a tuple."""
    getter: Callable[[Message], Any] = attrgetter(*names)
    if len(names) == 1:
        return lambda message: (getter(message),)
    return getter


def _can_hold_text(field: FieldDescriptor, enclosing: frozenset[str]) -> bool:
    if field.type == FieldDescriptor.TYPE_STRING:
        return True
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return False
    nested = field.message_type
    assert nested is not None  # set for every message field
    if nested.full_name in _JSON_TYPES or nested.full_name in enclosing:
        return True  # a JSON value, or a recursive type: may hold text at some depth
    inner = enclosing | {nested.full_name}
    return any(_can_hold_text(inner_field, inner) for inner_field in nested.fields)


def _map_violations(field: FieldDescriptor, entries: object, path: str) -> list[FieldViolation]:
    assert field.message_type is not None  # a map field's entry type
    value_field = field.message_type.fields_by_name["value"]
    violations: list[FieldViolation] = []
    for key, value in entries.items():  # type: ignore[attr-defined]
        entry_path = f"{path}[{key}]"
        if isinstance(key, str) and "\x00" in key:
            violations.append(FieldViolation(entry_path, NUL_DESCRIPTION))
        violations.extend(_value_violations(value_field, value, entry_path))
    return violations


def _value_violations(field: FieldDescriptor, value: object, path: str) -> list[FieldViolation]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return [FieldViolation(path, NUL_DESCRIPTION)] if "\x00" in value else []  # type: ignore[operator]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None  # set for every message field
        if field.message_type.full_name in _JSON_TYPES:
            return _json_violations(value, path)  # type: ignore[arg-type]
        return nul_violations(value, path)  # type: ignore[arg-type]
    return []


_JSON_TYPES = ("google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue")


def _json_violations(message: Message, path: str) -> list[FieldViolation]:
    """The same for a JSON value (google.protobuf.Value and kin), named as the JSON is: a string
    quantity is "usage_records[0].quantity", not "...quantity.string_value"."""
    kind = message.DESCRIPTOR.full_name
    if kind == "google.protobuf.Value":
        which = message.WhichOneof("kind")
        if which == "string_value":
            text: str = message.string_value  # type: ignore[attr-defined]
            return [FieldViolation(path, NUL_DESCRIPTION)] if "\x00" in text else []
        if which in ("struct_value", "list_value"):
            return _json_violations(getattr(message, which), path)
        return []
    violations: list[FieldViolation] = []
    if kind == "google.protobuf.Struct":
        for key, value in message.fields.items():  # type: ignore[attr-defined]
            if "\x00" in key:
                violations.append(FieldViolation(f"{path}[{key!r}]", NUL_DESCRIPTION))
            violations.extend(_json_violations(value, f"{path}.{key}"))
    else:
        for index, value in enumerate(message.values):  # type: ignore[attr-defined]
            violations.extend(_json_violations(value, f"{path}[{index}]"))
    return violations
