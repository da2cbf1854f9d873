"""CreateDataSource: where imported things come from; the name is unique per tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.errors import AlreadyExists, InvalidArgument
from invoice_rpc.storage import models as m

MAX_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class DataSourceView:
    id: uuid.UUID
    name: str
    created_at: datetime


async def create_data_source(session: AsyncSession, tenant_id: uuid.UUID, name: str) -> DataSourceView:
    """A new data source; InvalidArgument unless the name has 1 to 100 characters (surrounding
    blanks are dropped), AlreadyExists if the tenant has one of that name."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidArgument.single("data_source.name", f"must have 1 to {MAX_NAME_LENGTH} characters")
    taken = await session.execute(
        select(m.DataSource.id).where(m.DataSource.tenant_id == tenant_id, m.DataSource.name == name)
    )
    if taken.first() is not None:
        raise AlreadyExists(f"Data source {name} already exists")
    source = m.DataSource(id=uuid.uuid4(), tenant_id=tenant_id, name=name)
    session.add(source)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise AlreadyExists(f"Data source {name} already exists") from exc
    return DataSourceView(source.id, source.name, source.created_at)
