"""Seed 000 (`/api/v1/invoice-receipts`) through Envoy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
from sqlalchemy import select

from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from tests.conftest import Api, new_api
from tests.gateway_harness import Gateway, gateway
from tests.rest_fixtures import stripe_with_customers_and_plan, two_imported_invoices, violated_fields

__all__ = ["gateway"]

# --- seed 000: the invoice receipts face ----------------------------------------------------


async def test_seed_000_list_has_the_documented_shape(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts?sort=total_amount", key=api.key)
    assert reply.status == 200
    body = reply.json()
    assert set(body) == {"data", "pagination", "filters_applied"}
    first, second = body["data"]
    assert set(first) == {"invoice_number", "billing_type", "status", "total_amount", "currency", "created_at"}
    assert (first["billing_type"], first["status"], first["total_amount"], first["currency"]) == (
        "one-time",
        "sent",
        150,
        "USD",
    )
    assert (second["billing_type"], second["total_amount"]) == ("subscription", 99)
    assert {first["invoice_number"], second["invoice_number"]} == {"INV-2024-0001", "INV-2024-0002"}
    assert first["created_at"].endswith("Z")
    assert body["pagination"] == {"current_page": 1, "per_page": 50, "total": 2, "last_page": 1}
    assert body["filters_applied"] == {
        "type": None,
        "status": None,
        "start_date": None,
        "end_date": None,
        "sort": "total_amount",
        "dir": "desc",
    }


async def test_seed_000_list_filters_sorts_and_pages(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request(
        "GET", "/api/v1/invoice-receipts?sort=total_amount&dir=asc&per_page=1&page=2", key=api.key
    )
    body = reply.json()
    assert [i["total_amount"] for i in body["data"]] == [150]
    assert body["pagination"] == {"current_page": 2, "per_page": 1, "total": 2, "last_page": 2}
    only = await gateway.request(
        "GET", "/api/v1/invoice-receipts?type=subscription&start_date=2024-07-01&end_date=2024-07-01", key=api.key
    )
    assert [i["billing_type"] for i in only.json()["data"]] == ["subscription"]
    assert only.json()["filters_applied"]["type"] == "subscription"
    assert only.json()["filters_applied"]["start_date"] == "2024-07-01"


async def test_seed_000_list_reports_every_bad_parameter(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request(
        "GET", "/api/v1/invoice-receipts?type=gift&start_date=2024-13-01&sort=colour&per_page=500", key=api.key
    )
    assert reply.status == 400
    assert violated_fields(reply) == ["type", "start_date", "sort", "per_page"]


async def test_seed_000_get_by_number_and_unknown_number_is_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0002", key=api.key)
    assert reply.status == 200
    assert reply.json()["data"]["invoice_number"] == "INV-2024-0002"
    missing = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0999", key=api.key)
    assert missing.status == 404
    assert missing.json()["code"] == 5
    foreign = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0002", key=other_api.key)
    assert foreign.status == 404


async def test_seed_000_summary_totals_per_currency_type_and_status(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/summary", key=api.key)
    assert reply.status == 200
    data = reply.json()["data"]
    assert data["invoice_count"] == 2
    assert data["totals"] == [
        {
            "currency": "USD",
            "invoice_count": 2,
            "total_amount": 249,
            "tax_amount": 0,
            "paid_amount": 0,
            "outstanding_amount": 249,
        }
    ]
    assert [(t["billing_type"], t["total_amount"]) for t in data["by_billing_type"]] == [
        ("one-time", 150),
        ("subscription", 99),
    ]
    assert [(t["status"], t["invoice_count"]) for t in data["by_status"]] == [("sent", 2)]
    assert reply.json()["filters_applied"] == {"start_date": None, "end_date": None}


async def test_seed_000_export_csv_is_a_download(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/csv?line_items=false", key=api.key)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.headers["content-disposition"].startswith('attachment; filename="invoices-')
    assert "grpc-status" not in reply.headers
    lines = reply.body.decode().splitlines()
    assert lines[0].startswith("invoice_ref,invoice_number,")
    assert len(lines) == 3


async def test_seed_000_export_json_is_a_download(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/json?type=one-time", key=api.key)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["content-disposition"].endswith('.json"')
    exported = reply.json()
    assert [(i["invoice_number"], i["total"]) for i in exported] == [("INV-2024-0002", "150.00")]


async def test_seed_000_export_unknown_format_is_400_before_any_byte(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/xml", key=api.key)
    assert reply.status == 400
    assert violated_fields(reply) == ["format"]


async def test_seed_000_generate_marketplace_without_marketplace_id_is_403(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/api/v1/invoice-receipts/generate-marketplace", key=api.key, body={})
    assert reply.status == 403
    assert reply.json()["code"] == 7


async def test_seed_000_generate_marketplace_is_201_with_location(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    seller = await new_api(db, channel, marketplace_customer_id="aws-cust-1")
    async with db.write() as s:
        s.add(
            m.UsageRecord(
                tenant_id=seller.tenant_id,
                external_id="use_1",
                dimension="api_calls",
                quantity="1200",
                unit_price_minor=2,
                currency="USD",
                used_at=datetime(2026, 2, 10, tzinfo=UTC),
                fingerprint="arranged",
            )
        )
    reply = await gateway.request(
        "POST",
        "/api/v1/invoice-receipts/generate-marketplace",
        key=seller.key,
        body={"period_start": "2026-02-01", "period_end": "2026-02-28"},
    )
    assert reply.status == 201
    assert "x-http-status" not in reply.headers
    body = reply.json()
    assert body["count"] == 1
    assert body["message"] == "1 marketplace invoice(s) generated"
    (number,) = body["invoice_numbers"]
    assert reply.headers["location"] == f"/api/v1/invoice-receipts/{number}"
    assert body["data"][0]["billing_type"] == "marketplace_usage"
    assert body["data"][0]["total_amount"] == 24


async def test_seed_000_backfill_reports_message_count_and_numbers(gateway: Gateway, api: Api) -> None:
    source_id = uuid.UUID(await stripe_with_customers_and_plan(gateway, api))
    async with api.db.write() as s:
        customer_id = (
            await s.scalars(select(m.Customer.id).where(m.Customer.tenant_id == api.tenant_id).limit(1))
        ).one()
        for i in (1, 2):
            s.add(
                m.Order(
                    tenant_id=api.tenant_id,
                    data_source_id=source_id,
                    external_id=f"ord_{i}",
                    customer_id=customer_id,
                    billing_type="subscription",
                    ordered_at=datetime(2026, 1, i, tzinfo=UTC),
                    amount_minor=9900,
                    currency="USD",
                    fingerprint="arranged",
                )
            )
    reply = await gateway.request("POST", "/api/v1/invoice-receipts/backfill", key=api.key, body={"limit": 200})
    assert reply.status == 200
    assert reply.json() == {
        "message": "2 invoice(s) backfilled from existing orders",
        "count": 2,
        "invoice_numbers": ["INV-2026-0001", "INV-2026-0002"],
    }
    again = await gateway.request("POST", "/api/v1/invoice-receipts/backfill", key=api.key)
    assert again.json()["count"] == 0


async def test_seed_000_backfill_limit_above_200_is_400(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/api/v1/invoice-receipts/backfill", key=api.key, body={"limit": 500})
    assert reply.status == 400
    assert violated_fields(reply) == ["limit"]
