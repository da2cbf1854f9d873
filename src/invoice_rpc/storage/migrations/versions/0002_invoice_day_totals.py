"""invoice_day_totals and invoice_month_totals: the summary's rollups, kept exact by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000

Per (tenant, issue date, billing type, status, currency), and again per calendar month of the
issue date, the invoice count and the exact sums of total_minor, total_tax_minor,
amount_paid_minor and amount_remaining_minor. Both are filled from the invoices present when
this migration runs and from then on maintained by the database itself, in the writing
transaction, so no write path can forget them:

- PostgreSQL: one statement-level AFTER trigger per event (transition tables cannot be shared
  by several events), adding the statement's grouped differences to each rollup with ONE
  set-based INSERT … ON CONFLICT DO UPDATE. A COPY of a thousand invoices fires its trigger
  once. Groups are written in key order, days before months, so concurrent writers lock rollup
  rows in the same order.
- SQLite: row-level triggers doing the same upserts per row (writers are serialized anyway).

A group whose last invoice goes stays as a row of zeros; readers skip groups with no invoices.
Deleting a tenant cascades to its invoices and to its rollup rows in an order the database
chooses, so the delete trigger adds nothing for a tenant that is already gone (an insert there
would break the foreign key; its rollup rows are being deleted anyway).

Anything that rebuilds `invoices` (SQLite batch mode copies the table) drops these triggers:
later migrations must alter that table in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rollup table -> (its date column, that column from an invoice's issue_date on PostgreSQL,
# the same on SQLite with {row} for NEW, OLD or the table).
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


def _keys(date_column: str) -> tuple[str, ...]:
    return ("tenant_id", date_column, "billing_type", "status", "currency")


def _columns(date_column: str) -> str:
    return ", ".join((*_keys(date_column), *AMOUNTS))


def _on_conflict(table: str, date_column: str) -> str:
    adds = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in AMOUNTS)
    return f"ON CONFLICT ({', '.join(_keys(date_column))}) DO UPDATE SET {adds}"


def upgrade() -> None:
    for table, (date_column, _, _) in ROLLUPS.items():
        op.create_table(table,
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column(date_column, sa.Date(), nullable=False),
        sa.Column('billing_type', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('invoice_count', sa.BigInteger(), nullable=False),
        sa.Column('total_minor', sa.BigInteger(), nullable=False),
        sa.Column('tax_minor', sa.BigInteger(), nullable=False),
        sa.Column('paid_minor', sa.BigInteger(), nullable=False),
        sa.Column('remaining_minor', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f(f'fk_{table}_tenant_id_tenants'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', date_column, 'billing_type', 'status', 'currency', name=op.f(f'pk_{table}'))
        )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # Writers wait (readers do not) from the fill until the triggers exist, so no invoice
        # written in between is missed.
        op.execute("LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE")
    sums = ", ".join(f"sum({source})" for _, source in SUMS)
    for table, (date_column, pg_date, sqlite_date) in ROLLUPS.items():
        issue = pg_date if postgresql else sqlite_date.format(row="invoices")
        op.execute(
            f"INSERT INTO {table} ({_columns(date_column)}) "
            f"SELECT tenant_id, {issue}, billing_type, status, currency, count(*), {sums} FROM invoices "
            f"GROUP BY tenant_id, {issue}, billing_type, status, currency"
        )
    for statement in _postgresql_triggers() if postgresql else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for event in (*EVENTS, "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS invoice_rollups_on_{event} ON invoices")
            op.execute(f"DROP FUNCTION IF EXISTS invoice_rollups_on_{event}()")
    else:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS invoice_rollups_on_{event}")
    for table in reversed(ROLLUPS):
        op.drop_table(table)


def _signed_rows(table: str, sign: str) -> str:
    """Each invoice of `table` as a difference to add: its values (sign "") or their negation ("-")."""
    values = ", ".join(f"{sign}{source} AS {rollup}" for rollup, source in SUMS)
    return f"SELECT tenant_id, issue_date, billing_type, status, currency, {sign}1 AS invoice_count, {values} FROM {table}"


def _postgresql_upserts(rows: str, tenant_must_exist: bool) -> str:
    """One INSERT … ON CONFLICT per rollup adding the grouped differences of `rows`."""
    sums = ", ".join(f"sum({name})" for name in AMOUNTS)
    # Groups whose differences cancel out (an update of other columns, or a move and back) are
    # not written at all: no row lock, no dead tuple.
    having = "(" + " OR ".join(f"sum({name}) <> 0" for name in AMOUNTS) + ")"
    if tenant_must_exist:
        having += " AND EXISTS (SELECT 1 FROM tenants WHERE tenants.id = d.tenant_id)"
    statements = []
    for table, (date_column, pg_date, _) in ROLLUPS.items():
        statements.append(
            f"INSERT INTO {table} ({_columns(date_column)}) "
            f"SELECT d.tenant_id, {pg_date}, d.billing_type, d.status, d.currency, {sums} FROM ({rows}) AS d "
            f"GROUP BY 1, 2, 3, 4, 5 HAVING {having} ORDER BY 1, 2, 3, 4, 5 "
            f"{_on_conflict(table, date_column)};"
        )
    return "\n".join(statements)


def _postgresql_triggers() -> list[str]:
    changes = {
        "insert": (_signed_rows("new_invoices", ""), "REFERENCING NEW TABLE AS new_invoices"),
        "update": (
            f"{_signed_rows('new_invoices', '')} UNION ALL {_signed_rows('old_invoices', '-')}",
            "REFERENCING OLD TABLE AS old_invoices NEW TABLE AS new_invoices",
        ),
        "delete": (_signed_rows("old_invoices", "-"), "REFERENCING OLD TABLE AS old_invoices"),
    }
    statements = []
    for event, (rows, referencing) in changes.items():
        statements += [
            f"CREATE FUNCTION invoice_rollups_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{_postgresql_upserts(rows, tenant_must_exist=event == 'delete')}\nRETURN NULL;\nEND\n$$",
            f"CREATE TRIGGER invoice_rollups_on_{event} AFTER {event.upper()} ON invoices {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION invoice_rollups_on_{event}()",
        ]
    # Nothing truncates invoices today, but if anything ever does, the rollups must follow.
    empty = " ".join(f"DELETE FROM {table};" for table in ROLLUPS)
    statements += [
        "CREATE FUNCTION invoice_rollups_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{empty}\nRETURN NULL;\nEND\n$$",
        "CREATE TRIGGER invoice_rollups_on_truncate AFTER TRUNCATE ON invoices "
        "FOR EACH STATEMENT EXECUTE FUNCTION invoice_rollups_on_truncate()",
    ]
    return statements


def _sqlite_upserts(row: str, sign: str, condition: str = "true") -> str:
    """Add one invoice (`row` is NEW or OLD) to its group of each rollup, negated when `sign` is
    "-". The WHERE is required: without it SQLite's parser cannot tell ON CONFLICT from a join's ON."""
    statements = []
    for table, (date_column, _, sqlite_date) in ROLLUPS.items():
        keys = (f"{row}.tenant_id", sqlite_date.format(row=row), f"{row}.billing_type", f"{row}.status", f"{row}.currency")
        values = ", ".join([*keys, f"{sign}1", *(f"{sign}{row}.{source}" for _, source in SUMS)])
        statements.append(
            f"INSERT INTO {table} ({_columns(date_column)}) SELECT {values} WHERE {condition} "
            f"{_on_conflict(table, date_column)};"
        )
    return " ".join(statements)


def _sqlite_triggers() -> list[str]:
    watched = ("tenant_id", "issue_date", "billing_type", "status", "currency", *(source for _, source in SUMS))
    changed = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in watched)
    tenant_exists = "EXISTS (SELECT 1 FROM tenants WHERE tenants.id = OLD.tenant_id)"
    return [
        f"CREATE TRIGGER invoice_rollups_on_insert AFTER INSERT ON invoices BEGIN {_sqlite_upserts('NEW', '')} END",
        f"CREATE TRIGGER invoice_rollups_on_update AFTER UPDATE OF {', '.join(watched)} ON invoices "
        f"WHEN {changed} BEGIN {_sqlite_upserts('OLD', '-')} {_sqlite_upserts('NEW', '')} END",
        f"CREATE TRIGGER invoice_rollups_on_delete AFTER DELETE ON invoices "
        f"BEGIN {_sqlite_upserts('OLD', '-', tenant_exists)} END",
    ]
