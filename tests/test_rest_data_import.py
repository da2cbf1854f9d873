"""Seed 004 (`/data/invoices`) and the import extensions of API.md (`/data/...`) through a real
Envoy in front of the real server, on both databases: the document's own examples verbatim,
every rule of its notes, and every path of API.md's import table."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import grpc
from sqlalchemy import select, text

from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from invoice_rpc.worker import process_available_jobs
from tests.conftest import Api, new_api
from tests.gateway_harness import Gateway, Reply, gateway
from tests.rest_fixtures import (
    SEED_004_BULK,
    SEED_004_BULK_RESPONSE,
    SEED_004_LIST_REQUEST,
    SEED_004_LIST_RESPONSE,
    SEED_004_SINGLE,
    SEED_004_UNCHANGED_RESPONSE,
    SEED_004_UPDATED_RESPONSE,
    SEED_004_VALIDATION_RESPONSE,
    error_detail,
    seed_004_world_with_the_documented_source,
    stripe_with_customers_and_plan,
    violated_fields,
)

__all__ = ["gateway"]

# API.md's import table, with its elisions ("…") filled in.
CUSTOMER_EXAMPLE = {
    "id": "cus_123",
    "data_source": "stripe",
    "name": "Acme Corporation",
    "legal_name": "Acme Corp Ltd",
    "email": "billing@acme.example",
    "company_id": "company_id",
}
PLAN_EXAMPLE = {
    "id": "plan_123",
    "data_source": "stripe",
    "name": "Pro",
    "interval": "month",
    "amount_cents": 9900,
    "currency": "USD",
}
COMPANY_EXAMPLE = {
    "id": "company_id",
    "name": "ACME Corporation",
    "legal_name": "ACME Corporation GmbH",
    "tax_id": {"value": "DE123456789", "type": "VAT"},
    "registration_number": {"business_type": "GmbH", "value": "HRB 123456", "registry_name": "Handelsregister Berlin"},
}
ORDER_EXAMPLE = {
    "id": "ord_1",
    "data_source": "stripe",
    "customer_id": "cus_123",
    "billing_type": "subscription",
    "date": "2026-01-05T10:00:00Z",
    "amount_cents": 9900,
    "currency": "USD",
    "plan_id": "plan_123",
}
USAGE_EXAMPLE = {
    "id": "use_1",
    "dimension": "api_calls",
    "quantity": 1200,
    "unit_price_cents": 2,
    "currency": "USD",
    "timestamp": "2026-02-10T12:00:00Z",
}


def assert_json_answer(reply: Reply, status: int = 200) -> None:
    """A REST answer as every face gives it: the status, JSON, Envoy's request id, and none of
    the gRPC plumbing (status trailers, the 201 hint) leaking into the HTTP headers."""
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"]
    for plumbing in ("grpc-status", "grpc-message", "x-http-status"):
        assert plumbing not in reply.headers


async def post_ok(gateway: Gateway, api: Api, path: str, body: object) -> list[dict[str, str]]:
    reply = await gateway.request("POST", path, key=api.key, body=body)
    assert_json_answer(reply)
    results: list[dict[str, str]] = reply.json()["result"]
    return results


async def drain_metric_jobs(db: Database) -> None:
    """Run the metrics worker's step until the queue is empty (what `invoice-rpc worker` does)."""
    while await process_available_jobs(db, "test-drain", limit=1000):
        pass


# --- seed 004: the document's examples, verbatim ---------------------------------------------


