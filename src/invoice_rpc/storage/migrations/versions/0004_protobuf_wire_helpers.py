"""protobuf wire helpers: SQL functions that encode protobuf fields (PostgreSQL only)

Revision ID: 0004
Revises: 0003

StreamInvoices has PostgreSQL write each invoice's protobuf wire bytes in the SELECT itself
(invoice_rpc.rpc.invoice_wire builds that expression). These are its building blocks: one
function per kind of field, each a single SQL expression, so that the planner inlines them into
the query (no function call per field at run time). For that they are LANGUAGE sql, not STRICT
(a STRICT function whose body is a CASE is not inlined), and reference only immutable or stable
functions. Their arguments are meant to be plain columns of an inner subquery: an inlined
function evaluates an argument expression once per reference to its parameter.

- pb_varint(v): v as a protobuf varint: 1 to 9 bytes for v >= 0, 10 bytes for v < 0 (two's
  complement, as int32, int64 and enum fields encode negative values).
- pb_varint_field(tag, v): the field with the given tag bytes, omitted (empty) when v is 0 or NULL,
  as proto3 omits a scalar at its default; pb_present_varint_field(tag, v) writes 0 too (a oneof
  member that is set) and omits only NULL; pb_bool_field(tag, v) writes true only.
- pb_length_delimited(tag, b): tag, length and bytes (a string, a nested message's body, an element
  of a repeated string): always written. pb_bytes_field(tag, b): omitted when b is empty or NULL.
  pb_message_field(tag, body): omitted when body is NULL (the message is unset); an empty body is a
  message that is set with every field at its default.
- pb_timestamp_seconds(ts), pb_timestamp_nanos(ts): google.protobuf.Timestamp's two fields, exact
  to the microsecond (a timestamptz's precision) and independent of the session's TimeZone.
- pb_unencodable(field, value): raises; the encoder's CASE falls through to it for a stored value
  that has no protobuf number (an enum the API does not know), so such a row fails loudly
  instead of being sent with the field missing.

On SQLite this migration does nothing: the wire path is PostgreSQL's only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY = "'\\x'::bytea"


def _bigint(value: int) -> str:
    """A bigint constant written as its 64 bits, so that the sign bit needs no special case."""
    return f"x'{value & 0xFFFF_FFFF_FFFF_FFFF:016x}'::bigint"


def _groups_in_bytes(count: int, continued: int) -> str:
    """A bigint whose big-endian bytes are v's first `count` 7-bit groups, least significant
    group first, the first `continued` of them with the continuation bit (0x80) set. `>>` is an
    arithmetic shift, so the groups of a negative v are those of its two's complement."""
    terms = []
    for group in range(count):
        shifted = f"(v >> {7 * group})" if group else "v"
        terms.append(f"(({shifted} & 127) << {8 * (7 - group)})")
    continuation = sum(0x80 << (8 * (7 - group)) for group in range(continued))
    return f"({' | '.join(terms)} | {_bigint(continuation)})"


def _varint_body() -> str:
    branches = [
        # 10 bytes: groups 0..7, then group 8 and the sign bit's group (always 1), both of the
        # 64 bits of the two's complement.
        f"WHEN v < 0 THEN int8send({_groups_in_bytes(8, 8)}) "
        f"|| set_byte('\\x0001'::bytea, 0, (((v >> 56) & 127) | 128)::integer)",
        "WHEN v < 128 THEN set_byte('\\x00'::bytea, 0, v::integer)",
    ]
    for length in range(2, 9):
        branches.append(
            f"WHEN v < {1 << (7 * length)} THEN substring(int8send({_groups_in_bytes(length, length - 1)}) "
            f"FROM 1 FOR {length})"
        )
    # 9 bytes: 2^56 <= v < 2^63.
    branches.append(
        f"ELSE int8send({_groups_in_bytes(8, 8)}) || set_byte('\\x00'::bytea, 0, (v >> 56)::integer)"
    )
    return "CASE " + " ".join(branches) + " END"


def _length_delimited_body(b: str, *, write_empty: bool) -> str:
    """tag, the length of bytes `b` and `b`; nothing for NULL, and for an empty `b` unless
    `write_empty`. A length below 128 (one byte) is written into a copy of the constant tag."""
    short = f"set_byte(tag || '\\x00'::bytea, octet_length(tag), octet_length({b})) || {b}"
    if not write_empty:
        short = f"CASE WHEN octet_length({b}) > 0 THEN {short} ELSE {EMPTY} END"
    return (
        f"CASE WHEN octet_length({b}) < 128 THEN {short} "
        f"WHEN {b} IS NOT NULL THEN tag || pb_varint(octet_length({b})) || {b} ELSE {EMPTY} END"
    )


FUNCTIONS: dict[str, tuple[str, str, str]] = {
    # signature -> (returns, volatility, body)
    "pb_varint(v bigint)": ("bytea", "IMMUTABLE", _varint_body()),
    "pb_varint_field(tag bytea, v bigint)": (
        "bytea",
        "IMMUTABLE",
        f"CASE WHEN v <> 0 THEN tag || pb_varint(v) ELSE {EMPTY} END",
    ),
    "pb_present_varint_field(tag bytea, v bigint)": (
        "bytea",
        "IMMUTABLE",
        f"CASE WHEN v IS NOT NULL THEN tag || pb_varint(v) ELSE {EMPTY} END",
    ),
    "pb_bool_field(tag bytea, v boolean)": (
        "bytea",
        "IMMUTABLE",
        f"CASE WHEN v THEN tag || '\\x01'::bytea ELSE {EMPTY} END",
    ),
    "pb_length_delimited(tag bytea, b bytea)": ("bytea", "IMMUTABLE", _length_delimited_body("b", write_empty=True)),
    "pb_bytes_field(tag bytea, b bytea)": ("bytea", "IMMUTABLE", _length_delimited_body("b", write_empty=False)),
    "pb_message_field(tag bytea, body bytea)": (
        "bytea",
        "IMMUTABLE",
        _length_delimited_body("body", write_empty=True),
    ),
    # date_part('epoch') is a double: exact for whole seconds S while S * 10^6 is (it has six
    # factors of two, so up to |S| < 2^53 / 15625, about 18,000 years either side of 1970). The
    # microsecond of the second does not depend on the time zone (zone offsets are whole
    # seconds). STABLE as date_trunc and date_part on timestamptz are, though these two results
    # do not depend on the session's TimeZone.
    "pb_timestamp_seconds(ts timestamptz)": (
        "bigint",
        "STABLE",
        "date_part('epoch', date_trunc('second', ts))::bigint",
    ),
    "pb_timestamp_nanos(ts timestamptz)": (
        "bigint",
        "STABLE",
        "(date_part('microseconds', ts)::bigint % 1000000) * 1000",
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature, (returns, volatility, body) in FUNCTIONS.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {signature} RETURNS {returns} "
            f"LANGUAGE sql {volatility} PARALLEL SAFE AS $body$ SELECT {body} $body$"
        )
    op.execute(
        "CREATE OR REPLACE FUNCTION pb_unencodable(field text, value text) RETURNS bigint "
        "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$ BEGIN "
        "RAISE EXCEPTION 'invoice field % has no protobuf value for %', field, quote_nullable(value) "
        "USING ERRCODE = 'data_exception'; "
        "END $body$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS pb_unencodable(text, text)")
    for signature in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
