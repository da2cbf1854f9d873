"""UpsertPeople: people involved with invoices, keyed by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_length
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class PersonImport:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


class _PersonSpec(UpsertSpec[PersonImport]):
    model = m.Person
    label = "person"
    request_field = "people"

    def normalize(self, item: PersonImport, problems: list[str]) -> Normalized:
        return Normalized(
            None,
            {
                "first_name": check_length(item.first_name, "first_name", 200, problems),
                "last_name": check_length(item.last_name, "last_name", 200, problems),
                "email": check_length(item.email, "email", 320, problems),
            },
        )


async def upsert_people(session: AsyncSession, caller: Caller, items: Sequence[PersonImport]) -> list[ImportResult]:
    """Insert or update people; one result per item, in input order."""
    return await upsert_batch(session, caller, items, _PersonSpec())
