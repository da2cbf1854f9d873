"""UpsertPlans: plans keyed by (data source, id); the interval drives MRR normalization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_choice, check_currency, check_length, check_non_negative
from invoice_rpc.service.imports.references import DataSources
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, check_batch_size, upsert_batch
from invoice_rpc.storage import models as m

PLAN_INTERVALS = ("day", "week", "month", "year")


@dataclass(frozen=True, slots=True)
class PlanImport:
    id: str
    data_source: str = ""
    name: str = ""
    interval: str = ""
    amount_minor: int = 0
    currency: str = ""


class _PlanSpec(UpsertSpec[PlanImport]):
    model = m.Plan
    label = "plan"
    request_field = "plans"
    keyed_by_data_source = True

    def __init__(self, sources: DataSources) -> None:
        self.sources = sources

    def data_source_ref(self, item: PlanImport) -> str:
        return item.data_source

    def resolve_data_source(self, ref: str) -> uuid.UUID | None:
        return self.sources.resolve(ref, [])

    def normalize(self, item: PlanImport, problems: list[str]) -> Normalized:
        return Normalized(
            self.sources.resolve(item.data_source, problems),
            {
                "name": check_length(item.name, "name", 500, problems) or "",
                "interval": check_choice(item.interval.strip().lower(), "interval", PLAN_INTERVALS, problems),
                "amount_minor": check_non_negative(item.amount_minor, "amount", problems),
                "currency": check_currency(item.currency, problems),
            },
        )


async def upsert_plans(session: AsyncSession, caller: Caller, items: Sequence[PlanImport]) -> list[ImportResult]:
    """Insert or update plans; one result per item, in input order."""
    check_batch_size(len(items), _PlanSpec.request_field)
    sources = await DataSources.load(session, caller.tenant_id, (item.data_source for item in items))
    return await upsert_batch(session, caller, items, _PlanSpec(sources))
