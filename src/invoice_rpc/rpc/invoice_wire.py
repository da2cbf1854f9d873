"""Invoices as protobuf wire bytes written by PostgreSQL, for StreamInvoices' basic view.

Building a pb.Invoice in Python costs tens of microseconds per invoice; PostgreSQL can write the
same bytes. `invoice_wire_column` builds that expression over the columns of an InvoiceRecord
row (`invoice_records.invoice_record_select`, with the linked ids and `own_wire`): for every row
it gives bytes that `pb.Invoice.FromString` parses to a message equal to
`convert.invoice_to_pb(record)` without line items. `frame_stream_response` then puts a batch of
them into StreamInvoicesResponse bytes, which costs Python one join per batch.

Two parts, concatenated (parsers take fields in any order):
- The invoice's own fields (OWN_FIELDS: its columns) are written once per write, not once per
  stream: a trigger of migration 0006 stores them in `invoices.own_wire`, with the PL/pgSQL body
  `own_wire_trigger_body` generates (frozen in the migration; a test compares the two).
  `own_wire_expression` computes the same bytes as one SQL expression, for tests.
- The fields that come from other tables (LINKED_FIELDS: customer, contract, companies, plan,
  order, linked ids) are written as the stream reads them: a parent renamed shows at once.

How the expressions are made:
- Which column feeds which field is written once, below (`_INVOICE_FIELDS`), following
  `invoice_to_pb`; enum numbers come from convert.py's tables. Field numbers, wire types and
  nesting come from the message descriptors, and every field of pb.Invoice must have a source
  or be named in `FIELDS_NOT_IN_BASIC_VIEW`, or building the expression fails.
- Each field is encoded by a SQL helper of migration 0004 (pb_varint_field, pb_bytes_field, ...),
  which the planner inlines. Proto3 rules as the Python runtime applies them: a scalar at its
  default (0, "", false, or NULL here) is left out unless it has presence (a oneof member); a
  nested message is written when it is set, even with every field at its default (an empty body).
- PostgreSQL evaluates an expression once per reference and an inlined helper references its
  arguments several times, so values are computed in stages: stage 0 reads the row's columns once
  (text as UTF-8, timestamps as seconds and nanos, dates as year/month/day, enums as numbers);
  each later stage writes the messages whose fields are all ready in the stage below (Timestamp
  and Date, then Period, then the Invoice). In a SELECT each stage is a subquery kept apart from
  the next (OFFSET 0), the whole one scalar subquery per row; in the trigger each staged value
  is a PL/pgSQL variable.

What it costs (1M-invoice bench database, 2 cores): writing all ~40 fields cost a backend ~25 µs
per streamed invoice, ~17 µs of it the encoding; the own fields now cost ~18 µs per write
instead. Planning the linked part takes a few ms, once per connection that reads ranges of a
stream (service/invoice_ranges.py); JIT must stay off (invoice_ranges sets that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    LargeBinary,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from invoice_rpc.rpc.convert import (
    ACCOUNTING_EVENT_TO_PB,
    BILLING_TYPE_TO_PB,
    PAYMENT_TERM_TO_PB,
    STATUS_TO_PB,
    fill_linked_fields,
)
from invoice_rpc.service.invoice_queries import InvoiceRowColumns
from invoice_rpc.service.invoice_records import InvoicePartsRow, stored_own_wire
from invoice_rpc.storage import models as m


class _Columns(Protocol):
    """Columns by name: an InvoiceRecord row's (InvoiceRowColumns) or a trigger's NEW row."""

    def __getitem__(self, name: str, /) -> ColumnElement[Any]: ...


# A scalar field's value, read from the row.
_Source = Callable[[_Columns], ColumnElement[Any]]

# pb.Invoice fields the basic view leaves unset.
FIELDS_NOT_IN_BASIC_VIEW = frozenset({"line_items"})

_VARINT_TYPES = frozenset({FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_ENUM})
_WIRE_VARINT = 0
_WIRE_LENGTH_DELIMITED = 2


@dataclass(frozen=True, slots=True)
class _Nested:
    """A nested message: set when `present` is true, its fields from `fields` (by field name)."""

    present: _Source
    fields: Mapping[str, _Source | _Nested]


def _column(name: str) -> _Source:
    return lambda row: row[name]


def _text(name: str) -> _Source:
    """A UUID column as text: PostgreSQL writes it as str(uuid.UUID) does (lowercase, hyphens)."""
    return lambda row: cast(row[name], Text)


def _is_set(*names: str) -> _Source:
    return lambda row: or_(*(row[name].is_not(None) for name in names))


def _quoted(text: str) -> ColumnElement[str]:
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def _enum_number(column: ColumnElement[Any], table: Mapping[Any, int], field_name: str) -> ColumnElement[int]:
    """The enum's number for the stored value, NULL for NULL; a value the table lacks makes the
    query fail (pb_unencodable) as invoice_to_pb would, rather than leave the field out."""
    whens = [
        (column == _quoted(str(stored)), literal_column(str(int(number)), Integer)) for stored, number in table.items()
    ]
    unencodable = func.pb_unencodable(_quoted(field_name), column, type_=BigInteger)
    return case((column.is_(None), null()), *whens, else_=unencodable)


def _enum(name: str, table: Mapping[Any, int]) -> _Source:
    return lambda row: _enum_number(row[name], table, f"Invoice.{name}")


def _timestamp(name: str) -> _Nested:
    """google.protobuf.Timestamp of a timestamptz column (as timestamp_to_pb)."""
    return _Nested(
        present=_is_set(name),
        fields={
            "seconds": lambda row: func.pb_timestamp_seconds(row[name], type_=BigInteger),
            "nanos": lambda row: func.pb_timestamp_nanos(row[name], type_=BigInteger),
        },
    )


def _date_part(unit: str, name: str) -> _Source:
    return lambda row: cast(func.date_part(_quoted(unit), row[name]), BigInteger)


def _date(name: str) -> _Nested:
    """google.type.Date of a date column."""
    return _Nested(
        present=_is_set(name),
        fields={"year": _date_part("year", name), "month": _date_part("month", name), "day": _date_part("day", name)},
    )


def _payment_term(row: _Columns) -> ColumnElement[Any]:
    # NetTerms is a oneof: invoice_to_pb sets the payment term only when there are no days.
    term = _enum_number(row["payment_term"], PAYMENT_TERM_TO_PB, "Invoice.payment_term")
    return case((row["net_terms_days"].is_(None), term), else_=null())


# pb.Invoice field -> its source, as invoice_to_pb sets it.
_INVOICE_FIELDS: dict[str, _Source | _Nested] = {
    "invoice_ref": _text("id"),
    "invoice_number": _column("invoice_number"),
    "data_source_id": _text("data_source_id"),
    "external_id": _column("external_id"),
    "document_type_code": _column("document_type_code"),
    "accounting_event_type": _enum("accounting_event_type", ACCOUNTING_EVENT_TO_PB),
    "billing_type": _enum("billing_type", BILLING_TYPE_TO_PB),
    "status": _enum("status", STATUS_TO_PB),
    "customer": _Nested(
        present=_is_set("customer_ref"),
        fields={
            "customer_ref": _text("customer_ref"),
            "customer_id": _column("customer_external_id"),
            "name": _column("customer_name"),
            "legal_name": _column("customer_legal_name"),
        },
    ),
    "contract": _Nested(
        present=_is_set("contract_ref"),
        fields={"contract_ref": _text("contract_ref"), "contract_number": _column("contract_number")},
    ),
    "number_in_contract": _column("number_in_contract"),
    "issuer_company_id": _column("issuer_company_id"),
    "receiver_company_id": _column("receiver_company_id"),
    "plan_id": _column("plan_id"),
    "subscription_id": _column("subscription_id"),
    "currency_code": _column("currency"),
    "sub_total_minor": _column("sub_total_minor"),
    "total_discount_minor": _column("total_discount_minor"),
    "total_tax_minor": _column("total_tax_minor"),
    "credits_minor": _column("credits_minor"),
    "total_minor": _column("total_minor"),
    "amount_paid_minor": _column("amount_paid_minor"),
    "amount_remaining_minor": _column("amount_remaining_minor"),
    "net_terms": _Nested(
        present=_is_set("net_terms_days", "payment_term"),
        fields={"days": _column("net_terms_days"), "payment_term": _payment_term},
    ),
    "issue_date": _date("issue_date"),
    "due_date": _date("due_date"),
    "submission_time": _timestamp("submitted_at"),
    "paid_time": _timestamp("paid_at"),
    "service_period": _Nested(
        present=_is_set("period_start", "period_end"),
        fields={"start_time": _timestamp("period_start"), "end_time": _timestamp("period_end")},
    ),
    "is_partial_period": _column("is_partial_period"),
    "terms": _column("terms"),
    "description": _column("description"),
    "quantity": _column("quantity"),
    "payment_means_ids": _column("payment_means_ids"),
    "document_ids": _column("document_ids"),
    "person_ids": _column("person_ids"),
    "order_id": _column("order_id"),
    "create_time": _timestamp("created_at"),
    "update_time": _timestamp("updated_at"),
}


# pb.Invoice fields whose values come from other tables: the invoice's parents (customer,
# contract, companies, plan, order) and its links. The rest are the invoice's own columns, written
# once per write into `invoices.own_wire` (migration 0006) rather than once per streamed invoice.
LINKED_FIELDS = frozenset(
    {
        "customer",
        "contract",
        "issuer_company_id",
        "receiver_company_id",
        "plan_id",
        "order_id",
        "payment_means_ids",
        "document_ids",
        "person_ids",
    }
)


def encoded_field_numbers() -> frozenset[int]:
    """The pb.Invoice field numbers the wire column writes (when their values are set)."""
    fields = pb.Invoice.DESCRIPTOR.fields_by_name
    return frozenset(fields[name].number for name in _INVOICE_FIELDS)


# ---------------------------------------------------------------------------------------------
# The staged expression: a graph of values, each computed in one stage from values of lower stages.


@dataclass(eq=False)
class _Staged:
    """A value computed in `stage` by `build` from `inputs`, values of lower stages, which `build`
    reads through the function it is given (stage 0 reads the row instead)."""

    stage: int
    build: Callable[[_Get], ColumnElement[Any]]
    inputs: tuple[_Staged, ...] = field(default=())


_Get = Callable[[_Staged], ColumnElement[Any]]


def _from_row(expression: ColumnElement[Any]) -> _Staged:
    return _Staged(0, lambda _: expression)


def _above(inputs: Sequence[_Staged], build: Callable[[_Get], ColumnElement[Any]]) -> _Staged:
    return _Staged(1 + max(v.stage for v in inputs), build, tuple(inputs))


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _tag(descriptor: FieldDescriptor) -> ColumnElement[bytes]:
    """The field's key (number and wire type) as a bytea constant."""
    scalar_varint = descriptor.type in _VARINT_TYPES or descriptor.type == FieldDescriptor.TYPE_BOOL
    wire_type = _WIRE_VARINT if scalar_varint and not descriptor.is_repeated else _WIRE_LENGTH_DELIMITED
    key = _varint(descriptor.number << 3 | wire_type)
    return literal_column(f"'\\x{key.hex()}'::bytea", LargeBinary)