async def test_seed_004_examples_verbatim_bulk_updated_unchanged_and_list(gateway: Gateway, api: Api) -> None:
    await seed_004_world_with_the_documented_source(api)

    bulk = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    assert_json_answer(bulk)
    assert bulk.json() == SEED_004_BULK_RESPONSE

    # The single example is inv_001 again, with quantity 1 and discount 0: a change.
    updated = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_SINGLE)
    assert_json_answer(updated)
    assert updated.json() == SEED_004_UPDATED_RESPONSE

    unchanged = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_SINGLE)
    assert_json_answer(unchanged)
    assert unchanged.json() == SEED_004_UNCHANGED_RESPONSE

    listed = await gateway.request("GET", SEED_004_LIST_REQUEST, key=api.key)
    assert_json_answer(listed)
    # The document's response, but for one key: `discount` is stored as an amount (0 when the
    # import sent none), so inv_002 shows "discount": 0 where the example leaves it out.
    expected = copy.deepcopy(SEED_004_LIST_RESPONSE)
    expected["result"]["list"][1]["discount"] = 0
    assert listed.json() == expected


async def test_seed_004_single_invoice_example_is_inserted(gateway: Gateway, api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_SINGLE)
    assert_json_answer(reply)
    assert reply.json() == {"result": [{"id": "inv_001", "import_status": "inserted"}]}


async def test_seed_004_validation_errors_example(gateway: Gateway, api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    body = [
        {key: value for key, value in SEED_004_SINGLE.items() if key != "id"},
        {**SEED_004_SINGLE, "id": "inv_004", "plan_id": "plan_999"},
    ]
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=body)
    assert_json_answer(reply)
    # The document answers its "Missing invoice ID" item with an id ("inv_003"); an item without
    # one can only be answered with the id it was sent with: none.
    expected = copy.deepcopy(SEED_004_VALIDATION_RESPONSE)
    expected["result"][0]["id"] = ""
    assert reply.json() == expected


async def test_seed_004_every_documented_rule_is_a_per_item_error(gateway: Gateway, api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    valid = SEED_004_BULK[0]
    without = {field: {k: v for k, v in valid.items() if k != field} for field in valid}
    cases: list[tuple[dict[str, Any], str]] = [
        # "Each invoice must include id, customer_id, data_source, type, date, amount_cents,
        # currency, start_date, and end_date."
        ({**without["customer_id"], "id": "e01"}, "Missing customer ID"),
        ({**without["data_source"], "id": "e02"}, "Missing data source"),
        ({**without["type"], "id": "e03"}, "Missing type"),
        ({**without["date"], "id": "e04"}, "Missing date"),
        ({**without["amount_cents"], "id": "e05"}, "Missing amount_cents"),
        ({**without["currency"], "id": "e06"}, "Missing currency"),
        ({**without["start_date"], "id": "e07"}, "Missing start_date"),
        ({**without["end_date"], "id": "e08"}, "Missing end_date"),
        # "type must be one of: subscription, one-time, refund, or cancellation" (as written).
        (
            {**valid, "id": "e09", "type": "gift"},
            "Invalid type 'gift': must be one of subscription, one-time, refund, cancellation",
        ),
        (
            {**valid, "id": "e10", "type": "Subscription"},
            "Invalid type 'Subscription': must be one of subscription, one-time, refund, cancellation",
        ),
        # "amount_cents must be a non-negative number."
        ({**valid, "id": "e11", "amount_cents": -1}, "amount_cents must be a non-negative number"),
        # "currency must be a 3-letter ISO currency code."
        ({**valid, "id": "e12", "currency": "US"}, "Invalid currency 'US': must be a 3-letter ISO 4217 code"),
        ({**valid, "id": "e13", "currency": "XYZ"}, "Invalid currency 'XYZ': must be a 3-letter ISO 4217 code"),
        # "customer_id must exist in your imported customers list."
        ({**valid, "id": "e14", "customer_id": "cus_999"}, "Customer ID cus_999 does not exist"),
        # "plan_id must exist in your imported plans list."
        ({**valid, "id": "e15", "plan_id": "plan_999"}, "Plan ID plan_999 does not exist"),
        # "dates are invalid"
        ({**valid, "id": "e16", "date": "2024-13-01"}, "Invalid date '2024-13-01': expected RFC 3339 or YYYY-MM-DD"),
        (
            {**valid, "id": "e17", "start_date": "July 1st"},
            "Invalid start_date 'July 1st': expected RFC 3339 or YYYY-MM-DD",
        ),
        ({**valid, "id": "e18", "end_date": "2024-06-30T00:00:00Z"}, "end_date is before start_date"),
        ({**valid, "id": "e19", "data_source": "paypal"}, "Data source paypal does not exist"),
        (
            {**valid, "id": "e20", "quantity": -1, "discount": -2},
            "quantity must be a non-negative number; discount must be a non-negative number",
        ),
    ]
    good: list[dict[str, Any]] = [
        {**valid, "id": "ok_by_source_id", "data_source": source_id},
        {**valid, "id": "ok_lower_case_currency", "currency": "usd"},
        {**valid, "id": "ok_plain_dates", "date": "2024-07-01", "start_date": "2024-07-01", "end_date": "2024-08-01"},
    ]
    body = [item for item, _ in cases] + good + [{**valid, "id": "ok_by_source_id"}]
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=body)
    assert_json_answer(reply)
    assert reply.json()["result"] == (
        [{"id": item["id"], "import_status": "error", "import_error": error} for item, error in cases]
        + [{"id": item["id"], "import_status": "inserted"} for item in good]
        + [
            {
                "id": "ok_by_source_id",
                "import_status": "error",
                "import_error": "Duplicate invoice ID ok_by_source_id in this batch",
            }
        ]
    )
    # The bad items changed nothing: only the good ones are listed.
    listed = await gateway.request("GET", f"/data/invoices?source={source_id}&limit=200", key=api.key)
    assert sorted(i["id"] for i in listed.json()["result"]["list"]) == sorted(item["id"] for item in good)


