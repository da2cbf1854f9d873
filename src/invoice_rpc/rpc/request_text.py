"""Text every request must be able to store: no NUL characters.

Protobuf strings (and JSON strings, `"\\u0000"`, and percent-encoded paths, `%00`) may carry
U+0000, but PostgreSQL text cannot hold it: such a value would fail deep in a query as an
internal error. The edge refuses it up front, naming every field that has one, so that both
databases answer the same INVALID_ARGUMENT.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from invoice_rpc.domain.errors import FieldViolation

NUL_DESCRIPTION = "must not contain the NUL character (U+0000)"


def nul_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """A violation for each string in `message` (nested messages, repeated fields and maps
    included) that contains U+0000, named by its path: "invoices[2].id", "labels[key]"."""
    if not prefix and b"\x00" not in message.SerializeToString():
        # A string holding U+0000 puts a zero byte in the wire form; most requests have no
        # zero byte at all, and one C-level scan clears them without walking every field.
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
