"""Compaction of the summary's rollups (`invoice_day_totals`, `invoice_month_totals`).

The invoice triggers only ever append a group's differences as new rows (migration 0005), so
that writers never wait for each other there; a group's totals are the sum of its rows. Left
alone, a busy group would gather a row per write and every summary would add them up again.
Compaction folds, per table, the rows of each group that has more than one (or a single row of
zeros) into one row holding their sums, and deletes the rows it folded; a group that sums to
zeros (its invoices are all gone) is deleted without a replacement. Groups already down to one
row are left untouched, so compacting a quiet database writes nothing.

Summaries read the same totals before and after, and concurrent writers neither wait nor lose
anything:

- PostgreSQL: one statement per table, `WITH moved AS (DELETE … RETURNING …) INSERT … SELECT
  … FROM moved GROUP BY …`. The statement sees one snapshot: a delta that a concurrent writer
  committed before it is deleted and folded, one committed after it (or still uncommitted) is
  invisible to it and left alone, to be folded next time. Only the rows actually deleted are
  summed, so rows another compaction deleted first are not counted twice.
- SQLite: writers are serialized, so the same fold is an INSERT … SELECT of the rows up to the
  highest id followed by a DELETE of them, in the caller's write transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from invoice_rpc.storage import models as m

# Rollup table -> its date column.
ROLLUPS = {
    m.InvoiceDayTotal.__tablename__: "issue_date",
    m.InvoiceMonthTotal.__tablename__: "issue_month",
}
AMOUNTS = ("invoice_count", "total_minor", "tax_minor", "paid_minor", "remaining_minor")
_SUMS = ", ".join(f"sum({name})" for name in AMOUNTS)
_NOT_ALL_ZERO = " OR ".join(f"sum({name}) <> 0" for name in AMOUNTS)


@dataclass(frozen=True, slots=True)
class RollupCompaction:
    """What compacting one rollup table did."""

    table: str
    folded_rows: int  # rows deleted: those of every group that had more than one, or only zeros
    written_rows: int  # rows written in their place: one per such group whose sums are not all zero


async def compact_rollups(session: AsyncSession) -> list[RollupCompaction]:
    """Fold each rollup table's groups into one row each, in the caller's write transaction
    (which should commit promptly: on PostgreSQL the folded rows stay locked until then, which
    only a tenant's deletion or another compaction could wait for; no invoice writer touches
    them). Summaries read the same totals before and after; rows written by concurrent
    transactions are never lost, only possibly left for the next compaction."""
    connection = await session.connection()
    postgresql = connection.dialect.name == "postgresql"
    compactions = []
    for table, date_column in ROLLUPS.items():
        keys = ", ".join(("tenant_id", date_column, "billing_type", "status", "currency"))
        columns = f"{keys}, {', '.join(AMOUNTS)}"
        if postgresql:
            folded, written = await _compact_postgresql(connection, table, keys, columns)
        else:
            folded, written = await _compact_sqlite(connection, table, keys, columns)
        compactions.append(RollupCompaction(table=table, folded_rows=folded, written_rows=written))
    return compactions


def _groups_to_fold(table: str, keys: str, where: str = "true") -> str:
    """The keys of the groups with more than one row, or one row of zeros (left by revision 0002)."""
    return f"SELECT {keys} FROM {table} WHERE {where} GROUP BY {keys} HAVING count(*) > 1 OR NOT ({_NOT_ALL_ZERO})"


async def _compact_postgresql(connection: AsyncConnection, table: str, keys: str, columns: str) -> tuple[int, int]:
    # One statement, one snapshot: `moved` holds exactly the rows this statement deleted (a row
    # a concurrent compaction deleted first is skipped once that one commits), and only those
    # are summed. Rows the snapshot does not see are neither deleted nor summed.
    statement = text(
        f"WITH moved AS ("
        f"DELETE FROM {table} WHERE ({keys}) IN ({_groups_to_fold(table, keys)}) RETURNING {columns}"
        f"), written AS ("
        f"INSERT INTO {table} ({columns}) SELECT {keys}, {_SUMS} FROM moved "
        f"GROUP BY {keys} HAVING {_NOT_ALL_ZERO} RETURNING id"
        f") SELECT (SELECT count(*) FROM moved) AS folded, (SELECT count(*) FROM written) AS written"
    )
    row = (await connection.execute(statement)).one()
    return int(row.folded), int(row.written)


async def _compact_sqlite(connection: AsyncConnection, table: str, keys: str, columns: str) -> tuple[int, int]:
    # The write transaction holds SQLite's one write lock: no row appears between the statements.
    # The highest id tells the rows to fold from the folded rows written in their place.
    last_id = await connection.scalar(text(f"SELECT max(id) FROM {table}"))
    if last_id is None:
        return 0, 0
    old = f"id <= {int(last_id)}"
    folding = f"{old} AND ({keys}) IN ({_groups_to_fold(table, keys, old)})"
    written = await connection.execute(
        text(
            f"INSERT INTO {table} ({columns}) SELECT {keys}, {_SUMS} FROM {table} WHERE {folding} "
            f"GROUP BY {keys} HAVING {_NOT_ALL_ZERO}"
        )
    )
    folded = await connection.execute(text(f"DELETE FROM {table} WHERE {folding}"))
    return folded.rowcount, written.rowcount