async def test_seed_004_more_than_1000_items_is_400_naming_invoices(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=[{"id": f"i{n}"} for n in range(1001)])
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["invoices"]
    assert reply.json()["message"] == "invoices: must hold 1 to 1000 items, got 1001"


async def test_seed_004_empty_array_is_400_naming_invoices(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=[])
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["invoices"]


async def test_seed_004_no_body_is_400_not_one_empty_item(gateway: Gateway, api: Api) -> None:
    for body in (b"", b" \n "):
        reply = await gateway.request("POST", "/data/invoices", key=api.key, raw_body=body)
        assert_json_answer(reply, 400)
        assert reply.json()["message"] == "request body is required: one JSON object or an array of them"


async def test_seed_004_amount_of_the_wrong_json_type_is_400_naming_the_field(gateway: Gateway, api: Api) -> None:
    for amount in ("ninety-nine", 99.5, True, {"value": 9900}):
        reply = await gateway.request(
            "POST", "/data/invoices", key=api.key, body={**SEED_004_SINGLE, "amount_cents": amount}
        )
        assert_json_answer(reply, 400)
        assert reply.json()["code"] == 3
        assert reply.json()["message"].startswith("invoices"), reply.json()
        assert "amount_cents" in reply.json()["message"], reply.json()


async def test_seed_004_amount_as_a_decimal_string_is_the_number(gateway: Gateway, api: Api) -> None:
    # proto3 JSON takes 64-bit integers as strings too: "9900" is 9900, so the resend is unchanged.
    await stripe_with_customers_and_plan(gateway, api)
    assert await post_ok(gateway, api, "/data/invoices", {**SEED_004_SINGLE, "amount_cents": "9900"}) == [
        {"id": "inv_001", "import_status": "inserted"}
    ]
    assert await post_ok(gateway, api, "/data/invoices", SEED_004_SINGLE) == [
        {"id": "inv_001", "import_status": "unchanged"}
    ]


