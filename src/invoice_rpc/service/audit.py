"""The audit trail: every change to an invoice, with who made it and what changed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.storage import models as m


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record_audit(
    session: AsyncSession,
    caller: Caller,
    invoice_id: uuid.UUID,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """Add an audit event to the current transaction; values must be JSON-serializable
    (dates and timestamps as ISO 8601 strings)."""
    session.add(
        m.AuditEvent(
            id=uuid.uuid4(),
            tenant_id=caller.tenant_id,
            invoice_id=invoice_id,
            action=action,
            api_key_id=caller.api_key_id,
            request_id=caller.request_id,
            before=before,
            after=after,
        )
    )
