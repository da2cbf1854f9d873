"""Reading an invoice's audit trail: oldest first, in keyset pages on (created_at, id).

(Writing it is `service/audit.record_audit`.) The page token names the last event read and the
invoice it belongs to, so events recorded between pages are appended, never duplicated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.errors import InvalidArgument, NotFound, ViolationCollector
from invoice_rpc.service.invoice_queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, resolve_size
from invoice_rpc.service.page_tokens import decode_page_token, encode_page_token
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class AuditEventRecord:
    id: uuid.UUID
    invoice_id: uuid.UUID
    action: str
    api_key_id: uuid.UUID | None
    request_id: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEventPage:
    events: list[AuditEventRecord]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class _Cursor:
    created_at: datetime
    last_id: uuid.UUID


def check_audit_page(page_size: int, page_token: str, invoice_id: uuid.UUID, violations: ViolationCollector) -> None:
    resolve_size(page_size, "page_size", violations, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    if page_token:
        try:
            _decode_cursor(page_token, invoice_id)
        except InvalidArgument as error:
            violations.violations.extend(error.violations)


async def list_audit_events(
    session: AsyncSession, tenant_id: uuid.UUID, invoice_id: uuid.UUID, *, page_size: int = 0, page_token: str = ""
) -> AuditEventPage:
    """One page of the invoice's events, oldest first. NotFound if the tenant has no such invoice;
    InvalidArgument for a bad page size or a token of another invoice."""
    violations = ViolationCollector()
    check_audit_page(page_size, page_token, invoice_id, violations)
    violations.raise_if_any()
    size = page_size or DEFAULT_PAGE_SIZE
    exists = select(m.Invoice.id).where(m.Invoice.tenant_id == tenant_id, m.Invoice.id == invoice_id)
    if (await session.execute(exists)).scalar_one_or_none() is None:
        raise NotFound(f"invoice {invoice_id} not found")

    event = m.AuditEvent
    stmt = (
        select(event)
        .where(event.tenant_id == tenant_id, event.invoice_id == invoice_id)
        .order_by(event.created_at.asc(), event.id.asc())
        .limit(size + 1)
    )
    if page_token:
        cursor = _decode_cursor(page_token, invoice_id)
        stmt = stmt.where(
            or_(
                event.created_at > cursor.created_at,
                and_(event.created_at == cursor.created_at, event.id > cursor.last_id),
            )
        )
    rows = list((await session.execute(stmt)).scalars())
    events = [
        AuditEventRecord(
            id=row.id,
            invoice_id=row.invoice_id,
            action=row.action,
            api_key_id=row.api_key_id,
            request_id=row.request_id,
            before=row.before,
            after=row.after,
            created_at=row.created_at,
        )
        for row in rows[:size]
    ]
    next_token = ""
    if len(rows) > size:
        last = events[-1]
        next_token = encode_page_token(
            {"invoice": str(invoice_id), "created_at": last.created_at.isoformat(), "id": str(last.id)}
        )
    return AuditEventPage(events=events, next_page_token=next_token)


def _decode_cursor(token: str, invoice_id: uuid.UUID) -> _Cursor:
    payload = decode_page_token(token)
    if payload.get("invoice") != str(invoice_id):
        raise InvalidArgument.single("page_token", "was issued for another invoice")
    try:
        created_at = datetime.fromisoformat(str(payload.get("created_at")))
        last_id = uuid.UUID(str(payload.get("id")))
    except ValueError as exc:
        raise InvalidArgument.single("page_token", "is not a page token this service issued") from exc
    if created_at.tzinfo is None:
        raise InvalidArgument.single("page_token", "is not a page token this service issued")
    return _Cursor(created_at=created_at, last_id=last_id)
