"""Which invoices a reader asked for, in what order, one page (or batch) at a time.

`InvoiceQuery` is the filter in domain terms, `InvoiceSort` the order (whitelisted columns,
ties broken by id in the same direction), `PageRequest` the page. `list_invoices` serves two
kinds of pages:

- numbered pages (`page` >= 1): OFFSET/LIMIT with a COUNT of the matches, for callers that want
  "page 3 of 7". No next_page_token is issued in this mode; the caller asks for page + 1.
- keyset pages (no `page`): the token names the last row read (sort value, id), and the next
  page starts strictly after it, so rows inserted between pages cause neither duplicates nor
  skips of rows that existed before. The token also carries the sort and a hash of the filter:
  a token used with another filter or sort is refused, not silently misapplied.

Every statement filters on the tenant first; user input is only ever a bound parameter.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnCollection

from invoice_rpc.domain.enums import BillingType, DateField, InvoiceStatus, SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, ViolationCollector
from invoice_rpc.domain.money import is_currency
from invoice_rpc.service.invoice_records import (
    InvoicePartsRow,
    InvoiceRecord,
    attach_children,
    core_connection,
    invoice_parts_select,
    invoice_record_select,
    links_in_select,
    record_from_row,
)
from invoice_rpc.service.page_tokens import decode_page_token, encode_page_token, fingerprint
from invoice_rpc.storage import models as m
from invoice_rpc.storage.driver_pool import DriverConnection
from invoice_rpc.storage.driver_rows import fetch_all

# The columns a projection of invoice_ranges reads: an InvoiceRecord row's, by field name.
InvoiceRowColumns = ColumnCollection[str, ColumnElement[Any]]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """Which invoices: every condition given must hold; a repeated one matches any of its values."""

    billing_types: tuple[BillingType, ...] = ()
    statuses: tuple[InvoiceStatus, ...] = ()
    customer_refs: tuple[uuid.UUID, ...] = ()
    contract_refs: tuple[uuid.UUID, ...] = ()
    issuer_company_id: str | None = None  # the company's external id, as Invoice shows it
    receiver_company_id: str | None = None
    data_source_id: uuid.UUID | None = None
    currency: str | None = None
    date_field: DateField = DateField.ISSUE_DATE
    start_date: date | None = None  # inclusive
    end_date: date | None = None  # inclusive

    def check(self, violations: ViolationCollector, prefix: str = "filter") -> None:
        """Add the query's business-rule violations, named `<prefix>.<field>`."""
        if self.currency is not None and not is_currency(self.currency):
            violations.add(f"{prefix}.currency_code", f"{self.currency!r} is not an ISO 4217 currency code")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            violations.add(f"{prefix}.end_date", "must not be before start_date")

    def fingerprint(self) -> str:
        # The fields' own values (enums and ids go through the JSON default), not asdict(), which
        # deep-copies every value: the fingerprint is taken once per listed page.
        return fingerprint({name: getattr(self, name) for name in _QUERY_FIELDS})


_QUERY_FIELDS = tuple(f.name for f in fields(InvoiceQuery))