async def test_seed_004_unknown_fields_are_ignored(gateway: Gateway, api: Api) -> None:
    # Tolerant reader: a field the document does not define (here: the list's own `source_id`,
    # as a caller echoing a listed invoice back would send it) neither fails nor changes anything.
    await stripe_with_customers_and_plan(gateway, api)
    extra = {**SEED_004_SINGLE, "source_id": "whatever", "colour": "blue"}
    assert await post_ok(gateway, api, "/data/invoices", extra) == [{"id": "inv_001", "import_status": "inserted"}]
    assert await post_ok(gateway, api, "/data/invoices", SEED_004_SINGLE) == [
        {"id": "inv_001", "import_status": "unchanged"}
    ]


async def test_seed_004_list_limit_takes_the_latest_in_date_order(gateway: Gateway, api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    dates = ["2024-07-03", "2024-07-01", "2024-07-05", "2024-07-02", "2024-07-04"]
    invoices = [
        {**SEED_004_BULK[1], "id": f"inv_{day[-2:]}", "date": day, "start_date": day, "end_date": day} for day in dates
    ]
    await post_ok(gateway, api, "/data/invoices", invoices)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}&limit=3", key=api.key)
    assert_json_answer(reply)
    result = reply.json()["result"]
    assert result["count"] == 3
    assert [i["id"] for i in result["list"]] == ["inv_03", "inv_04", "inv_05"]
    assert [i["date"] for i in result["list"]] == [
        "2024-07-03T00:00:00Z",
        "2024-07-04T00:00:00Z",
        "2024-07-05T00:00:00Z",
    ]


async def test_seed_004_list_without_limit_gives_the_latest_50(gateway: Gateway, api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    invoices = [{**SEED_004_BULK[1], "id": f"inv_{n:03d}", "date": f"2024-07-02T00:00:{n:02d}Z"} for n in range(51)]
    # One issue date for all: ties are listed by reference, so only the count is certain.
    await post_ok(gateway, api, "/data/invoices", invoices)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}", key=api.key)
    assert_json_answer(reply)
    assert reply.json()["result"]["count"] == 50
    assert len(reply.json()["result"]["list"]) == 50


async def test_seed_004_list_bad_parameters_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    server_checks = {
        "/data/invoices?limit=0": ["source", "limit"],
        "/data/invoices?source=not-a-uuid&limit=201": ["source", "limit"],
        "/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a&limit=-1": ["limit"],
        "/data/invoices?source=": ["source"],
    }
    for path, fields in server_checks.items():
        reply = await gateway.request("GET", path, key=api.key)
        assert_json_answer(reply, 400)
        assert violated_fields(reply) == fields, path
    # Values the transcoder cannot even convert are refused by Envoy, naming the parameter.
    for path, field in (
        ("/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a&limit=five", "limit"),
        ("/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a&limit=99999999999", "limit"),
        ("/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a&sort=date", '"sort"'),
    ):
        reply = await gateway.request("GET", path, key=api.key)
        assert_json_answer(reply, 400)
        assert reply.json()["code"] == 3
        assert field in reply.json()["message"], path


async def test_seed_004_list_of_an_unknown_source_is_empty(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", f"/data/invoices?source={uuid.uuid4()}&limit=5", key=api.key)
    assert_json_answer(reply)
    assert reply.json() == {"result": {"count": 0, "list": []}}


async def test_seed_004_list_does_not_show_another_tenants_invoices(gateway: Gateway, api: Api, other_api: Api) -> None:
    source_id = await stripe_with_customers_and_plan(gateway, api)
    await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}", key=other_api.key)
    assert reply.json() == {"result": {"count": 0, "list": []}}


