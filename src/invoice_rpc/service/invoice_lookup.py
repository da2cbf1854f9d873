"""One invoice of a tenant by any of its keys: number, reference, or data source + external id.

Each lookup returns the FULL record (line items included) or raises NotFound; another tenant's
invoice is indistinguishable from a missing one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.errors import NotFound
from invoice_rpc.service.invoice_records import InvoiceRecord, get_invoice_record
from invoice_rpc.storage import models as m


async def get_invoice_by_ref(session: AsyncSession, tenant_id: uuid.UUID, invoice_ref: uuid.UUID) -> InvoiceRecord:
    record = await get_invoice_record(session, tenant_id, invoice_ref, with_line_items=True)
    if record is None:
        raise NotFound(f"invoice {invoice_ref} not found")
    return record


async def get_invoice_by_number(session: AsyncSession, tenant_id: uuid.UUID, invoice_number: str) -> InvoiceRecord:
    stmt = select(m.Invoice.id).where(m.Invoice.tenant_id == tenant_id, m.Invoice.invoice_number == invoice_number)
    invoice_id = (await session.execute(stmt)).scalar_one_or_none()
    if invoice_id is None:
        raise NotFound(f"invoice {invoice_number!r} not found")
    return await get_invoice_by_ref(session, tenant_id, invoice_id)


async def get_invoice_by_external_key(
    session: AsyncSession, tenant_id: uuid.UUID, data_source: str, external_id: str
) -> InvoiceRecord:
    """`data_source` is the data source's id or its name (names are unique per tenant)."""
    source_matches = m.DataSource.name == data_source
    source_id = _as_uuid(data_source)
    if source_id is not None:
        source_matches = or_(source_matches, m.DataSource.id == source_id)
    stmt = (
        select(m.Invoice.id)
        .join(m.DataSource, m.DataSource.id == m.Invoice.data_source_id)
        .where(m.Invoice.tenant_id == tenant_id, m.DataSource.tenant_id == tenant_id, source_matches)
        .where(m.Invoice.external_id == external_id)
    )
    # A name that is also another source's id could match twice; the id is the stronger claim.
    invoice_ids = (await session.execute(stmt.limit(2))).scalars().all()
    if not invoice_ids:
        raise NotFound(f"invoice {external_id!r} of data source {data_source!r} not found")
    if len(invoice_ids) > 1 and source_id is not None:
        stmt = stmt.where(m.DataSource.id == source_id)
        invoice_ids = (await session.execute(stmt)).scalars().all()
    return await get_invoice_by_ref(session, tenant_id, invoice_ids[0])


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