@dataclass(frozen=True, slots=True)
class InvoiceSort:
    field: SortField = SortField.CREATED_AT
    direction: SortDirection = SortDirection.DESC

    @property
    def is_ascending(self) -> bool:
        return self.direction is SortDirection.ASC


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page: `page` >= 1 asks for a numbered page, otherwise `page_token` (or none: the first)
    continues keyset pages. `page_size` 0 means the default."""

    page_size: int = 0
    page: int = 0
    page_token: str = ""


@dataclass(frozen=True, slots=True)
class PageInfo:
    current_page: int
    per_page: int
    total: int
    last_page: int


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: list[InvoiceRecord]
    next_page_token: str  # "" on the last page and for numbered pages
    page_info: PageInfo | None  # set for numbered pages only


@dataclass(frozen=True, slots=True)
class _Cursor:
    sort_value: Any
    last_id: uuid.UUID


# The whitelist: the only columns a caller can sort by.
_SORT_COLUMNS: dict[SortField, Any] = {
    SortField.CREATED_AT: m.Invoice.created_at,
    SortField.ISSUE_DATE: m.Invoice.issue_date,
    SortField.BILLING_TYPE: m.Invoice.billing_type,
    SortField.TOTAL_AMOUNT: m.Invoice.total_minor,
    SortField.INVOICE_NUMBER: m.Invoice.invoice_number,
}


def resolve_size(value: int, field: str, violations: ViolationCollector, *, default: int, maximum: int) -> int:
    """A page or batch size: 0 gives the default; below 0 or above the maximum is a violation."""
    if value == 0:
        return default
    if value < 0 or value > maximum:
        violations.add(field, f"must be between 1 and {maximum} (got {value})")
        return default
    return value


def check_list_request(
    query: InvoiceQuery, sort: InvoiceSort, page_request: PageRequest, violations: ViolationCollector
) -> None:
    """Add every violation of a ListInvoices request (filter, page size, page, token) at once."""
    query.check(violations)
    resolve_size(page_request.page_size, "page_size", violations, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    if page_request.page < 0:
        violations.add("page", "must be 1 or more (or unset for keyset pages)")
    if page_request.page and page_request.page_token:
        violations.add("page", "cannot be combined with page_token")
    elif page_request.page_token:
        try:
            _decode_cursor(page_request.page_token, query, sort)
        except InvalidArgument as error:
            violations.violations.extend(error.violations)


def invoice_filter_clauses(tenant_id: uuid.UUID, query: InvoiceQuery) -> list[ColumnElement[bool]]:
    """WHERE conditions on m.Invoice (no joins needed) for the tenant's invoices matching `query`."""
    clauses: list[ColumnElement[bool]] = [m.Invoice.tenant_id == tenant_id]
    if query.billing_types:
        clauses.append(m.Invoice.billing_type.in_([str(t) for t in query.billing_types]))
    if query.statuses:
        clauses.append(m.Invoice.status.in_([str(s) for s in query.statuses]))
    if query.customer_refs:
        clauses.append(m.Invoice.customer_id.in_(query.customer_refs))
    if query.contract_refs:
        clauses.append(m.Invoice.contract_id.in_(query.contract_refs))
    if query.issuer_company_id is not None:
        clauses.append(m.Invoice.issuer_company_id.in_(_company_ids(tenant_id, query.issuer_company_id)))
    if query.receiver_company_id is not None:
        clauses.append(m.Invoice.receiver_company_id.in_(_company_ids(tenant_id, query.receiver_company_id)))
    if query.data_source_id is not None:
        clauses.append(m.Invoice.data_source_id == query.data_source_id)
    if query.currency is not None:
        clauses.append(m.Invoice.currency == query.currency)
    if query.date_field is DateField.CREATED_AT:
        # created_at is a timestamp: a date range is [start 00:00 UTC, day after end 00:00 UTC).
        if query.start_date is not None:
            clauses.append(m.Invoice.created_at >= _utc_midnight(query.start_date))
        if query.end_date is not None:
            clauses.append(m.Invoice.created_at < _utc_midnight(query.end_date + timedelta(days=1)))
    else:
        if query.start_date is not None:
            clauses.append(m.Invoice.issue_date >= query.start_date)
        if query.end_date is not None:
            clauses.append(m.Invoice.issue_date <= query.end_date)
    return clauses


def sort_column(invoice: Any, sort: InvoiceSort) -> Any:
    """The sort's column of `invoice` (the model, an alias, or a subquery's columns by name)."""
    return getattr(invoice, _SORT_COLUMNS[sort.field].key)


def order_by(invoice: Any, sort: InvoiceSort) -> tuple[Any, Any]:
    """ORDER BY of `invoice` in the sort's order, ties broken by id the same way."""
    column = sort_column(invoice, sort)
    if sort.is_ascending:
        return column.asc(), invoice.id.asc()
    return column.desc(), invoice.id.desc()


def ordered_invoice_select(
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    *,
    with_links: bool = False,
    hashed_link_probe: bool = False,
    with_own_wire: bool = False,
) -> Select[Any]:
    """`invoice_record_select()` of the matching invoices in the requested order (ties by id)."""
    return (
        invoice_record_select(with_links=with_links, hashed_link_probe=hashed_link_probe, with_own_wire=with_own_wire)
        .where(*invoice_filter_clauses(tenant_id, query))
        .order_by(*order_by(m.Invoice, sort))
    )


@dataclass(frozen=True, slots=True)
class _PageShape:
    """Everything that changes the page statement's text (values are bound parameters)."""

    filters: tuple[str, ...]  # names of the InvoiceQuery fields that are set
    date_field: DateField
    sort: InvoiceSort
    numbered: bool  # OFFSET (numbered pages) rather than a keyset cursor
    after_cursor: bool
    with_links: bool
    # For each set list filter, its number of values when bound one parameter per value (up to
    # _INLINE_LIST_MAX), else 0 (one expanding parameter, which SQLAlchemy renders into the
    # statement's text on every execution: about 1 ms of a page's CPU).
    list_lengths: tuple[tuple[str, int], ...] = ()
    limit: int = DEFAULT_PAGE_SIZE + 1
    # Rows of `invoice_parts_select` then the sort value and id, rather than InvoiceRecord rows.
    parts: bool = False