_EMPTY = literal_column("'\\x'::bytea", LargeBinary)


def _concat(parts: Sequence[ColumnElement[bytes]]) -> ColumnElement[bytes]:
    """parts joined with ||, as a balanced tree: each byte is copied about log2(len(parts)) times
    rather than up to len(parts) times."""
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    # byteacat is bytea's ||, written as a call so that the tree's shape stays as built.
    return func.byteacat(_concat(parts[:middle]), _concat(parts[middle:]), type_=LargeBinary)


def _utf8(text: ColumnElement[Any]) -> ColumnElement[bytes]:
    return func.convert_to(text, literal_column("'UTF8'"), type_=LargeBinary)


def _repeated_strings(tag: ColumnElement[bytes], array: ColumnElement[Any]) -> ColumnElement[bytes]:
    """Each element of a text array as its own field (written even when empty), in array order."""
    element = func.unnest(array).table_valued("value", with_ordinality="position").render_derived()
    encoded = func.pb_length_delimited(tag, _utf8(element.c.value), type_=LargeBinary)
    joined = func.string_agg(encoded, aggregate_order_by(_EMPTY, element.c.position), type_=LargeBinary)
    return case((array.is_(None), _EMPTY), else_=select(joined).select_from(element).scalar_subquery())


@dataclass(frozen=True, slots=True)
class _Piece:
    """One field's bytes (empty when the field is left out), written inside its message's body
    from `inputs`, values of lower stages."""

    inputs: tuple[_Staged, ...]
    build: Callable[[_Get], ColumnElement[bytes]]


