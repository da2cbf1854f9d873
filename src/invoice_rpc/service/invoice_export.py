"""Invoice exports as CSV or JSON, produced as a stream of ~64 KiB byte chunks in constant memory
(invoices come in batches from a server-side cursor; only one batch and one chunk are held).

Amounts are major-unit decimal strings in the invoice's currency (USD "99.00", JPY "500", KWD
"1.234"), always beside `currency`; timestamps are ISO 8601 in UTC, dates YYYY-MM-DD; absent
values are empty cells (CSV) or null (JSON).

CSV (RFC 4180, CRLF line ends, header row), columns in this order:
    invoice_ref, invoice_number, external_id, data_source_id, document_type_code,
    accounting_event_type, billing_type, status, customer_ref, customer_id, customer_name,
    contract_ref, contract_number, number_in_contract, issuer_company_id, receiver_company_id,
    plan_id, subscription_id, currency, sub_total, total_discount, total_tax, credits, total,
    amount_paid, amount_remaining, net_terms_days, payment_term, issue_date, due_date,
    submitted_at, paid_at, service_period_start, service_period_end, description, created_at,
    updated_at
and, with line items, one row per line (invoice columns repeated; an invoice without lines gives
one row with these left empty):
    line_position, line_sku, line_name, line_description, line_quantity, line_unit,
    line_unit_price, line_discount, line_tax_rate, line_tax_category, line_sub_total, line_tax,
    line_total, line_period_start, line_period_end

JSON: one array of objects with the invoice keys above (snake_case; `service_period_start`/`_end`
as written), plus, with line items, `line_items`: an array of objects whose keys are the line
columns without the `line_` prefix (`position`, `sku`, `name`, ..., `period_end`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import string
import uuid
from collections.abc import AsyncGenerator, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from psycopg.abc import Buffer
from sqlalchemy import Select, Text, case, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import SortDirection, SortField
from invoice_rpc.domain.money import exponent, format_major, is_currency
from invoice_rpc.service.invoice_queries import (
    InvoiceQuery,
    InvoiceSort,
    invoice_filter_clauses,
    stream_invoice_batches,
)
from invoice_rpc.service.invoice_records import InvoiceRecord, LineItemRecord, invoice_record_select
from invoice_rpc.storage import models as m
from invoice_rpc.storage.copy_out import read_copy_rows

CHUNK_BYTES = 64 * 1024
# Invoices read per round trip; with lines a batch may hold many more rows.
EXPORT_BATCH_SIZE = 200


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


CONTENT_TYPES: dict[ExportFormat, str] = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
}


def export_filename(export_format: ExportFormat, now: datetime) -> str:
    """invoices-20260201-093000.csv (the time in UTC)."""
    return f"invoices-{now.astimezone(UTC):%Y%m%d-%H%M%S}.{export_format.value}"


def content_disposition(export_format: ExportFormat, now: datetime) -> str:
    return f'attachment; filename="{export_filename(export_format, now)}"'


def _text(value: Any) -> Any:
    """A JSON-ready scalar: ISO 8601 for dates and times (UTC), str for ids, None kept."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def invoice_fields(record: InvoiceRecord) -> dict[str, Any]:
    """The invoice's export columns, in order (values JSON-ready; None when absent)."""
    cur = record.currency
    values: dict[str, Any] = {
        "invoice_ref": record.id,
        "invoice_number": record.invoice_number,
        "external_id": record.external_id,
        "data_source_id": record.data_source_id,
        "document_type_code": record.document_type_code,
        "accounting_event_type": record.accounting_event_type,
        "billing_type": record.billing_type,
        "status": record.status,
        "customer_ref": record.customer_ref,
        "customer_id": record.customer_external_id,
        "customer_name": record.customer_name,
        "contract_ref": record.contract_ref,
        "contract_number": record.contract_number,
        "number_in_contract": record.number_in_contract,
        "issuer_company_id": record.issuer_company_id,
        "receiver_company_id": record.receiver_company_id,
        "plan_id": record.plan_id,
        "subscription_id": record.subscription_id,
        "currency": cur,
        "sub_total": format_major(record.sub_total_minor, cur),
        "total_discount": format_major(record.total_discount_minor, cur),
        "total_tax": format_major(record.total_tax_minor, cur),
        "credits": format_major(record.credits_minor, cur),
        "total": format_major(record.total_minor, cur),
        "amount_paid": format_major(record.amount_paid_minor, cur),
        "amount_remaining": format_major(record.amount_remaining_minor, cur),
        "net_terms_days": record.net_terms_days,
        "payment_term": record.payment_term,
        "issue_date": record.issue_date,
        "due_date": record.due_date,
        "submitted_at": record.submitted_at,
        "paid_at": record.paid_at,
        "service_period_start": record.period_start,
        "service_period_end": record.period_end,
        "description": record.description,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    return {k: _text(v) for k, v in values.items()}


def line_fields(line: LineItemRecord, currency: str) -> dict[str, Any]:
    """A line's export columns, in order, without the CSV `line_` prefix."""
    values: dict[str, Any] = {
        "position": line.position,
        "sku": line.sku,
        "name": line.name,
        "description": line.description,
        "quantity": line.quantity,
        "unit": line.unit,
        "unit_price": format_major(line.unit_price_minor, currency),
        "discount": format_major(line.discount_minor, currency),
        "tax_rate": line.tax_rate,
        "tax_category": line.tax_category,
        "sub_total": format_major(line.sub_total_minor, currency),
        "tax": format_major(line.tax_minor, currency),
        "total": format_major(line.total_minor, currency),
        "period_start": line.period_start,
        "period_end": line.period_end,
    }
    return {k: _text(v) for k, v in values.items()}


INVOICE_COLUMNS: tuple[str, ...] = tuple(
    "invoice_ref invoice_number external_id data_source_id document_type_code accounting_event_type billing_type "
    "status customer_ref customer_id customer_name contract_ref contract_number number_in_contract "
    "issuer_company_id receiver_company_id plan_id subscription_id currency sub_total total_discount total_tax "
    "credits total amount_paid amount_remaining net_terms_days payment_term issue_date due_date submitted_at "
    "paid_at service_period_start service_period_end description created_at updated_at".split()
)
LINE_COLUMNS: tuple[str, ...] = tuple(
    "position sku name description quantity unit unit_price discount tax_rate tax_category sub_total tax total "
    "period_start period_end".split()
)


class _ChunkBuffer:
    """Collects text and hands out UTF-8 chunks of at least CHUNK_BYTES (the last may be smaller)."""

    def __init__(self, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.parts.append(data)
        self.size += len(data)

    def full(self) -> bool:
        return self.size >= self.chunk_bytes

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def _csv_line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow("" if v is None else v for v in values)
    return out.getvalue()


def _csv_rows(record: InvoiceRecord, with_line_items: bool) -> Iterable[str]:
    fields = invoice_fields(record)
    invoice = [fields[c] for c in INVOICE_COLUMNS]
    if not with_line_items:
        yield _csv_line(invoice)
        return
    if not record.line_items:
        yield _csv_line(invoice + [None] * len(LINE_COLUMNS))
        return
    for line in record.line_items:
        line_values = line_fields(line, record.currency)
        yield _csv_line(invoice + [line_values[c] for c in LINE_COLUMNS])


def _json_object(record: InvoiceRecord, with_line_items: bool) -> str:
    obj = invoice_fields(record)
    if with_line_items:
        obj["line_items"] = [line_fields(line, record.currency) for line in record.line_items]
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


async def export_chunks(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    export_format: ExportFormat,
    *,
    with_line_items: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncGenerator[bytes, None]:
    """The export file as byte chunks of about `chunk_bytes` each; always at least one chunk (an
    empty export is the CSV header alone, or `[]`). The caller validates `query` beforehand.

    CSV on PostgreSQL is produced by the database itself (`postgresql_csv_chunks`); JSON, and
    CSV on SQLite, are written here from batches of records."""
    if export_format is ExportFormat.CSV and session.get_bind().dialect.name == "postgresql":
        chunks = postgresql_csv_chunks(
            session, tenant_id, query, sort, with_line_items=with_line_items, chunk_bytes=chunk_bytes
        )
    else:
        chunks = record_chunks(
            session, tenant_id, query, sort, export_format, with_line_items=with_line_items, chunk_bytes=chunk_bytes
        )
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        # Close the cursor (or COPY) now, not whenever the generator is garbage-collected.
        await chunks.aclose()


async def record_chunks(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    export_format: ExportFormat,
    *,
    with_line_items: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncGenerator[bytes, None]:
    """`export_chunks` written here from batches of InvoiceRecords (any database, any format)."""
    buffer = _ChunkBuffer(chunk_bytes)
    if export_format is ExportFormat.CSV:
        buffer.write(_csv_line(csv_header(with_line_items)))
    else:
        buffer.write("[")
    first = True
    batches = stream_invoice_batches(
        session, tenant_id, query, sort, batch_size=EXPORT_BATCH_SIZE, with_line_items=with_line_items
    )
    try:
        async for batch in batches:
            for record in batch:
                if export_format is ExportFormat.CSV:
                    for row in _csv_rows(record, with_line_items):
                        buffer.write(row)
                else:
                    buffer.write(("" if first else ",") + _json_object(record, with_line_items))
                first = False
                if buffer.full():
                    yield buffer.take()
    finally:
        await batches.aclose()
    if export_format is ExportFormat.JSON:
        buffer.write("]")
    yield buffer.take()


def csv_header(with_line_items: bool) -> list[str]:
    header = list(INVOICE_COLUMNS)
    if with_line_items:
        header += [f"line_{c}" for c in LINE_COLUMNS]
    return header


# --- CSV by PostgreSQL's COPY --------------------------------------------------------------------
#
# COPY (SELECT …) TO STDOUT WITH CSV streams rows straight from the query executor: no Python
# object per row or per value. The SELECT renders every value exactly as `invoice_fields` and
# `line_fields` do (a test compares the two byte for byte), and PostgreSQL's CSV quoting is the
# csv module's QUOTE_MINIMAL (quotes only around separators, quotes and line breaks). Two
# differences are bridged: PostgreSQL quotes an empty string (""), so empty text becomes NULL
# (an empty cell, as the csv module writes it); and it ends rows with LF, so each row's final
# LF becomes CRLF (the server sends exactly one row per CopyData message; LFs inside quoted
# cells stay LF, as the csv module leaves them).


def _currencies_by_exponent() -> dict[int, list[str]]:
    letters = string.ascii_uppercase
    grouped: dict[int, list[str]] = {}
    for code in ("".join(c) for c in itertools.product(letters, repeat=3)):
        if is_currency(code):
            grouped.setdefault(exponent(code), []).append(code)
    return grouped


_CURRENCIES_BY_EXPONENT = _currencies_by_exponent()
_SCALES = {0: "1", 1: "0.1", 2: "0.01", 3: "0.001", 4: "0.0001"}


def _scale_sql(currency: Any) -> Any:
    """The currency's minor unit as a numeric (0.01 for USD, 1 for JPY, 0.001 for KWD). Minor
    units × 0.01 keeps scale 2, so 9900 USD gives 99.00, as `format_major` does."""
    whens = [
        (currency.in_(codes), literal(Decimal(_SCALES[exp])))
        for exp, codes in sorted(_CURRENCIES_BY_EXPONENT.items())
        if exp != 2
    ]
    return case(*whens, else_=literal(Decimal(_SCALES[2])))


def _major_sql(amount_minor: Any, scale: Any) -> Any:
    """Minor units as the currency's major-unit decimal text, given its `_scale_sql`."""
    return cast(amount_minor * scale, Text())


def _iso_utc_sql(timestamp: Any) -> Any:
    """ISO 8601 in UTC with Z, microseconds only when not zero (datetime.isoformat's rule).
    One to_char, with microseconds, whose ".000000" is then dropped: to_char is the costly part
    (two of them and a CASE cost twice as much, eight times per row)."""
    utc = func.to_char(func.timezone("UTC", timestamp), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    return func.replace(utc, ".000000Z", "Z")


def _text_sql(column: Any) -> Any:
    return func.nullif(column, "")


def _date_sql(column: Any) -> Any:
    return func.to_char(column, "YYYY-MM-DD")


def _csv_select(tenant_id: uuid.UUID, query: InvoiceQuery, sort: InvoiceSort, *, with_line_items: bool) -> Select[Any]:
    """The export's rows with every cell already rendered as text, in the export's order."""
    records = invoice_record_select().where(*invoice_filter_clauses(tenant_id, query)).subquery("records")
    r = records.c
    cur = r.currency
    # The currency's scale once per invoice rather than once per amount (twelve per row, each a
    # few IN lists): a LATERAL subquery, which OFFSET 0 keeps from being flattened back into every
    # amount, and which PostgreSQL memoizes per currency. It also keeps the plan serial: parallel
    # workers and their merge cost more CPU in all than they save the COPY's backend, on a machine
    # whose cores this server and its clients need too.
    money = select(_scale_sql(cur).label("scale")).correlate(records).offset(0).lateral("money")
    scale = money.c.scale
    cells: list[Any] = [
        r.id,
        r.invoice_number,
        _text_sql(r.external_id),
        r.data_source_id,
        r.document_type_code,
        r.accounting_event_type,
        r.billing_type,
        r.status,
        r.customer_ref,
        _text_sql(r.customer_external_id),
        _text_sql(r.customer_name),
        r.contract_ref,
        r.contract_number,
        r.number_in_contract,
        _text_sql(r.issuer_company_id),
        _text_sql(r.receiver_company_id),
        _text_sql(r.plan_id),
        _text_sql(r.subscription_id),
        cur,
        *(
            _major_sql(getattr(r, name), scale)
            for name in (
                "sub_total_minor",
                "total_discount_minor",
                "total_tax_minor",
                "credits_minor",
                "total_minor",
                "amount_paid_minor",
                "amount_remaining_minor",
            )
        ),
        r.net_terms_days,
        _text_sql(r.payment_term),
        _date_sql(r.issue_date),
        _date_sql(r.due_date),
        _iso_utc_sql(r.submitted_at),
        _iso_utc_sql(r.paid_at),
        _iso_utc_sql(r.period_start),
        _iso_utc_sql(r.period_end),
        _text_sql(r.description),
        _iso_utc_sql(r.created_at),
        _iso_utc_sql(r.updated_at),
    ]
    stmt = select(*cells).select_from(records).join(money, true())
    if with_line_items:
        line = m.InvoiceLine
        cells = [
            line.position,
            _text_sql(line.sku),
            _text_sql(line.name),
            _text_sql(line.description),
            _text_sql(line.quantity),
            _text_sql(line.unit),
            *(_major_sql(c, scale) for c in (line.unit_price_minor, line.discount_minor)),
            _text_sql(line.tax_rate),
            _text_sql(line.tax_category),
            *(_major_sql(c, scale) for c in (line.sub_total_minor, line.tax_minor, line.total_minor)),
            _iso_utc_sql(line.period_start),
            _iso_utc_sql(line.period_end),
        ]
        stmt = stmt.add_columns(*cells).outerjoin(line, line.invoice_id == r.id)
    sort_column = getattr(r, _RECORD_SORT_FIELDS[sort.field])
    if sort.direction is SortDirection.ASC:
        stmt = stmt.order_by(sort_column.asc(), r.id.asc())
    else:
        stmt = stmt.order_by(sort_column.desc(), r.id.desc())
    if with_line_items:
        stmt = stmt.order_by(m.InvoiceLine.position)
    return stmt


_RECORD_SORT_FIELDS = {
    SortField.CREATED_AT: "created_at",
    SortField.ISSUE_DATE: "issue_date",
    SortField.BILLING_TYPE: "billing_type",
    SortField.TOTAL_AMOUNT: "total_minor",
    SortField.INVOICE_NUMBER: "invoice_number",
}


async def postgresql_csv_chunks(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    *,
    with_line_items: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncGenerator[bytes, None]:
    """The CSV export made by COPY … TO STDOUT inside the session's transaction, in chunks of
    about `chunk_bytes`. Closing the generator early ends the COPY (psycopg cancels it), so the
    connection goes back to its pool clean."""
    connection = await session.connection()
    # COPY takes no server-side parameters: psycopg binds them client-side, so IN lists are
    # rendered as plain placeholders here.
    compiled = _csv_select(tenant_id, query, sort, with_line_items=with_line_items).compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    pending = _csv_line(csv_header(with_line_items)).encode()
    async with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy,
    ):
        while rows := await read_copy_rows(copy, chunk_bytes - len(pending)):
            yield pending + _crlf_rows(rows) if pending else _crlf_rows(rows)
            pending = b""
    if pending:  # nothing matched: the header alone
        yield pending


def _crlf_rows(rows: list[Buffer]) -> bytes:
    """COPY's rows (each one CopyData message ending in LF) joined, each ending in CRLF."""
    block = b"".join(rows)
    if block.count(b"\n") == len(rows):
        # No cell holds a line break, so every LF ends a row: one replace in C for the block.
        return block.replace(b"\n", b"\r\n")
    return b"".join([bytes(row)[:-1] + b"\r\n" for row in rows])
