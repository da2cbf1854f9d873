"""Set-based lookups of what import items refer to: one query per batch, never one per item."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.imports.sets import column_in, execute_by_key
from invoice_rpc.storage import models as m


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# Built once: a batch names its sources again and again, and building the statement cost more
# than running it.
_SOURCES_BY_REF = select(m.DataSource.id, m.DataSource.name).where(
    m.DataSource.tenant_id == bindparam("tenant_id"),
    or_(
        m.DataSource.name.in_(bindparam("names", expanding=True)),
        m.DataSource.id.in_(bindparam("ids", expanding=True)),
    ),
)


class DataSources:
    """The tenant's data sources named in a batch, by id (as text) or by name."""

    def __init__(self, by_ref: dict[str, uuid.UUID]) -> None:
        self._by_ref = by_ref

    @classmethod
    async def load(cls, session: AsyncSession, tenant_id: uuid.UUID, refs: Iterable[str]) -> DataSources:
        # Distinct first: a batch of a thousand items usually names one source.
        wanted = {ref.strip() for ref in set(refs)} - {""}
        if not wanted:
            return cls({})
        ids = {parsed for ref in wanted if (parsed := _as_uuid(ref)) is not None}
        # The session's connection, not the ORM session: plain rows, without the ORM's overhead.
        connection = await session.connection()
        rows = (
            await connection.execute(
                _SOURCES_BY_REF, {"tenant_id": tenant_id, "names": sorted(wanted), "ids": sorted(ids)}
            )
        ).all()
        by_ref = {name: source_id for source_id, name in rows}
        # An id names its source even if some other source is named like that id.
        for ref in wanted:
            parsed = _as_uuid(ref)
            if parsed in ids and any(source_id == parsed for source_id, _ in rows):
                by_ref[ref] = parsed
        return cls(by_ref)

    def resolve(self, ref: str, problems: list[str]) -> uuid.UUID | None:
        """The source's id; a problem if the reference is empty or unknown."""
        ref = ref.strip()
        if not ref:
            problems.append("Missing data source")
            return None
        source_id = self._by_ref.get(ref)
        if source_id is None:
            problems.append(f"Data source {ref} does not exist")
        return source_id


async def ids_by_source_key(
    session: AsyncSession, model: Any, tenant_id: uuid.UUID, keys: Iterable[tuple[uuid.UUID | None, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """Row ids of a data-source-keyed model (customers, plans) by (data source id, external id)."""
    wanted = {(source_id, external_id) for source_id, external_id in keys if source_id is not None and external_id}
    if not wanted:
        return {}
    rows = await execute_by_key(
        session,
        select(model.id, model.data_source_id, model.external_id).where(
            model.tenant_id == tenant_id,
            column_in(session, model.data_source_id, sorted({source_id for source_id, _ in wanted})),
            column_in(session, model.external_id, sorted({external_id for _, external_id in wanted})),
        ),
    )
    return {(source_id, external_id): row_id for row_id, source_id, external_id in rows}


async def ids_by_external_id(
    session: AsyncSession, model: Any, tenant_id: uuid.UUID, external_ids: Iterable[str]
) -> dict[str, list[uuid.UUID]]:
    """Row ids by external id across the tenant (a customer id may repeat across sources)."""
    wanted = sorted({external_id for external_id in external_ids if external_id})
    if not wanted:
        return {}
    rows = await session.execute(
        select(model.id, model.external_id).where(model.tenant_id == tenant_id, model.external_id.in_(wanted))
    )
    found: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row_id, external_id in rows:
        found[external_id].append(row_id)
    return found
