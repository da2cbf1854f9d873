"""A long projected stream (StreamInvoices' wire bytes) read by several PostgreSQL backends at once.

One backend writes invoices' wire bytes at some 80,000-100,000 a second (rpc/invoice_wire.py:
stored own fields, parents joined and encoded, linked ids), so one cursor caps a stream however
many cores the database has. Here the leader connection scans the sort keys of the matching
invoices (an index-only scan) and PostgreSQL sends back only every `range_rows`-th key and the
last: the ends of the ranges. Helper connections each read one whole range with the projection
(prepared once, in binary), `helpers` ranges ahead of the one being sent, and the ranges are
sent in order. Every connection reads the leader's snapshot (storage/shared_snapshot.py), so the
stream is exactly what one cursor in one transaction would give; each range's row count is
checked against its boundaries. Memory: at most `helpers + 1` ranges of projected values at
once (~11 MB each for the wire bytes of 30,000 invoices).

On the 1M-invoice bench database (2 cores), StreamInvoices end to end: 25,000 invoices/s on one
cursor; 48,000 on two helpers reading ranges of 10,000 before the own fields were stored;
89,000 after; 122,000 with ranges of 30,000 (106,000 with 20,000).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from invoice_rpc.service.invoice_queries import (
    DEFAULT_BATCH_SIZE,
    InvoiceQuery,
    InvoiceRowColumns,
    InvoiceSort,
    invoice_filter_clauses,
    order_by,
    ordered_invoice_select,
    sort_column,
)
from invoice_rpc.storage import models as m
from invoice_rpc.storage.driver_rows import fetch_all
from invoice_rpc.storage.shared_snapshot import SharedSnapshot

ProjectedT = TypeVar("ProjectedT")

# Two backends use the bench machine's two cores. A range of 30,000 invoices is ~11 MB of wire
# bytes and takes a backend ~0.3 s; each range statement hashes the link tables' invoice ids
# (~15 ms for the bench's 100,000 payment-means links) and the first range is sent only once it
# is whole, so shorter ranges cost throughput (10,000: 89,000 invoices/s against 122,000) and
# longer ones memory.
STREAM_HELPERS = 2
RANGE_ROWS = 30_000

# Set in each helper transaction. The projection is a wide expression evaluated per row: JIT
# would spend seconds compiling it to save far less. Planning a range costs ~10-15 ms (the
# linked fields' inlined helpers; it was ~60 ms before the own fields were stored), so each
# helper prepares the statement once and keeps one generic plan (an index scan bounded by both
# keys). The ranges are this
# module's parallelism: parallel workers inside a range would only compete with the other helper
# for the same cores.
HELPER_SETTINGS = (
    "SET LOCAL jit = off",
    "SET LOCAL plan_cache_mode = force_generic_plan",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)


def _boundaries_select(tenant_id: uuid.UUID, query: InvoiceQuery, sort: InvoiceSort) -> Select[Any]:
    """The key (sort value, id) and position (from 1) of every `range_rows`-th matching invoice
    and of the last one: the ends of the ranges. PostgreSQL numbers the keys as it scans them in
    order and sends only the ends, one row in `range_rows` (Python decoding every key cost the
    server a tenth of a core). The rows come in scan order; the caller checks that positions rise."""
    invoice = m.Invoice
    in_order = order_by(invoice, sort)
    numbered = (
        select(
            sort_column(invoice, sort).label("sort_value"),
            invoice.id,
            func.row_number().over(order_by=in_order).label("position"),
            func.lead(invoice.id).over(order_by=in_order).label("next_id"),
        )
        .where(*invoice_filter_clauses(tenant_id, query))
        .subquery("numbered")
    )
    return select(numbered.c.sort_value, numbered.c.id, numbered.c.position).where(
        or_(numbered.c.position % bindparam("range_rows") == 0, numbered.c.next_id.is_(None))
    )


def _range_select(
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    projection: Callable[[InvoiceRowColumns], ColumnElement[ProjectedT]],
    *,
    first: bool,
) -> Select[Any]:
    """The projection of the invoices after the key (`after_value`, `after_id`) (unless `first`)
    up to and including (`last_value`, `last_id`), in sort order. A row comparison, so that
    PostgreSQL bounds its index scan by both keys."""
    column = sort_column(m.Invoice, sort)
    key = tuple_(column, m.Invoice.id)

    def bound(name: str) -> Any:
        return tuple_(bindparam(f"{name}_value", type_=column.type), bindparam(f"{name}_id", type_=m.Invoice.id.type))

    ascending = sort.is_ascending
    rows = ordered_invoice_select(
        tenant_id, query, sort, with_links=True, hashed_link_probe=True, with_own_wire=True
    ).where(key <= bound("last") if ascending else key >= bound("last"))
    if not first:
        rows = rows.where(key > bound("after") if ascending else key < bound("after"))
    subquery = rows.subquery("invoice_rows")
    return select(projection(subquery.c)).select_from(subquery).order_by(*order_by(subquery.c, sort))


async def stream_projected_ranges(
    snapshot: SharedSnapshot,
    tenant_id: uuid.UUID,
    query: InvoiceQuery,
    sort: InvoiceSort,
    projection: Callable[[InvoiceRowColumns], ColumnElement[ProjectedT]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    helpers: int = STREAM_HELPERS,
    range_rows: int = RANGE_ROWS,
) -> AsyncGenerator[list[ProjectedT], None]:
    """Every matching invoice's projected value, in order, as lists of at most `batch_size`
    (PostgreSQL only): `projection` gets the columns of the invoice's InvoiceRecord row (named as
    the record's fields, with the linked ids as arrays and `own_wire`) and returns the one column
    to select.
    Helper queries still running when the iteration ends early or fails are cancelled."""
    range_rows = batch_size * max(1, range_rows // batch_size)  # whole batches per range
    statements = {first: _range_select(tenant_id, query, sort, projection, first=first) for first in (True, False)}
    idle: list[AsyncConnection] = []
    busy: set[AsyncConnection] = set()  # running a statement: discarded if interrupted

    async def read_range(after: tuple[Any, Any] | None, last: tuple[Any, Any], expected: int) -> list[ProjectedT]:
        if idle:
            connection = idle.pop()
            busy.add(connection)
        else:
            connection = await snapshot.helper()
            busy.add(connection)
            for setting in HELPER_SETTINGS:
                await connection.execute(text(setting))
        values: dict[str, Any] = {"last_value": last[0], "last_id": last[1]}
        if after is not None:
            values |= {"after_value": after[0], "after_id": after[1]}
        rows = [
            row[0] for row in await fetch_all(connection, statements[after is None], values, prepare=True, binary=True)
        ]
        busy.discard(connection)
        idle.append(connection)
        if len(rows) != expected:
            raise RuntimeError(f"a range of {expected} invoices read {len(rows)}: the snapshot was not shared")
        return rows

    await snapshot.leader.execute(text("SET LOCAL jit = off"))
    boundaries = await snapshot.leader.stream(
        _boundaries_select(tenant_id, query, sort).execution_options(yield_per=helpers + 1),
        {"range_rows": range_rows},
    )
    pending: deque[asyncio.Task[list[ProjectedT]]] = deque()
    try:
        after: tuple[Any, Any] | None = None
        position = 0
        while True:
            while len(pending) < helpers and (end := await anext(boundaries, None)) is not None:
                if end.position <= position:
                    raise RuntimeError("range boundaries came out of order")
                last = (end.sort_value, end.id)
                pending.append(asyncio.create_task(read_range(after, last, end.position - position)))
                after, position = last, end.position
            if not pending:
                return
            values = await pending.popleft()
            for start in range(0, len(values), batch_size):
                yield values[start : start + batch_size]
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for connection in list(busy):
            await snapshot.discard(connection)
        await boundaries.close()
