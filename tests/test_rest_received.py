"""Seed 001 (`/api/invoices`, `/api/documents/filter`, `Version: V0`) through Envoy."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.gateway_harness import Gateway, gateway
from tests.rest_fixtures import invoice_ref, two_imported_invoices, violated_fields

__all__ = ["gateway"]

# --- seed 001: the "Received" face ----------------------------------------------------------

V0 = {"Version": "V0"}


async def test_seed_001_get_invoice_has_the_documented_fields(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    ref = await invoice_ref(api, "inv_001")
    reply = await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)
    assert reply.status == 200
    body = reply.json()
    customer = body.pop("customer")
    assert uuid.UUID(customer.pop("customer_ref"))
    assert customer == {"customer_name": "Acme Corporation", "customer_legal_name": ""}
    assert body.pop("created_at").endswith("Z")
    assert body == {
        "invoice_ref": ref,
        "document_number": "INV-2024-0001",
        "state": "SENT",
        "issue_date": "2024-07-01",
        "is_partial_period": False,
        "accounting_event_type": "INVOICE",
        "currency": "USD",
        "sub_total": 99,
        "total_discount": 0,
        "total_tax": 0,
        "credits_amount": 0,
        "total": 99,
        "products": [],
    }


async def test_seed_001_needs_version_v0(gateway: Gateway, api: Api) -> None:
    ref = str(uuid.uuid4())
    missing = await gateway.request("GET", f"/api/invoices/{ref}", key=api.key)
    assert missing.status == 400
    assert violated_fields(missing) == ["Version"]
    unknown = await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers={"Version": "V9"})
    assert unknown.status == 400
    assert "V9" in unknown.json()["message"]


async def test_seed_001_unknown_invoice_is_404(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", f"/api/invoices/{uuid.uuid4()}", key=api.key, headers=V0)
    assert reply.status == 404


async def test_seed_001_reconcile_by_get_with_body_marks_paid_idempotently(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    ref = await invoice_ref(api, "inv_001")
    body = {"invoice_ref": ref, "paid_date": "2024-04-02T14:36:36.630Z"}
    first = await gateway.request("GET", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    assert first.status == 200, first.body
    assert (first.json()["state"], first.json()["paid_date"]) == ("PAID", "2024-04-02T14:36:36Z")
    again = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    assert again.status == 200
    assert again.json() == first.json()


async def test_seed_001_reconcile_without_paid_date_is_400_naming_it(gateway: Gateway, api: Api) -> None:
    body = {"invoice_ref": str(uuid.uuid4())}
    reply = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    assert reply.status == 400
    assert violated_fields(reply) == ["paid_date"]


async def test_seed_001_filter_answers_a_json_array_per_customer(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    async with api.db.read() as s:
        customer_ref = await s.scalar(
            select(m.Customer.id).where(m.Customer.tenant_id == api.tenant_id, m.Customer.external_id == "cus_123")
        )
    path = f"/api/documents/filter?customer_refs={customer_ref}&limit=50&page=0"
    reply = await gateway.request("GET", path, key=api.key, headers=V0)
    assert reply.status == 200
    invoices = reply.json()
    assert isinstance(invoices, list)
    assert [i["document_number"] for i in invoices] == ["INV-2024-0001"]
    assert invoices[0]["customer"]["customer_ref"] == str(customer_ref)
    next_page = await gateway.request("GET", path.replace("page=0", "page=1"), key=api.key, headers=V0)
    assert next_page.json() == []


async def test_seed_001_filter_needs_limit_and_valid_refs(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/documents/filter?customer_refs=abc&page=-1", key=api.key, headers=V0)
    assert reply.status == 400
    assert violated_fields(reply) == ["customer_refs[0]", "limit", "page"]
