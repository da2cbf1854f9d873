"""UpsertCompanies: companies keyed by id. Descriptive fields (tax id, registration, …) are
kept as given in `details`; only name and legal name are columns."""

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
class CompanyImport:
    id: str
    name: str = ""
    legal_name: str = ""
    # description, domain, locale, tax_id, registration, registration_number (JSON values)
    details: dict[str, Any] = field(default_factory=dict)


class _CompanySpec(UpsertSpec[CompanyImport]):
    model = m.Company
    label = "company"
    request_field = "companies"

    def normalize(self, item: CompanyImport, problems: list[str]) -> Normalized:
        name = check_length(item.name, "name", 500, problems)
        if name is None:
            problems.append("Missing name")
        return Normalized(
            None,
            {
                "name": name,
                "legal_name": check_length(item.legal_name, "legal_name", 500, problems),
                "details": item.details,
            },
        )


async def upsert_companies(session: AsyncSession, caller: Caller, items: Sequence[CompanyImport]) -> list[ImportResult]:
    """Insert or update companies; one result per item, in input order."""
    return await upsert_batch(session, caller, items, _CompanySpec())