def _field_piece(descriptor: FieldDescriptor, source: _Source | _Nested, row: _Columns) -> _Piece:
    tag = _tag(descriptor)
    name = descriptor.full_name
    if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
        if not isinstance(source, _Nested) or descriptor.is_repeated or descriptor.message_type is None:
            raise TypeError(f"{name}: a singular message field needs a nested-message source")
        body = _message_body(descriptor.message_type, source.fields, row, present=source.present(row))
        return _Piece((body,), lambda get: func.pb_message_field(tag, get(body), type_=LargeBinary))
    if isinstance(source, _Nested):
        raise TypeError(f"{name}: a scalar field cannot have a nested-message source")
    value = source(row)
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        if descriptor.is_repeated:
            array = _from_row(value)
            return _Piece((array,), lambda get: _repeated_strings(tag, get(array)))
        utf8 = _from_row(_utf8(value))
        return _Piece((utf8,), lambda get: func.pb_bytes_field(tag, get(utf8), type_=LargeBinary))
    if descriptor.is_repeated:
        raise TypeError(f"{name}: the wire encoder has no rule for repeated non-string scalars")
    if descriptor.type == FieldDescriptor.TYPE_BOOL:
        flag = _from_row(value if isinstance(value.type, Boolean) else cast(value, Boolean))
        return _Piece((flag,), lambda get: func.pb_bool_field(tag, get(flag), type_=LargeBinary))
    if descriptor.type in _VARINT_TYPES:
        number = _from_row(value if isinstance(value.type, BigInteger) else cast(value, BigInteger))
        # A field with presence (a oneof member) is written whenever it is set, 0 included.
        helper = func.pb_present_varint_field if descriptor.has_presence else func.pb_varint_field
        return _Piece((number,), lambda get: helper(tag, get(number), type_=LargeBinary))
    raise TypeError(f"{name}: the wire encoder has no rule for protobuf type {descriptor.type}")


