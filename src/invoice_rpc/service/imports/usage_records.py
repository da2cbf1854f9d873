"""UpsertUsageRecords: metered marketplace usage keyed by id, billed later by
GenerateMarketplaceInvoice. A billed record cannot change any more."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain import money
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_currency, check_length, check_non_negative
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, check_batch_size, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class UsageRecordImport:
    id: str
    dimension: str = ""
    quantity: str = ""
    unit_price_minor: int = 0
    currency: str = ""
    used_at: datetime | None = None


class _UsageRecordSpec(UpsertSpec[UsageRecordImport]):
    model = m.UsageRecord
    label = "usage record"
    request_field = "usage_records"

    def __init__(self, invoice_numbers: dict[uuid.UUID, str]) -> None:
        self.invoice_numbers = invoice_numbers  # usage row id -> number of the invoice billing it

    def normalize(self, item: UsageRecordImport, problems: list[str]) -> Normalized:
        dimension = check_length(item.dimension, "dimension", 200, problems)
        if dimension is None:
            problems.append("Missing dimension")
        quantity = None
        if not item.quantity.strip():
            problems.append("Missing quantity")
        else:
            try:
                quantity = money.format_decimal(money.parse_quantity(item.quantity))
            except ValueError:
                problems.append(
                    f"Invalid quantity '{item.quantity}': must be a non-negative decimal "
                    f"with at most {money.QUANTITY_SCALE} decimals"
                )
        if item.used_at is None:
            problems.append("Missing usage time")
        return Normalized(
            None,
            {
                "dimension": dimension,
                "quantity": quantity,
                "unit_price_minor": check_non_negative(item.unit_price_minor, "unit_price", problems),
                "currency": check_currency(item.currency, problems),
                "used_at": item.used_at,
            },
        )

    def update_problem(self, row: Any, item: UsageRecordImport) -> str | None:
        if row.invoice_id is None:
            return None
        number = self.invoice_numbers.get(row.id, "an invoice")
        return f"Usage record {row.external_id} is already billed on {number} and cannot change"


async def upsert_usage_records(
    session: AsyncSession, caller: Caller, items: Sequence[UsageRecordImport]
) -> list[ImportResult]:
    """Insert or update usage records; one result per item, in input order."""
    check_batch_size(len(items), _UsageRecordSpec.request_field)
    billed = await session.execute(
        select(m.UsageRecord.id, m.Invoice.invoice_number)
        .join(m.Invoice, m.Invoice.id == m.UsageRecord.invoice_id)
        .where(
            m.UsageRecord.tenant_id == caller.tenant_id,
            m.UsageRecord.external_id.in_(sorted({item.id.strip() for item in items})),
        )
    )
    spec = _UsageRecordSpec({usage_id: number for usage_id, number in billed})
    return await upsert_batch(session, caller, items, spec)
