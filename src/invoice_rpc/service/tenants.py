"""Tenants and their API keys. A key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.errors import InvalidArgument, Unauthenticated
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow

KEY_PREFIX = "irk_"


@dataclass(frozen=True, slots=True)
class TenantKey:
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    marketplace_customer_id: str | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def get_or_create_tenant(
    session: AsyncSession, name: str, *, marketplace_customer_id: str | None = None
) -> m.Tenant:
    """The tenant called `name`, created if needed; a given marketplace id replaces the old one."""
    name = name.strip()
    if not name:
        raise InvalidArgument.single("tenant", "must not be empty")
    tenant = (await session.execute(select(m.Tenant).where(m.Tenant.name == name))).scalar_one_or_none()
    if tenant is None:
        tenant = m.Tenant(id=uuid.uuid4(), name=name, marketplace_customer_id=marketplace_customer_id)
        session.add(tenant)
        await session.flush()
    elif marketplace_customer_id is not None:
        tenant.marketplace_customer_id = marketplace_customer_id
    return tenant


async def create_api_key(
    session: AsyncSession, tenant_name: str, *, marketplace_customer_id: str | None = None
) -> IssuedKey:
    """A new key for the tenant (created if needed). The returned key is never stored."""
    tenant = await get_or_create_tenant(session, tenant_name, marketplace_customer_id=marketplace_customer_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = m.ApiKey(id=uuid.uuid4(), tenant_id=tenant.id, key_hash=hash_key(key), key_prefix=key[:12])
    session.add(api_key)
    await session.flush()
    return IssuedKey(tenant_id=tenant.id, api_key_id=api_key.id, key=key)


async def authenticate(session: AsyncSession, key: str) -> TenantKey:
    """The tenant a bearer key belongs to; Unauthenticated if unknown or revoked."""
    stmt = (
        select(m.ApiKey.id, m.ApiKey.tenant_id, m.Tenant.marketplace_customer_id)
        .join(m.Tenant, m.Tenant.id == m.ApiKey.tenant_id)
        .where(m.ApiKey.key_hash == hash_key(key), m.ApiKey.revoked_at.is_(None))
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise Unauthenticated("unknown or revoked API key")
    return TenantKey(tenant_id=row.tenant_id, api_key_id=row.id, marketplace_customer_id=row.marketplace_customer_id)


async def revoke_api_key(session: AsyncSession, api_key_id: uuid.UUID) -> None:
    key = await session.get(m.ApiKey, api_key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()


class KeyCache:
    """Remembers successful key lookups for a few seconds, so that a busy caller does not cost a
    query per rpc. Unknown keys are never cached; a revoked key stops working within `ttl`."""

    def __init__(self, ttl_seconds: float = 10.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, TenantKey]] = {}

    def get(self, key: str) -> TenantKey | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: TenantKey) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
