"""item_digest on every imported table

Revision ID: 0003
Revises: 0002

A hash of an import item exactly as received, beside the fingerprint of its normalized
columns: a byte-identical re-send is recognized from it without normalizing the item.
Nullable: rows written before this revision (or created here rather than imported) have none,
and their next import takes the normalizing path once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMPORTED_TABLES = (
    "companies",
    "customers",
    "plans",
    "contracts",
    "payment_means",
    "people",
    "documents",
    "invoices",
    "orders",
    "usage_records",
)


# Plain ALTER TABLE on both databases (SQLite adds and drops columns natively): a batch-mode
# table rebuild on SQLite would drop the triggers revision 0002 puts on `invoices`.
def upgrade() -> None:
    for table in IMPORTED_TABLES:
        op.add_column(table, sa.Column("item_digest", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in IMPORTED_TABLES:
        op.drop_column(table, "item_digest")