def _message_body(
    descriptor: Descriptor,
    sources: Mapping[str, _Source | _Nested],
    row: _Columns,
    *,
    present: ColumnElement[bool] | None,
    not_encoded: Iterable[str] = (),
) -> _Staged:
    """The message's serialized fields in field-number order, one stage above its inputs; NULL
    when `present` is false (an unset message)."""
    skipped = frozenset(not_encoded)
    unknown = set(sources) - set(descriptor.fields_by_name)
    if unknown:
        raise ValueError(f"{descriptor.full_name} has no field {', '.join(sorted(unknown))}")
    pieces = []
    for field_descriptor in sorted(descriptor.fields, key=lambda f: f.number):
        source = sources.get(field_descriptor.name)
        if source is None:
            if field_descriptor.name in skipped:
                continue
            raise ValueError(f"{field_descriptor.full_name} has no source in the wire encoder")
        pieces.append(_field_piece(field_descriptor, source, row))
    inputs = [value for piece in pieces for value in piece.inputs]

    def fields(get: _Get) -> ColumnElement[bytes]:
        return _concat([piece.build(get) for piece in pieces])

    if present is None:
        return _above(inputs, fields)
    is_set = _from_row(present)
    return _above([*inputs, is_set], lambda get: case((get(is_set), fields(get)), else_=null()))


