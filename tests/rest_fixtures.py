"""What the REST tests share: seed 004's example invoices and the world they need, and how to
read a 400's field violations."""

from __future__ import annotations

import json
import uuid
from typing import Any

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


# Seed 004's examples, as the document prints them.
SEED_004_SOURCE_ID = "2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a"
SEED_004_LIST_REQUEST = "/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a&limit=5"
SEED_004_LIST_RESPONSE: dict[str, Any] = json.loads("""
{
"result": {
"count": 2,
"list": [
{
"source_id": "2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a",
"customer_id": "cus_123",
"id": "inv_001",
"type": "subscription",
"date": "2024-07-01T00:00:00Z",
"amount_cents": 9900,
"currency": "USD",
"plan_id": "plan_123",
"subscription_id": "sub_001",
"start_date": "2024-07-01T00:00:00Z",
"end_date": "2024-08-01T00:00:00Z",
"quantity": 1,
"discount": 0
},
{
"source_id": "2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a",
"customer_id": "cus_456",
"id": "inv_002",
"type": "one-time",
"date": "2024-07-02T00:00:00Z",
"amount_cents": 15000,
"currency": "USD",
"start_date": "2024-07-02T00:00:00Z",
"end_date": "2024-07-02T00:00:00Z"
}
]
}
}""")
SEED_004_BULK_RESPONSE: dict[str, Any] = json.loads("""
{
"result": [
{ "id": "inv_001", "import_status": "inserted" },
{ "id": "inv_002", "import_status": "inserted" }
]
}""")
SEED_004_VALIDATION_RESPONSE: dict[str, Any] = json.loads("""
{
"result": [
{
"id": "inv_003",
"import_status": "error",
"import_error": "Missing invoice ID"
},
{
"id": "inv_004",
"import_status": "error",
"import_error": "Plan ID plan_999 does not exist"
}
]
}""")
SEED_004_UNCHANGED_RESPONSE: dict[str, Any] = json.loads("""
{
"result": [
{ "id": "inv_001", "import_status": "unchanged" }
]
}""")
SEED_004_UPDATED_RESPONSE: dict[str, Any] = json.loads("""
{
"result": [
{ "id": "inv_001", "import_status": "updated" }
]
}""")


async def seed_004_world_with_the_documented_source(api: Api) -> None:
    """Seed 004's world exactly: data source "stripe" with the document's own UUID (rows, since
    the service chooses ids), customers cus_123 and cus_456, plan plan_123. The UUID is a primary
    key: only one tenant per database can have it, so only one test may call this."""
    source_id = uuid.UUID(SEED_004_SOURCE_ID)
    async with api.db.write() as s:
        s.add(m.DataSource(id=source_id, tenant_id=api.tenant_id, name="stripe"))
        await s.flush()
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


def error_detail(reply: Reply, type_name: str) -> dict[str, Any]:
    """The detail of the JSON google.rpc.Status body whose @type ends with `type_name`
    (e.g. "google.rpc.ErrorInfo")."""
    detail: dict[str, Any] = next(d for d in reply.json()["details"] if d["@type"].endswith(type_name))
    return detail


async def invoice_ref(api: Api, external_id: str) -> str:
    async with api.db.read() as s:
        ref = await s.scalar(
            select(m.Invoice.id).where(m.Invoice.tenant_id == api.tenant_id, m.Invoice.external_id == external_id)
        )
    return str(ref)
