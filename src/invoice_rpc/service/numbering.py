"""Gapless invoice numbers: INV-YYYY-NNNN per tenant and issue year.

The counter row is bumped with one atomic upsert inside the invoice's own write transaction.
On PostgreSQL the row lock it takes serializes concurrent writers of the same tenant and year
until their transactions end; on SQLite, write transactions are serialized by BEGIN IMMEDIATE.
A transaction that rolls back also rolls back its increment, so no number is ever skipped.
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.storage import models as m

NUMBER_PREFIX = "INV"


def format_invoice_number(year: int, serial: int) -> str:
    """INV-2026-0042; serials past 9999 simply grow wider (INV-2026-12345)."""
    return f"{NUMBER_PREFIX}-{year:04d}-{serial:04d}"


async def reserve_invoice_numbers(session: AsyncSession, tenant_id: uuid.UUID, year: int, count: int = 1) -> list[str]:
    """The next `count` numbers of the tenant's series for `year`, in order."""
    if count < 1:
        return []
    table = m.InvoiceNumberSequence.__table__
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(m.InvoiceNumberSequence)
        .values(tenant_id=tenant_id, year=year, last_value=count)
        .on_conflict_do_update(
            index_elements=[table.c.tenant_id, table.c.year],
            set_={"last_value": table.c.last_value + count},
        )
        .returning(table.c.last_value)
    )
    last = (await session.execute(stmt)).scalar_one()
    return [format_invoice_number(year, serial) for serial in range(last - count + 1, last + 1)]


async def next_invoice_number(session: AsyncSession, tenant_id: uuid.UUID, year: int) -> str:
    """The next number of the tenant's series for `year`."""
    [number] = await reserve_invoice_numbers(session, tenant_id, year, 1)
    return number
