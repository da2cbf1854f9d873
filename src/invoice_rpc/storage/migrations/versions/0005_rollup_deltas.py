"""invoice_day_totals and invoice_month_totals: append-only deltas, folded by compaction

Revision ID: 0005
Revises: 0004

Revision 0002's triggers UPSERT one row per group, so every writer that touches a group holds
that row's lock until it commits: concurrent payments, imports and creates in one tenant's month
queue behind each other, and transactions that touch several groups across statements can
deadlock. From this revision on the triggers only INSERT the grouped differences as new rows
(no ON CONFLICT, no UPDATE, and no unique index to check): writers of invoices never wait for
each other on the rollups, so the rollups take no part in deadlocks between them. A group's
totals are the sum of its rows; readers sum them, and compaction
(invoice_rpc.service.rollup_compaction) periodically folds each group's rows into one.

- Both tables lose their primary key on the group key and get a surrogate `id` (a bigint
  identity on PostgreSQL; INTEGER PRIMARY KEY, the rowid, on SQLite) plus a non-unique index on
  (tenant_id, issue_date) and (tenant_id, issue_month): the reader's tenant and date-range
  filter, and the tenant cascade. Their rows are kept: they become the first folded rows.
- PostgreSQL alters both tables in place. SQLite cannot change a primary key, so it rebuilds
  these two tables (they carry no triggers of their own); `invoices` is never rebuilt, which
  would drop its triggers.
- PostgreSQL: still one statement-level trigger per event; a COPY of a thousand invoices adds
  one row per group it touches. SQLite: row-level triggers adding one row per group an invoice
  leaves or enters. Groups whose differences cancel out (an update of amounts that add up to the
  same totals, a move within one month) are still not written.

The downgrade folds the rows back into one per group (dropping groups that are all zeros, which
readers skip anyway), restores the group-key primary key and 0002's upsert triggers, built by
0002's own code so they are exactly what that revision made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rollup table -> (its date column, that column from an invoice's issue_date on PostgreSQL,
# the same on SQLite with {row} for NEW or OLD). As in 0002.
ROLLUPS = {
    "invoice_day_totals": ("issue_date", "issue_date", "{row}.issue_date"),
    "invoice_month_totals": (
        "issue_month",
        "date_trunc('month', issue_date::timestamp)::date",  # a timestamp without zone: no TimeZone involved
        "date({row}.issue_date, 'start of month')",
    ),
}
# Rollup column <- the invoices column it sums (invoice_count counts rows).
SUMS = (
    ("total_minor", "total_minor"),
    ("tax_minor", "total_tax_minor"),
    ("paid_minor", "amount_paid_minor"),
    ("remaining_minor", "amount_remaining_minor"),
)
AMOUNTS = ("invoice_count", *(rollup for rollup, _ in SUMS))
EVENTS = ("insert", "update", "delete")
# A group is written only if some of its sums is not zero.
NOT_ALL_ZERO = "(" + " OR ".join(f"sum({name}) <> 0" for name in AMOUNTS) + ")"


def _keys(date_column: str) -> tuple[str, ...]:
    return ("tenant_id", date_column, "billing_type", "status", "currency")


def _column_list(date_column: str) -> str:
    return ", ".join((*_keys(date_column), *AMOUNTS))


def _group_columns(date_column: str) -> list[sa.Column[Any]]:
    """The columns every layout of a rollup has: the group key and the sums."""
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(date_column, sa.Date(), nullable=False),
        sa.Column("billing_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in AMOUNTS),
    ]


def _index_name(table: str, date_column: str) -> str:
    return f"ix_{table}_tenant_{date_column}"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # Writers of invoices wait (readers do not) until the new triggers are in place, so none
        # fires an upsert against a table that no longer has its conflict target.
        op.execute("LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE")
    _drop_triggers(postgresql)
    for table, (date_column, _, _) in ROLLUPS.items():
        if postgresql:
            op.drop_constraint(op.f(f"pk_{table}"), table, type_="primary")
            op.add_column(table, sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False))
            op.create_primary_key(op.f(f"pk_{table}"), table, ["id"])
        else:
            _rebuild_sqlite_table(
                table,
                date_column,
                [sa.Column("id", sa.Integer(), nullable=False), *_group_columns(date_column)],
                ["id"],
                f"SELECT {_column_list(date_column)} FROM {table} ORDER BY {', '.join(_keys(date_column))}",
            )
        op.create_index(op.f(_index_name(table, date_column)), table, ["tenant_id", date_column], unique=False)
    for statement in _postgresql_triggers() if postgresql else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # As in the upgrade; and compaction (which writes only the rollups) waits for the tables.
        op.execute("LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE")
        op.execute(f"LOCK TABLE {', '.join(ROLLUPS)} IN ACCESS EXCLUSIVE MODE")
    _drop_triggers(postgresql)
    for table, (date_column, _, _) in ROLLUPS.items():
        op.drop_index(op.f(_index_name(table, date_column)), table_name=table)
        keys = ", ".join(_keys(date_column))
        folded = (
            f"SELECT {keys}, {', '.join(f'sum({amount})' for amount in AMOUNTS)} FROM {table} "
            f"GROUP BY {keys} HAVING {NOT_ALL_ZERO}"
        )
        if postgresql:
            # The folded rows get new ids above the highest old one, which then go.
            last_id = op.get_bind().execute(sa.text(f"SELECT max(id) FROM {table}")).scalar()
            if last_id is not None:
                op.execute(f"INSERT INTO {table} ({_column_list(date_column)}) {folded}")
                op.execute(f"DELETE FROM {table} WHERE id <= {int(last_id)}")
            op.drop_constraint(op.f(f"pk_{table}"), table, type_="primary")
            op.drop_column(table, "id")
            op.create_primary_key(op.f(f"pk_{table}"), table, list(_keys(date_column)))
        else:
            _rebuild_sqlite_table(table, date_column, _group_columns(date_column), list(_keys(date_column)), folded)
    revision_0002 = _revision_0002()
    triggers: list[str] = revision_0002._postgresql_triggers() if postgresql else revision_0002._sqlite_triggers()
    for statement in triggers:
        op.execute(statement)


def _revision_0002() -> ModuleType:
    """Revision 0002's module (its file name is no importable module name)."""
    path = Path(__file__).with_name("0002_invoice_day_totals.py")
    spec = importlib.util.spec_from_file_location("invoice_rpc_revision_0002", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drop_triggers(postgresql: bool) -> None:
    """Drop the rollup triggers of either layout (same names in both)."""
    if postgresql:
        for event in (*EVENTS, "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS invoice_rollups_on_{event} ON invoices")
            op.execute(f"DROP FUNCTION IF EXISTS invoice_rollups_on_{event}()")
    else:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS invoice_rollups_on_{event}")


def _rebuild_sqlite_table(
    table: str, date_column: str, columns: list[sa.Column[Any]], primary_key: list[str], rows: str
) -> None:
    """Replace `table` by a new one with `columns` and `primary_key`, filled with `rows` (a SELECT
    of the group key and sums). Only for the rollups: no trigger lives on them, and none on
    `invoices` may refer to them meanwhile (SQLite rewrites such references on RENAME)."""
    building = f"{table}_rebuild"
    op.create_table(
        building,
        *columns,
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(*primary_key, name=op.f(f"pk_{table}")),
    )
    op.execute(f"INSERT INTO {building} ({_column_list(date_column)}) {rows}")
    op.drop_table(table)
    op.rename_table(building, table)


def _signed_rows(table: str, sign: str) -> str:
    """Each invoice of `table` as a difference to add: its values (sign "") or their negation ("-")."""
    values = ", ".join(f"{sign}{source} AS {rollup}" for rollup, source in SUMS)
    keys = "tenant_id, issue_date, billing_type, status, currency"
    return f"SELECT {keys}, {sign}1 AS invoice_count, {values} FROM {table}"


def _postgresql_inserts(rows: str, tenant_must_exist: bool) -> str:
    """One INSERT per rollup adding the grouped differences of `rows` as new rows."""
    sums = ", ".join(f"sum({name})" for name in AMOUNTS)
    # Groups whose differences cancel out (an update of other columns, or a move and back) are
    # not written at all.
    having = NOT_ALL_ZERO
    if tenant_must_exist:
        having += " AND EXISTS (SELECT 1 FROM tenants WHERE tenants.id = d.tenant_id)"
    statements = []
    for table, (date_column, pg_date, _) in ROLLUPS.items():
        statements.append(
            f"INSERT INTO {table} ({_column_list(date_column)}) "
            f"SELECT d.tenant_id, {pg_date}, d.billing_type, d.status, d.currency, {sums} FROM ({rows}) AS d "
            f"GROUP BY 1, 2, 3, 4, 5 HAVING {having};"
        )
    return "\n".join(statements)


def _postgresql_triggers() -> list[str]:
    changes = {
        "insert": (_signed_rows("new_invoices", ""), "REFERENCING NEW TABLE AS new_invoices"),
        "update": (
            f"{_signed_rows('new_invoices', '')} UNION ALL {_signed_rows('old_invoices', '-')}",
            "REFERENCING OLD TABLE AS old_invoices NEW TABLE AS new_invoices",
        ),
        # Deleting a tenant cascades to its invoices and to its rollup rows in an order the
        # database chooses: nothing is added for a tenant that is already gone.
        "delete": (_signed_rows("old_invoices", "-"), "REFERENCING OLD TABLE AS old_invoices"),
    }
    statements = []
    for event, (rows, referencing) in changes.items():
        statements += [
            f"CREATE FUNCTION invoice_rollups_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{_postgresql_inserts(rows, tenant_must_exist=event == 'delete')}\nRETURN NULL;\nEND\n$$",
            f"CREATE TRIGGER invoice_rollups_on_{event} AFTER {event.upper()} ON invoices {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION invoice_rollups_on_{event}()",
        ]
    empty = " ".join(f"DELETE FROM {table};" for table in ROLLUPS)
    statements += [
        "CREATE FUNCTION invoice_rollups_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{empty}\nRETURN NULL;\nEND\n$$",
        "CREATE TRIGGER invoice_rollups_on_truncate AFTER TRUNCATE ON invoices "
        "FOR EACH STATEMENT EXECUTE FUNCTION invoice_rollups_on_truncate()",
    ]
    return statements


def _sqlite_row(row: str, sign: str, sqlite_date: str) -> str:
    """One invoice (`row` is NEW or OLD) as a difference to add, negated when `sign` is "-"."""
    keys = (
        f"{row}.tenant_id AS tenant_id",
        f"{sqlite_date.format(row=row)} AS period",
        f"{row}.billing_type AS billing_type",
        f"{row}.status AS status",
        f"{row}.currency AS currency",
    )
    values = (f"{sign}1 AS invoice_count", *(f"{sign}{row}.{source} AS {rollup}" for rollup, source in SUMS))
    return f"SELECT {', '.join((*keys, *values))}"


def _sqlite_inserts(rows: list[tuple[str, str]], condition: str = "true") -> str:
    """One INSERT per rollup adding the grouped differences of `rows` ((NEW or OLD, sign) pairs)."""
    sums = ", ".join(f"sum({name})" for name in AMOUNTS)
    statements = []
    for table, (date_column, _, sqlite_date) in ROLLUPS.items():
        union = " UNION ALL ".join(_sqlite_row(row, sign, sqlite_date) for row, sign in rows)
        statements.append(
            f"INSERT INTO {table} ({_column_list(date_column)}) "
            f"SELECT tenant_id, period, billing_type, status, currency, {sums} FROM ({union}) "
            f"WHERE {condition} GROUP BY 1, 2, 3, 4, 5 HAVING {NOT_ALL_ZERO};"
        )
    return " ".join(statements)


def _sqlite_triggers() -> list[str]:
    watched = ("tenant_id", "issue_date", "billing_type", "status", "currency", *(source for _, source in SUMS))
    changed = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in watched)
    tenant_exists = "EXISTS (SELECT 1 FROM tenants WHERE tenants.id = OLD.tenant_id)"
    return [
        f"CREATE TRIGGER invoice_rollups_on_insert AFTER INSERT ON invoices BEGIN {_sqlite_inserts([('NEW', '')])} END",
        f"CREATE TRIGGER invoice_rollups_on_update AFTER UPDATE OF {', '.join(watched)} ON invoices "
        f"WHEN {changed} BEGIN {_sqlite_inserts([('OLD', '-'), ('NEW', '')])} END",
        f"CREATE TRIGGER invoice_rollups_on_delete AFTER DELETE ON invoices "
        f"BEGIN {_sqlite_inserts([('OLD', '-')], tenant_exists)} END",
    ]