def _in_order(result: _Staged) -> tuple[list[_Staged], dict[_Staged, list[_Staged]]]:
    """The values `result` is built from and `result` itself, inputs before their consumers (in
    field order, so that names made from positions are stable), and each value's consumers."""
    consumers: dict[_Staged, list[_Staged]] = {}
    ordered: list[_Staged] = []

    def visit(value: _Staged) -> None:
        for source in value.inputs:
            if source not in consumers:
                consumers[source] = []
                visit(source)
            consumers[source].append(value)
        ordered.append(value)

    visit(result)
    return ordered, consumers


def _staged_select(result: _Staged) -> ColumnElement[bytes]:
    """`result` as a scalar subquery of nested subqueries, one per stage below it. Each stage
    selects its own values and passes on the lower ones a higher stage still needs; OFFSET 0 keeps
    PostgreSQL from merging a stage into the next (which would copy its expressions into every
    reference)."""
    ordered, consumers = _in_order(result)
    names = {value: f"v{i}" for i, value in enumerate(ordered)}
    zero: ColumnElement[int] = literal_column("0", Integer)
    below: Any = None
    for stage in range(result.stage):
        # Lower values are read from the stage below; this stage's own are built here.
        carried = [v for v in names if v.stage <= stage and max(c.stage for c in consumers.get(v, [v])) > stage]

        def get(value: _Staged, below: Any = below) -> ColumnElement[Any]:
            return below.c[names[value]]  # type: ignore[no-any-return]

        columns = [(v.build(get) if v.stage == stage else get(v)).label(names[v]) for v in carried]
        stage_select = select(*columns).offset(zero)
        if below is None:
            # Stage 0 reads the enclosing row: every FROM it names belongs to the outer query.
            stage_select = stage_select.correlate_except(None)
        else:
            stage_select = stage_select.select_from(below)
        below = stage_select.subquery(f"wire_stage{stage}")
    final_below = below
    return select(result.build(lambda v: final_below.c[names[v]])).select_from(final_below).scalar_subquery()


def _fields_body(row: _Columns, names: frozenset[str]) -> _Staged:
    """The value writing pb.Invoice's fields in `names` (their wire bytes, in field number order),
    reading `row`'s columns."""
    sources = {name: source for name, source in _INVOICE_FIELDS.items() if name in names}
    not_encoded = set(pb.Invoice.DESCRIPTOR.fields_by_name) - sources.keys()
    return _message_body(pb.Invoice.DESCRIPTOR, sources, row, present=None, not_encoded=not_encoded)


OWN_FIELDS = frozenset(_INVOICE_FIELDS) - LINKED_FIELDS


def own_wire_expression(columns: _Columns) -> ColumnElement[bytes]:
    """The wire bytes of pb.Invoice's own fields (all but LINKED_FIELDS and line items) from the
    columns of an `invoices` row, by column name, as one SQL expression: what the trigger of
    migration 0006 stores in `own_wire`, computed another way (tests compare the two)."""
    return _staged_select(_fields_body(columns, OWN_FIELDS))


