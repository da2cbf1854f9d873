"""UpsertPaymentMeans: ways invoices can be paid, keyed by id. Only type, scheme and status are
columns; account, bank, card, wallet and compliance details stay as given in `details`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_length
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class PaymentMeansImport:
    id: str
    type: str = ""
    scheme: str = ""
    status: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class _PaymentMeansSpec(UpsertSpec[PaymentMeansImport]):
    model = m.PaymentMeans
    label = "payment means"
    request_field = "payment_means"

    def normalize(self, item: PaymentMeansImport, problems: list[str]) -> Normalized:
        return Normalized(
            None,
            {
                "type": check_length(item.type, "type", 50, problems),
                "scheme": check_length(item.scheme, "scheme", 50, problems),
                "status": check_length(item.status, "status", 50, problems),
                "details": item.details,
            },
        )


async def upsert_payment_means(
    session: AsyncSession, caller: Caller, items: Sequence[PaymentMeansImport]
) -> list[ImportResult]:
    """Insert or update payment means; one result per item, in input order."""
    return await upsert_batch(session, caller, items, _PaymentMeansSpec())
