"""Seed 004 (`/data/invoices`) and the import extensions of API.md (`/data/...`) through Envoy."""

from __future__ import annotations

import uuid

from tests.conftest import Api
from tests.gateway_harness import Gateway, gateway
from tests.rest_fixtures import SEED_004_BULK, SEED_004_SINGLE, stripe_with_customers_and_plan, violated_fields

__all__ = ["gateway"]

# --- seed 004: the data import face ---------------------------------------------------------


async def test_data_source_create_is_201_with_id_name_and_time(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert reply.status == 201
    assert "x-http-status" not in reply.headers
    assert "grpc-status" not in reply.headers
    body = reply.json()
    assert set(body) == {"id", "name", "created_at"}
    assert uuid.UUID(body["id"])
    assert body["name"] == "stripe"
    assert body["created_at"].endswith("Z")


async def test_data_source_duplicate_name_is_409(gateway: Gateway, api: Api) -> None:
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert reply.status == 409
    assert reply.json()["code"] == 6


async def test_data_source_without_name_is_400_naming_the_field(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={})
    assert reply.status == 400
    bad_request = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert [v["field"] for v in bad_request["field_violations"]] == ["name"]


async def test_seed_004_single_invoice_upsert_is_inserted(gateway: Gateway, api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_SINGLE)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert "grpc-status" not in reply.headers
    assert reply.json() == {"result": [{"id": "inv_001", "import_status": "inserted"}]}


async def test_seed_004_bulk_upsert_then_resend_then_update(gateway: Gateway, api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    first = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    assert first.json() == {
        "result": [{"id": "inv_001", "import_status": "inserted"}, {"id": "inv_002", "import_status": "inserted"}]
    }
    again = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK[:1])
    assert again.json() == {"result": [{"id": "inv_001", "import_status": "unchanged"}]}
    changed = await gateway.request(
        "POST", "/data/invoices", key=api.key, body=[{**SEED_004_BULK[0], "amount_cents": 9000}]
    )
    assert changed.json() == {"result": [{"id": "inv_001", "import_status": "updated"}]}


async def test_seed_004_bad_items_are_reported_per_item(gateway: Gateway, api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    body = [
        {**SEED_004_BULK[0], "id": ""},
        {**SEED_004_BULK[0], "id": "inv_004", "plan_id": "plan_999"},
        SEED_004_BULK[1],
    ]
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=body)
    assert reply.status == 200
    assert reply.json() == {
        "result": [
            {"id": "", "import_status": "error", "import_error": "Missing invoice ID"},
            {"id": "inv_004", "import_status": "error", "import_error": "Plan ID plan_999 does not exist"},
            {"id": "inv_002", "import_status": "inserted"},
        ]
    }


async def test_seed_004_empty_array_is_400_naming_invoices(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=[])
    assert reply.status == 400
    bad_request = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert [v["field"] for v in bad_request["field_violations"]] == ["invoices"]


async def test_seed_004_list_shows_the_imported_invoices_as_documented(gateway: Gateway, api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    await gateway.request("POST", "/data/invoices", key=api.key, body=[SEED_004_SINGLE, SEED_004_BULK[1]])
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}&limit=5", key=api.key)
    assert reply.status == 200
    assert "grpc-status" not in reply.headers
    result = reply.json()["result"]
    assert result["count"] == 2
    # Latest issue date first: inv_002 (2024-07-02), then inv_001.
    assert result["list"] == [
        {
            "source_id": source_id,
            "customer_id": "cus_456",
            "id": "inv_002",
            "type": "one-time",
            "date": "2024-07-02T00:00:00Z",
            "amount_cents": 15000,
            "currency": "USD",
            "start_date": "2024-07-02T00:00:00Z",
            "end_date": "2024-07-02T00:00:00Z",
            "discount": 0,
        },
        {
            "source_id": source_id,
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
            "discount": 0,
        },
    ]


async def test_seed_004_list_limit_caps_the_count(gateway: Gateway, api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}&limit=1", key=api.key)
    assert reply.json()["result"]["count"] == 1
    assert [i["id"] for i in reply.json()["result"]["list"]] == ["inv_002"]


async def test_seed_004_list_without_source_and_zero_limit_reports_both_fields(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/data/invoices?limit=0", key=api.key)
    assert reply.status == 400
    bad_request = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert [v["field"] for v in bad_request["field_violations"]] == ["source", "limit"]


async def test_seed_004_list_does_not_show_another_tenants_invoices(gateway: Gateway, api: Api, other_api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}", key=other_api.key)
    assert reply.json() == {"result": {"count": 0, "list": []}}


# --- API.md: the import face takes everything the documents rely on --------------------------


async def test_import_face_loads_a_tenant_end_to_end_without_sql(gateway: Gateway, api: Api) -> None:
    async def post(path: str, body: object) -> list[dict[str, str]]:
        reply = await gateway.request("POST", path, key=api.key, body=body)
        assert reply.status == 200, reply.body
        results: list[dict[str, str]] = reply.json()["result"]
        return results

    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert source.status == 201
    company = {
        "id": "company_id",
        "name": "ACME Corporation",
        "tax_id": {"value": "DE123456789", "type": "VAT"},
        "registration_number": {"business_type": "GmbH", "value": "HRB 123456"},
    }
    assert await post("/data/companies", company) == [{"id": "company_id", "import_status": "inserted"}]
    customer = {
        "id": "cus_123",
        "data_source": "stripe",
        "name": "Acme Corporation",
        "legal_name": "Acme Corp Ltd",
        "email": "billing@acme.example",
        "company_id": "company_id",
    }
    assert await post("/data/customers", customer) == [{"id": "cus_123", "import_status": "inserted"}]
    plan = {
        "id": "plan_123",
        "data_source": "stripe",
        "name": "Pro",
        "interval": "month",
        "amount_cents": 9900,
        "currency": "USD",
    }
    assert await post("/data/plans", plan) == [{"id": "plan_123", "import_status": "inserted"}]
    order = {
        "id": "ord_1",
        "data_source": "stripe",
        "customer_id": "cus_123",
        "billing_type": "subscription",
        "date": "2026-01-05T10:00:00Z",
        "amount_cents": 9900,
        "currency": "USD",
        "plan_id": "plan_123",
    }
    assert await post("/data/orders", [order]) == [{"id": "ord_1", "import_status": "inserted"}]
    usage = {
        "id": "use_1",
        "dimension": "api_calls",
        "quantity": 1200,
        "unit_price_cents": 2,
        "currency": "USD",
        "timestamp": "2026-02-10T12:00:00Z",
    }
    assert await post("/data/usage", usage) == [{"id": "use_1", "import_status": "inserted"}]
    assert await post("/data/usage", {**usage, "quantity": "1200"}) == [{"id": "use_1", "import_status": "unchanged"}]

    backfill = await gateway.request("POST", "/api/v1/invoice-receipts/backfill", key=api.key, body={})
    assert backfill.json()["invoice_numbers"] == ["INV-2026-0001"]

    reply = await gateway.request("GET", "/data/customers/cus_123?source=stripe", key=api.key)
    assert reply.status == 200
    got = reply.json()["result"]
    assert (got["id"], got["name"], got["legal_name"], got["email"], got["company_id"]) == (
        "cus_123",
        "Acme Corporation",
        "Acme Corp Ltd",
        "billing@acme.example",
        "company_id",
    )
    assert got["source_id"] == source.json()["id"]
    assert uuid.UUID(got["customer_ref"])


async def test_import_face_unknown_customer_is_404(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/data/customers/cus_999", key=api.key)
    assert reply.status == 404
    assert reply.json()["code"] == 5


async def test_import_face_order_with_unknown_billing_type_is_400_naming_the_item(gateway: Gateway, api: Api) -> None:
    order = {
        "id": "ord_1",
        "data_source": "stripe",
        "customer_id": "cus_123",
        "billing_type": "gift",
        "date": "yesterday",
        "amount_cents": 100,
        "currency": "USD",
    }
    reply = await gateway.request("POST", "/data/orders", key=api.key, body=[order])
    assert reply.status == 400
    assert violated_fields(reply) == ["orders[0].billing_type", "orders[0].date"]


async def test_import_face_item_problems_stay_per_item(gateway: Gateway, api: Api) -> None:
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    plans = [
        {
            "id": "plan_1",
            "data_source": "stripe",
            "name": "Pro",
            "interval": "month",
            "amount_cents": 9900,
            "currency": "USD",
        },
        {
            "id": "plan_2",
            "data_source": "paypal",
            "name": "Pro",
            "interval": "month",
            "amount_cents": 9900,
            "currency": "USD",
        },
    ]
    reply = await gateway.request("POST", "/data/plans", key=api.key, body=plans)
    assert reply.status == 200
    first, second = reply.json()["result"]
    assert first == {"id": "plan_1", "import_status": "inserted"}
    assert (second["id"], second["import_status"]) == ("plan_2", "error")
    assert "paypal" in second["import_error"]
