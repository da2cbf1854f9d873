"""What the REST tests share: seed 004's example invoices and the world they need, and how to
read a 400's field violations."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.gateway_harness import Gateway, Reply

SEED_004_SINGLE = {
    "id": "inv_001",
    "customer_id": "cus_123",
    "data_source": "stripe",
    "type": "subscription",
    "date": "2024-07-01T00:00:00Z",
    "amount_cents": 9900,
    "currency": "USD",
    "plan_id": "plan_123",
    "subscription_id": "sub_001",
    "start_date": "2024-07-01T00:00:00Z",
    "end_date": "2024-08-01T00:00:00Z",
    "quantity": 1,
    "discount": 0,
}
SEED_004_BULK = [
    {
        "id": "inv_001",
        "customer_id": "cus_123",
        "data_source": "stripe",
        "type": "subscription",
        "date": "2024-07-01T00:00:00Z",
        "amount_cents": 9900,
        "currency": "USD",
        "plan_id": "plan_123",
        "subscription_id": "sub_001",
        "start_date": "2024-07-01T00:00:00Z",
        "end_date": "2024-08-01T00:00:00Z",
    },
    {
        "id": "inv_002",
        "customer_id": "cus_456",
        "data_source": "stripe",
        "type": "one-time",
        "date": "2024-07-02T00:00:00Z",
        "amount_cents": 15000,
        "currency": "USD",
        "start_date": "2024-07-02T00:00:00Z",
        "end_date": "2024-07-02T00:00:00Z",
    },
]


async def stripe_with_customers_and_plan(gateway: Gateway, api: Api) -> str:
    """Seed 004's world: data source "stripe" (made through the face), customers cus_123 and
    cus_456, plan plan_123 (rows). Returns the source's id."""
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert reply.status == 201, reply.body
    source_id = uuid.UUID(reply.json()["id"])
    async with api.db.write() as s:
        for external_id, name in (("cus_123", "Acme Corporation"), ("cus_456", "Globex")):
            s.add(
                m.Customer(
                    tenant_id=api.tenant_id,
                    data_source_id=source_id,
                    external_id=external_id,
                    name=name,
                    fingerprint="arranged",
                )
            )
        s.add(
            m.Plan(
                tenant_id=api.tenant_id,
                data_source_id=source_id,
                external_id="plan_123",
                name="Pro",
                interval="month",
                amount_minor=9900,
                currency="USD",
                fingerprint="arranged",
            )
        )
    return str(source_id)


async def two_imported_invoices(gateway: Gateway, api: Api) -> None:
    """inv_001 (subscription, 99.00 USD) and inv_002 (one-time, 150.00 USD), both `sent`."""
    await stripe_with_customers_and_plan(gateway, api)
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    assert [r["import_status"] for r in reply.json()["result"]] == ["inserted", "inserted"]


def violated_fields(reply: Reply) -> list[str]:
    bad_request = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    return [v["field"] for v in bad_request["field_violations"]]


async def invoice_ref(api: Api, external_id: str) -> str:
    async with api.db.read() as s:
        ref = await s.scalar(
            select(m.Invoice.id).where(m.Invoice.tenant_id == api.tenant_id, m.Invoice.external_id == external_id)
        )
    return str(ref)