async def test_seed_004_metrics_are_recalculated_after_the_call_returns(gateway: Gateway, api: Api) -> None:
    # "related customers are automatically queued for metric recalculation. This process happens
    # asynchronously after the API call returns."
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    source_id = source.json()["id"]
    await post_ok(gateway, api, "/data/customers", [{"id": "cus_123", "data_source": "stripe", "name": "Acme"}])
    await post_ok(gateway, api, "/data/plans", PLAN_EXAMPLE)
    await post_ok(gateway, api, "/data/invoices", SEED_004_SINGLE)

    before = await gateway.request("GET", f"/data/customers/cus_123?source={source_id}", key=api.key)
    assert_json_answer(before)
    assert before.json()["result"]["metrics"] == []
    assert "metrics_updated_at" not in before.json()["result"]

    await drain_metric_jobs(api.db)

    after = await gateway.request("GET", f"/data/customers/cus_123?source={source_id}", key=api.key)
    assert_json_answer(after)
    customer = after.json()["result"]
    assert customer["metrics"] == [
        {
            "currency": "USD",
            "invoiced_cents": 9900,
            "paid_cents": 0,
            "outstanding_cents": 9900,
            "mrr_cents": 9900,
            "invoice_count": 1,
            "last_invoice_date": "2024-07-01",
        }
    ]
    assert customer["metrics_updated_at"].endswith("Z")
    # A re-import that changes the amount queues the customer again.
    await post_ok(gateway, api, "/data/invoices", {**SEED_004_SINGLE, "amount_cents": 4900})
    await drain_metric_jobs(api.db)
    again = await gateway.request("GET", f"/data/customers/cus_123?source={source_id}", key=api.key)
    metrics = again.json()["result"]["metrics"][0]
    assert (metrics["invoiced_cents"], metrics["outstanding_cents"], metrics["mrr_cents"]) == (4900, 4900, 4900)


# --- API.md: POST /data/data_sources -----------------------------------------------------------


