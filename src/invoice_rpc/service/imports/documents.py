"""UpsertDocuments: metadata of files attached to invoices, keyed by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_length, check_non_negative
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class DocumentImport:
    id: str
    file_name: str = ""
    status: str = ""
    file_type: str = ""
    size_bytes: int | None = None
    uploaded_at: datetime | None = None
    processed_at: datetime | None = None


class _DocumentSpec(UpsertSpec[DocumentImport]):
    model = m.Document
    label = "document"
    request_field = "documents"

    def normalize(self, item: DocumentImport, problems: list[str]) -> Normalized:
        return Normalized(
            None,
            {
                "file_name": check_length(item.file_name, "file_name", 500, problems),
                "status": check_length(item.status, "status", 50, problems),
                "file_type": check_length(item.file_type, "file_type", 200, problems),
                "size_bytes": check_non_negative(item.size_bytes, "size_bytes", problems),
                "uploaded_at": item.uploaded_at,
                "processed_at": item.processed_at,
            },
        )


async def upsert_documents(
    session: AsyncSession, caller: Caller, items: Sequence[DocumentImport]
) -> list[ImportResult]:
    """Insert or update document metadata; one result per item, in input order."""
    return await upsert_batch(session, caller, items, _DocumentSpec())