_LIST_FILTERS = ("billing_types", "statuses", "customer_refs", "contract_refs")
_INLINE_LIST_MAX = 8


def _list_lengths(values: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The shape's `list_lengths`; a list of up to _INLINE_LIST_MAX values is moved from
    `values[name]` to one entry per value (`name_0`, `name_1`, ...)."""
    lengths: list[tuple[str, int]] = []
    for name in _LIST_FILTERS:
        items = values.get(name)
        if items is None:
            continue
        if len(items) > _INLINE_LIST_MAX:
            lengths.append((name, 0))
            continue
        lengths.append((name, len(items)))
        del values[name]
        for index, item in enumerate(items):
            values[f"{name}_{index}"] = item
    return tuple(lengths)


def _page_parameters(
    tenant_id: uuid.UUID, query: InvoiceQuery, *, offset: int, cursor: _Cursor | None
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(the set filters' names, every bound value) of a page request."""
    values: dict[str, Any] = {"tenant_id": tenant_id, "offset": offset}
    for name in _LIST_FILTERS:
        items = getattr(query, name)
        if items:
            values[name] = [str(i) if isinstance(i, str) else i for i in items]
    for name in ("issuer_company_id", "receiver_company_id", "data_source_id", "currency"):
        if getattr(query, name) is not None:
            values[name] = getattr(query, name)
    if query.date_field is DateField.CREATED_AT:
        if query.start_date is not None:
            values["start_date"] = _utc_midnight(query.start_date)
        if query.end_date is not None:
            values["end_date"] = _utc_midnight(query.end_date + timedelta(days=1))
    else:
        if query.start_date is not None:
            values["start_date"] = query.start_date
        if query.end_date is not None:
            values["end_date"] = query.end_date
    if cursor is not None:
        values["cursor_value"] = cursor.sort_value
        values["cursor_id"] = cursor.last_id
    filters = tuple(name for name in values if name not in ("tenant_id", "offset", "cursor_value", "cursor_id"))
    return filters, values


@functools.lru_cache(maxsize=256)
def _page_statement(shape: _PageShape) -> Select[Any]:
    """A page as one statement: the page's invoices are cut in a subquery first and only those
    rows are joined to their parents. (Planned flat, the seven-table join costs PostgreSQL
    more time to plan than the page takes to run.) Built once per shape: building a statement
    of this size costs more than running it."""
    invoice = m.Invoice
    clauses = _shape_filter_clauses(shape)
    if shape.after_cursor:
        column = _SORT_COLUMNS[shape.sort.field]
        value = bindparam("cursor_value", type_=column.type)
        last_id = bindparam("cursor_id", type_=invoice.id.type)
        if shape.sort.is_ascending:
            clauses.append(or_(column > value, and_(column == value, invoice.id > last_id)))
        else:
            clauses.append(or_(column < value, and_(column == value, invoice.id < last_id)))
    # The LIMIT is written into the statement, not bound: with a bound LIMIT a generic plan's cost
    # is estimated for an unknown number of rows, so PostgreSQL planned every page anew (~1.7 ms
    # of a keyset page's ~3 ms on the bench database); with it written, the prepared statement
    # gets a generic plan from its sixth run on.
    limit: ColumnElement[int] = literal_column(str(shape.limit), Integer)
    page = select(invoice).where(*clauses).order_by(*order_by(invoice, shape.sort)).limit(limit)
    if shape.numbered:
        page = page.offset(bindparam("offset"))
    paged = aliased(m.Invoice, page.subquery("page"))
    if shape.parts:
        parts = invoice_parts_select(paged).add_columns(sort_column(paged, shape.sort), paged.id)
        return parts.order_by(*order_by(paged, shape.sort))
    return invoice_record_select(paged, with_links=shape.with_links).order_by(*order_by(paged, shape.sort))


@functools.lru_cache(maxsize=256)
def _count_statement(shape: _PageShape) -> Select[Any]:
    """The number of invoices a numbered page's filter matches, with the page's parameters."""
    return select(func.count()).select_from(m.Invoice).where(*_shape_filter_clauses(shape))


def _shape_filter_clauses(shape: _PageShape) -> list[ColumnElement[bool]]:
    """`invoice_filter_clauses` with bound parameters (named as `_page_parameters` names them)."""
    invoice = m.Invoice
    clauses: list[ColumnElement[bool]] = [invoice.tenant_id == bindparam("tenant_id")]
    in_lists = {
        "billing_types": invoice.billing_type,
        "statuses": invoice.status,
        "customer_refs": invoice.customer_id,
        "contract_refs": invoice.contract_id,
    }
    for name, length in shape.list_lengths:
        column = in_lists[name]
        if length:
            clauses.append(column.in_([bindparam(f"{name}_{index}", type_=column.type) for index in range(length)]))
        else:
            clauses.append(column.in_(bindparam(name, expanding=True)))
    for name, column in (
        ("issuer_company_id", invoice.issuer_company_id),
        ("receiver_company_id", invoice.receiver_company_id),
    ):
        if name in shape.filters:
            companies = select(m.Company.id).where(
                m.Company.tenant_id == bindparam("tenant_id"), m.Company.external_id == bindparam(name)
            )
            clauses.append(column.in_(companies))
    if "data_source_id" in shape.filters:
        clauses.append(invoice.data_source_id == bindparam("data_source_id"))
    if "currency" in shape.filters:
        clauses.append(invoice.currency == bindparam("currency"))
    if shape.date_field is DateField.CREATED_AT:
        if "start_date" in shape.filters:
            clauses.append(invoice.created_at >= bindparam("start_date", type_=invoice.created_at.type))
        if "end_date" in shape.filters:
            clauses.append(invoice.created_at < bindparam("end_date", type_=invoice.created_at.type))
    else:
        if "start_date" in shape.filters:
            clauses.append(invoice.issue_date >= bindparam("start_date", type_=invoice.issue_date.type))
        if "end_date" in shape.filters:
            clauses.append(invoice.issue_date <= bindparam("end_date", type_=invoice.issue_date.type))
    return clauses


def _page_shape(
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    *,
    limit: int,
    offset: int = 0,
    cursor: _Cursor | None = None,
    with_links: bool,
    parts: bool,
) -> tuple[_PageShape, dict[str, Any]]:
    """(the page's shape, the values its statements bind)."""
    filters, values = _page_parameters(tenant_id, query, offset=offset, cursor=cursor)
    list_lengths = _list_lengths(values)
    shape = _PageShape(
        filters, query.date_field, sort, bool(offset), cursor is not None, with_links, list_lengths, limit, parts
    )
    return shape, values


async def _read_page(
    connection: AsyncConnection | DriverConnection, shape: _PageShape, values: dict[str, Any]
) -> list[Any]:
    # Parts rows in binary: the stored bytes arrive as they are rather than as hex text.
    return list(await fetch_all(connection, _page_statement(shape), values, binary=shape.parts))


async def _page_rows(
    connection: AsyncConnection | DriverConnection,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    page_request: PageRequest,
    *,
    parts: bool,
) -> tuple[list[Any], bool, PageInfo | None]:
    """(the page's rows, whether a keyset page has a next one, a numbered page's info); the rows
    of `invoice_record_select` or, with `parts`, of `invoice_parts_select` then sort value and id.
    InvalidArgument if the request breaks a rule of `check_list_request`."""
    violations = ViolationCollector()
    check_list_request(query, sort, page_request, violations)
    violations.raise_if_any()
    page_size = page_request.page_size or DEFAULT_PAGE_SIZE
    links = connection.dialect.name == "postgresql"

    if page_request.page:
        offset = (page_request.page - 1) * page_size
        shape, values = _page_shape(
            tenant_id, query, sort, limit=page_size, offset=offset, with_links=links, parts=parts
        )
        total = int((await fetch_all(connection, _count_statement(shape), values))[0][0])
        rows = await _read_page(connection, shape, values)
        info = PageInfo(
            current_page=page_request.page,
            per_page=page_size,
            total=total,
            last_page=max(1, math.ceil(total / page_size)),
        )
        return rows, False, info

    cursor = _decode_cursor(page_request.page_token, query, sort) if page_request.page_token else None
    # One row more than asked says whether another page exists, without a COUNT.
    shape, values = _page_shape(
        tenant_id, query, sort, limit=page_size + 1, cursor=cursor, with_links=links, parts=parts
    )
    rows = await _read_page(connection, shape, values)
    return rows[:page_size], len(rows) > page_size, None


async def list_invoices(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    page_request: PageRequest,
    *,
    with_line_items: bool = False,
) -> InvoicePage:
    """One page of the tenant's matching invoices (see the module docstring for the two modes).
    InvalidArgument if the request breaks a rule of `check_list_request`."""
    connection = await core_connection(session)
    rows, has_more, info = await _page_rows(connection, tenant_id, query, sort, page_request, parts=False)
    records = await attach_children(
        session,
        [record_from_row(r) for r in rows],
        with_line_items=with_line_items,
        links_loaded=links_in_select(session),
    )
    next_token = ""
    if has_more:
        last = records[-1]
        next_token = _encode_cursor(getattr(last, _SORT_COLUMNS[sort.field].key), last.id, query, sort)
    return InvoicePage(invoices=records, next_page_token=next_token, page_info=info)


@dataclass(frozen=True, slots=True)
class InvoicePartsPage:
    invoices: list[InvoicePartsRow]
    next_page_token: str  # as InvoicePage's
    page_info: PageInfo | None


async def list_invoice_parts(
    connection: DriverConnection,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    page_request: PageRequest,
) -> InvoicePartsPage:
    """`list_invoices`' page without line items, each invoice as an InvoicePartsRow: the same
    invoices, order and page tokens. PostgreSQL only (the stored `own_wire`); a driver
    connection is all it needs (Database.read_driver)."""
    rows, has_more, info = await _page_rows(connection, tenant_id, query, sort, page_request, parts=True)
    next_token = _encode_cursor(rows[-1][-2], rows[-1][-1], query, sort) if has_more else ""
    return InvoicePartsPage([InvoicePartsRow(*row[:-2]) for row in rows], next_token, info)


async def stream_invoice_batches(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_line_items: bool = False,
) -> AsyncGenerator[list[InvoiceRecord], None]:
    """Every matching invoice, in order, as lists of at most `batch_size` records.

    Memory stays constant whatever the number of invoices: rows come from a server-side cursor
    on PostgreSQL (`yield_per`), as Core rows, and children are loaded per batch. The cursor is
    closed when the iteration ends, fails or is closed early by the consumer."""
    links = links_in_select(session)
    stmt = ordered_invoice_select(tenant_id, query, sort, with_links=links, hashed_link_probe=True).execution_options(
        yield_per=batch_size
    )
    result = await (await core_connection(session)).stream(stmt)
    try:
        async for rows in result.partitions():
            records = [record_from_row(r) for r in rows]
            yield await attach_children(session, records, with_line_items=with_line_items, links_loaded=links)
    finally:
        await result.close()


def _company_ids(tenant_id: uuid.UUID, external_id: str) -> Select[Any]:
    return select(m.Company.id).where(m.Company.tenant_id == tenant_id, m.Company.external_id == external_id)


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _after_cursor(sort: InvoiceSort, cursor: _Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor in sort order, written as OR/AND so that it reads the same
    on every database (no row-value comparison)."""
    column = _SORT_COLUMNS[sort.field]
    if sort.is_ascending:
        return or_(column > cursor.sort_value, and_(column == cursor.sort_value, m.Invoice.id > cursor.last_id))
    return or_(column < cursor.sort_value, and_(column == cursor.sort_value, m.Invoice.id < cursor.last_id))


def _sort_value_to_json(field: SortField, value: Any) -> Any:
    if field is SortField.CREATED_AT:
        return value.astimezone(UTC).isoformat()
    if field is SortField.ISSUE_DATE:
        return value.isoformat()
    if field is SortField.BILLING_TYPE:
        return str(value)
    return value


def _sort_value_from_json(field: SortField, value: Any) -> Any:
    """The typed sort value of a token; ValueError/TypeError if it is not of the field's type."""
    if field is SortField.CREATED_AT:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed
    if field is SortField.ISSUE_DATE:
        return date.fromisoformat(value)
    if field is SortField.TOTAL_AMOUNT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("not an integer")
        return value
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _encode_cursor(sort_value: Any, last_id: uuid.UUID, query: InvoiceQuery, sort: InvoiceSort) -> str:
    """The token of the page after the row with `sort_value` and `last_id`."""
    return encode_page_token(
        {
            "sort": str(sort.field),
            "dir": str(sort.direction),
            "value": _sort_value_to_json(sort.field, sort_value),
            "id": str(last_id),
            "filter": query.fingerprint(),
        }
    )


def _decode_cursor(token: str, query: InvoiceQuery, sort: InvoiceSort) -> _Cursor:
    payload = decode_page_token(token)
    if (
        payload.get("sort") != str(sort.field)
        or payload.get("dir") != str(sort.direction)
        or payload.get("filter") != query.fingerprint()
    ):
        raise InvalidArgument.single("page_token", "was issued for another filter or sort order")
    try:
        return _Cursor(
            sort_value=_sort_value_from_json(sort.field, payload.get("value")),
            last_id=uuid.UUID(str(payload.get("id"))),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.single("page_token", "is not a page token this service issued") from exc