async def test_data_source_create_is_201_with_id_name_and_time(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert_json_answer(reply, 201)
    assert "location" not in reply.headers
    body = reply.json()
    assert set(body) == {"id", "name", "created_at"}
    assert uuid.UUID(body["id"])
    assert body["name"] == "stripe"
    assert body["created_at"].endswith("Z")


async def test_data_source_duplicate_name_is_409_already_exists(gateway: Gateway, api: Api, other_api: Api) -> None:
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": " stripe "})
    assert_json_answer(reply, 409)
    assert reply.json()["code"] == 6
    assert reply.json()["message"] == "Data source stripe already exists"
    info = error_detail(reply, "google.rpc.ErrorInfo")
    assert (info["reason"], info["domain"]) == ("ALREADY_EXISTS", "invoice-rpc")
    assert info["metadata"]["request_id"] == reply.headers["x-request-id"]
    # Unique per tenant, not across tenants.
    elsewhere = await gateway.request("POST", "/data/data_sources", key=other_api.key, body={"name": "stripe"})
    assert elsewhere.status == 201


async def test_data_source_bad_names_are_400_naming_the_field(gateway: Gateway, api: Api) -> None:
    for body in ({}, {"name": "   "}, {"name": "x" * 101}):
        reply = await gateway.request("POST", "/data/data_sources", key=api.key, body=body)
        assert_json_answer(reply, 400)
        assert violated_fields(reply) == ["name"]
        assert reply.json()["message"] == "name: must have 1 to 100 characters"


async def test_data_source_takes_one_object_not_an_array(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/data_sources", key=api.key, body=[{"name": "stripe"}])
    assert_json_answer(reply, 400)
    assert reply.json()["code"] == 3


# --- API.md: customers, plans, companies, orders, usage ---------------------------------------


async def test_import_face_loads_a_tenant_end_to_end_without_sql(gateway: Gateway, api: Api) -> None:
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert_json_answer(source, 201)
    assert await post_ok(gateway, api, "/data/companies", COMPANY_EXAMPLE) == [
        {"id": "company_id", "import_status": "inserted"}
    ]
    assert await post_ok(gateway, api, "/data/customers", CUSTOMER_EXAMPLE) == [
        {"id": "cus_123", "import_status": "inserted"}
    ]
    assert await post_ok(gateway, api, "/data/plans", PLAN_EXAMPLE) == [{"id": "plan_123", "import_status": "inserted"}]
    assert await post_ok(gateway, api, "/data/orders", [ORDER_EXAMPLE]) == [
        {"id": "ord_1", "import_status": "inserted"}
    ]
    assert await post_ok(gateway, api, "/data/usage", USAGE_EXAMPLE) == [{"id": "use_1", "import_status": "inserted"}]
    # The same quantity as a decimal string is the same record.
    assert await post_ok(gateway, api, "/data/usage", {**USAGE_EXAMPLE, "quantity": "1200"}) == [
        {"id": "use_1", "import_status": "unchanged"}
    ]

    backfill = await gateway.request("POST", "/api/v1/invoice-receipts/backfill", key=api.key, body={})
    assert backfill.json()["invoice_numbers"] == ["INV-2026-0001"]

    reply = await gateway.request("GET", "/data/customers/cus_123?source=stripe", key=api.key)
    assert_json_answer(reply)
    got = reply.json()["result"]
    assert uuid.UUID(got.pop("customer_ref"))
    assert got.pop("created_at").endswith("Z")
    assert got.pop("updated_at").endswith("Z")
    assert got == {
        "id": "cus_123",
        "source_id": source.json()["id"],
        "name": "Acme Corporation",
        "legal_name": "Acme Corp Ltd",
        "email": "billing@acme.example",
        "company_id": "company_id",
        "metrics": [],
    }


async def test_import_face_every_entity_is_unchanged_when_resent_and_updated_when_changed(
    gateway: Gateway, api: Api
) -> None:
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    examples: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("/data/companies", COMPANY_EXAMPLE, {"name": "ACME Corp"}),
        ("/data/customers", CUSTOMER_EXAMPLE, {"email": "ap@acme.example"}),
        ("/data/plans", PLAN_EXAMPLE, {"amount_cents": 10900}),
        ("/data/orders", ORDER_EXAMPLE, {"amount_cents": 9000}),
        ("/data/usage", USAGE_EXAMPLE, {"quantity": 1300}),
    ]
    for path, example, change in examples:
        assert await post_ok(gateway, api, path, example) == [{"id": example["id"], "import_status": "inserted"}]
        assert await post_ok(gateway, api, path, [example]) == [{"id": example["id"], "import_status": "unchanged"}]
        assert await post_ok(gateway, api, path, {**example, **change}) == [
            {"id": example["id"], "import_status": "updated"}
        ], path


async def test_import_face_companies_keep_what_was_sent(gateway: Gateway, api: Api) -> None:
    await post_ok(gateway, api, "/data/companies", COMPANY_EXAMPLE)
    async with api.db.read() as s:
        stored = (
            await s.execute(
                select(m.Company.name, m.Company.legal_name, m.Company.details).where(
                    m.Company.tenant_id == api.tenant_id, m.Company.external_id == "company_id"
                )
            )
        ).one()
    assert (stored.name, stored.legal_name) == ("ACME Corporation", "ACME Corporation GmbH")
    assert stored.details["tax_id"] == {"value": "DE123456789", "type": "VAT"}
    assert stored.details["registration_number"]["value"] == "HRB 123456"


async def test_import_face_item_problems_are_per_item(gateway: Gateway, api: Api) -> None:
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    source_id = source.json()["id"]
    expectations: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = {
        "/data/customers": [
            ({**CUSTOMER_EXAMPLE, "company_id": ""}, {"import_status": "inserted"}),
            (
                {**CUSTOMER_EXAMPLE, "id": "cus_2", "data_source": "paypal", "company_id": ""},
                {"import_status": "error", "import_error": "Data source paypal does not exist"},
            ),
            (
                {**CUSTOMER_EXAMPLE, "id": "cus_3", "company_id": "nope"},
                {"import_status": "error", "import_error": "Company ID nope does not exist"},
            ),
            (
                {**CUSTOMER_EXAMPLE, "id": "cus_4", "data_source": source_id, "company_id": ""},
                {"import_status": "inserted"},
            ),
        ],
        "/data/plans": [
            (
                {**PLAN_EXAMPLE, "interval": "fortnight"},
                {
                    "import_status": "error",
                    "import_error": "Invalid interval 'fortnight': must be one of day, week, month, year",
                },
            ),
            (
                {**PLAN_EXAMPLE, "id": "plan_2", "currency": "EURO"},
                {"import_status": "error", "import_error": "Invalid currency 'EURO': must be a 3-letter ISO 4217 code"},
            ),
        ],
        "/data/companies": [
            ({"id": "co_1"}, {"import_status": "error", "import_error": "Missing name"}),
        ],
        "/data/orders": [
            (
                {**ORDER_EXAMPLE, "customer_id": "cus_999", "plan_id": "plan_999"},
                {
                    "import_status": "error",
                    "import_error": "Customer ID cus_999 does not exist; Plan ID plan_999 does not exist",
                },
            ),
        ],
        "/data/usage": [
            (
                {**USAGE_EXAMPLE, "quantity": "-1", "currency": "ZZZ"},
                {
                    "import_status": "error",
                    "import_error": (
                        "Invalid quantity '-1': must be a non-negative decimal with at most 6 decimals; "
                        "Invalid currency 'ZZZ': must be a 3-letter ISO 4217 code"
                    ),
                },
            ),
            ({**USAGE_EXAMPLE, "id": "use_2", "quantity": 1.5}, {"import_status": "inserted"}),
        ],
    }
    for path, cases in expectations.items():
        results = await post_ok(gateway, api, path, [item for item, _ in cases])
        assert results == [{"id": item["id"], **outcome} for item, outcome in cases], path


async def test_import_face_unconvertible_values_are_400_naming_the_item(gateway: Gateway, api: Api) -> None:
    order = {**ORDER_EXAMPLE, "billing_type": "gift", "date": "yesterday"}
    reply = await gateway.request("POST", "/data/orders", key=api.key, body=[ORDER_EXAMPLE, order])
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["orders[1].billing_type", "orders[1].date"]

    usage = {**USAGE_EXAMPLE, "quantity": {"value": 1}, "timestamp": "soon"}
    reply = await gateway.request("POST", "/data/usage", key=api.key, body=usage)
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["usage_records[0].quantity", "usage_records[0].timestamp"]


async def test_import_face_usage_is_billed_by_generate_marketplace(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    seller = await new_api(db, channel, marketplace_customer_id="aws-cust-1")
    await post_ok(gateway, seller, "/data/usage", USAGE_EXAMPLE)
    period = {"period_start": "2026-02-01", "period_end": "2026-02-28"}
    billed = await gateway.request("POST", "/api/v1/invoice-receipts/generate-marketplace", key=seller.key, body=period)
    assert billed.status == 201, billed.body
    (invoice,) = billed.json()["data"]
    assert invoice["billing_type"] == "marketplace_usage"
    # Billed once: the same period again has nothing left to bill.
    again = await gateway.request("POST", "/api/v1/invoice-receipts/generate-marketplace", key=seller.key, body=period)
    assert_json_answer(again, 400)
    assert again.json()["code"] == 9


# --- API.md: GET /data/customers/{id}?source= ------------------------------------------------


async def test_customer_by_source_id_name_or_alone(gateway: Gateway, api: Api) -> None:
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    await post_ok(gateway, api, "/data/customers", {**CUSTOMER_EXAMPLE, "company_id": ""})
    refs = set()
    for query in (f"?source={source.json()['id']}", "?source=stripe", ""):
        reply = await gateway.request("GET", f"/data/customers/cus_123{query}", key=api.key)
        assert_json_answer(reply)
        assert reply.json()["result"]["id"] == "cus_123"
        assert "company_id" not in reply.json()["result"]
        refs.add(reply.json()["result"]["customer_ref"])
    assert len(refs) == 1


async def test_customer_in_two_sources_needs_the_source(gateway: Gateway, api: Api) -> None:
    for name in ("stripe", "paypal"):
        await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": name})
        await post_ok(gateway, api, "/data/customers", {"id": "cus_123", "data_source": name, "name": name})
    reply = await gateway.request("GET", "/data/customers/cus_123", key=api.key)
    assert_json_answer(reply, 400)
    assert reply.json()["code"] == 9
    assert reply.json()["message"] == "Customer ID cus_123 exists in several data sources; name the data source"
    named = await gateway.request("GET", "/data/customers/cus_123?source=paypal", key=api.key)
    assert named.json()["result"]["name"] == "paypal"


async def test_customer_unknown_foreign_or_blank_is_404_or_400(gateway: Gateway, api: Api, other_api: Api) -> None:
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    await post_ok(gateway, api, "/data/customers", {**CUSTOMER_EXAMPLE, "company_id": ""})
    for key, path, message in (
        (api.key, "/data/customers/cus_999", "Customer ID cus_999 does not exist"),
        (api.key, "/data/customers/cus_123?source=paypal", "Data source paypal does not exist"),
        (other_api.key, "/data/customers/cus_123", "Customer ID cus_123 does not exist"),
    ):
        reply = await gateway.request("GET", path, key=key)
        assert_json_answer(reply, 404)
        assert (reply.json()["code"], reply.json()["message"]) == (5, message)
    blank = await gateway.request("GET", "/data/customers/%20", key=api.key)
    assert_json_answer(blank, 400)
    assert violated_fields(blank) == ["id"]


# --- ABORTED: a concurrent import of the same new id ------------------------------------------


async def test_concurrent_insert_of_the_same_id_is_409_aborted_or_queued(gateway: Gateway, api: Api) -> None:
    """Another writer inserts cus_123 while our import of cus_123 runs. On PostgreSQL both look,
    both insert, and ours waits on the unique index until the other commits: then it is ABORTED
    (409), with nothing written, and a retry succeeds. On SQLite writers queue on the file lock
    before they look, so ours sees the other's row and updates it."""
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    source_id = uuid.UUID(source.json()["id"])
    customer = {"id": "cus_123", "data_source": "stripe", "name": "Acme Corporation"}
    async with api.db.write() as other_writer:
        other_writer.add(
            m.Customer(
                tenant_id=api.tenant_id,
                data_source_id=source_id,
                external_id="cus_123",
                name="Written concurrently",
                fingerprint="concurrent",
            )
        )
        await other_writer.flush()
        call = asyncio.create_task(gateway.request("POST", "/data/customers", key=api.key, body=customer))
        await _until_the_import_waits(api)
    reply = await call

    if api.db.dialect == "postgresql":
        assert_json_answer(reply, 409)
        assert reply.json()["code"] == 10
        assert reply.json()["message"] == "a concurrent import wrote the same customer IDs; retry the batch"
        assert error_detail(reply, "google.rpc.ErrorInfo")["reason"] == "ABORTED"
        retried = await gateway.request("POST", "/data/customers", key=api.key, body=customer)
        assert retried.json() == {"result": [{"id": "cus_123", "import_status": "updated"}]}
    else:
        assert_json_answer(reply)
        assert reply.json() == {"result": [{"id": "cus_123", "import_status": "updated"}]}
    shown = await gateway.request("GET", "/data/customers/cus_123", key=api.key)
    assert shown.json()["result"]["name"] == "Acme Corporation"


async def _until_the_import_waits(api: Api) -> None:
    """Until the server's import is blocked behind the open transaction (PostgreSQL: a backend
    of this database waits on a lock; SQLite shows no such thing: a moment's grace instead)."""
    if api.db.dialect != "postgresql":
        await asyncio.sleep(0.3)
        return
    for _ in range(250):
        async with api.db.read() as s:
            waiting = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the import never waited on the concurrent insert")
