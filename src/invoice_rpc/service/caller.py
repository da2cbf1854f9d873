"""Who is calling: what every use case needs to scope, attribute and log its work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its tenant, the API key it used and the request's id."""

    tenant_id: uuid.UUID
    api_key_id: uuid.UUID | None
    request_id: str