def own_wire_trigger_body() -> str:
    """The PL/pgSQL body of the trigger function that sets `invoices.own_wire` from NEW on every
    INSERT and UPDATE (migration 0006 holds a frozen copy; a test compares the two, so that a
    change of pb.Invoice or of the enum tables comes with a migration that replaces the function
    and rewrites the stored bytes).

    The staged values become variables, one assignment each: PL/pgSQL evaluates an assignment
    without a subquery as a "simple expression" (an expression state built once per
    transaction), ~18 µs per row in all. The staged scalar subquery of `own_wire_expression`
    would start an executor per row instead (~1.7 ms)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # the dialect class is untyped

    def sql(expression: ColumnElement[Any]) -> str:
        return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    new_row = {column.name: literal_column(f"NEW.{column.name}", column.type) for column in m.Invoice.__table__.c}
    result = _fields_body(new_row, OWN_FIELDS)
    ordered, _ = _in_order(result)
    names = {value: f"v{i}" for i, value in enumerate(ordered)}

    def get(value: _Staged) -> ColumnElement[Any]:
        return literal_column(names[value])

    declarations, assignments = [], []
    for value in ordered[:-1]:
        expression = value.build(get)
        declarations.append(f"    {names[value]} {expression.type.compile(dialect=dialect)};")
        assignments.append(f"    {names[value]} := {sql(expression)};")
    assignments.append(f"    NEW.own_wire := {sql(result.build(get))};")
    return "\n".join(["DECLARE", *declarations, "BEGIN", *assignments, "    RETURN NEW;", "END"])


def invoice_wire_column(row: InvoiceRowColumns) -> ColumnElement[bytes]:
    """Per row, the pb.Invoice wire bytes of the invoice (basic view: no line items), as
    `invoice_to_pb(record).SerializeToString()` would parse: the stored bytes of its own fields
    (`own_wire`), then its linked fields written here. Protobuf parsers take fields in any order,
    so the linked fields may follow fields of higher numbers. `row` holds the columns of an
    InvoiceRecord row (named as its fields) with `own_wire` and the linked ids as text arrays;
    they must be columns of a FROM of the enclosing SELECT (e.g. a subquery's), read once here.
    PostgreSQL only (the helpers of migrations 0004 and 0006)."""
    linked = _staged_select(_fields_body(row, LINKED_FIELDS))
    return func.byteacat(stored_own_wire(row), linked, type_=LargeBinary).label("invoice_wire")


def invoice_parts_wire(parts: InvoicePartsRow) -> bytes:
    """The pb.Invoice wire bytes (basic view) of an invoice read in parts (a list page): its
    stored own fields, then its linked fields written here by the protobuf runtime. The linked
    part is a handful of values; written in SQL it cost PostgreSQL 7-10 ms to plan, more than the
    page takes to run, while Python writes it in a few microseconds."""
    linked = pb.Invoice()
    fill_linked_fields(linked, parts)
    return parts.own_wire + linked.SerializeToString()


# ---------------------------------------------------------------------------------------------
# Framing in Python.

_INVOICES_TAG = _varint(
    isvc.StreamInvoicesResponse.DESCRIPTOR.fields_by_name["invoices"].number << 3 | _WIRE_LENGTH_DELIMITED
)
# The invoices field's key and length for every length up to 16 KiB: one lookup per invoice.
_PREFIXES = [_INVOICES_TAG + _varint(length) for length in range(16_384)]


def frame_invoices(invoices: Iterable[bytes]) -> bytes:
    """The wire bytes of field 1, `repeated Invoice invoices`, with `invoices` (pb.Invoice wire
    bytes) in order: StreamInvoicesResponse's and ListInvoicesResponse's (both number it 1;
    the wire tests parse both)."""
    prefixes = _PREFIXES
    parts: list[bytes] = []
    for invoice in invoices:
        length = len(invoice)
        parts.append(prefixes[length] if length < 16_384 else _INVOICES_TAG + _varint(length))
        parts.append(invoice)
    return b"".join(parts)


def frame_stream_response(invoices: Iterable[bytes]) -> bytes:
    """A StreamInvoicesResponse's wire bytes with `invoices` (pb.Invoice wire bytes) in order."""
    return frame_invoices(invoices)


def frame_list_response(invoices: Iterable[bytes], rest: isvc.ListInvoicesResponse) -> bytes:
    """A ListInvoicesResponse's wire bytes: `invoices` (pb.Invoice wire bytes) in order, then the
    fields of `rest` (the page token and info). Serialized messages concatenate as a merge, and
    `rest` has no invoices."""
    return frame_invoices(invoices) + rest.SerializeToString()
