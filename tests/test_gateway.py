"""The REST gateway: a real Envoy (generated config, Lua shim, transcoder) in front of the real
server, called with a real HTTP client, on both databases."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import select

from invoice_rpc.gateway.config import build_envoy_config
from invoice_rpc.gateway.descriptors import build_descriptor_set, rest_services
from invoice_rpc.gateway.envoy import EnvoyProcess, GatewaySettings, run_gateway, write_envoy_config
from invoice_rpc.rpc.faces import FACE_SERVICE_NAMES
from invoice_rpc.rpc.server import BuiltServer, build_server
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from tests.conftest import Api, new_api
from tests.gateway_harness import Gateway, Reply, RestClient, gateway

__all__ = ["gateway"]


async def test_unknown_path_is_404_json(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/no/such/path", key=api.key)
    assert reply.status == 404
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == 5
    assert body["status"] == "NOT_FOUND"
    assert body["message"]


async def test_missing_authorization_is_401_json(gateway: Gateway) -> None:
    reply = await gateway.request("GET", "/data/invoices?source=2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a")
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == 16
    assert "authorization" in body["message"]
    reasons = [d.get("reason") for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert reasons == ["UNAUTHENTICATED"]


async def test_malformed_query_parameter_is_400_json(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/data/invoices?source=x&limit=five", key=api.key)
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == 3
    assert body["status"] == "INVALID_ARGUMENT"


async def test_unknown_query_parameter_is_400_json(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/data/invoices?source=x&colour=blue", key=api.key)
    assert reply.status == 400
    assert reply.json()["code"] == 3


async def test_malformed_json_body_is_400_json(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("POST", "/data/invoices", key=api.key, raw_body=b'{"id": "inv_001",')
    assert reply.status == 400
    assert reply.json()["code"] == 3


async def test_health_route_answers_200_while_server_serves(gateway: Gateway) -> None:
    reply = await gateway.request("GET", "/healthz")
    assert reply.status == 200


async def test_responses_carry_envoy_request_id(gateway: Gateway) -> None:
    reply = await gateway.request("GET", "/data/invoices")
    assert reply.status == 401
    assert reply.headers["x-request-id"]
    error_info = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.ErrorInfo"))
    assert error_info["metadata"]["request_id"] == reply.headers["x-request-id"]


async def test_bracket_query_keys_reach_the_transcoder_dotted(gateway: Gateway, api: Api) -> None:
    # No seed-004 field is called `page`: the transcoder's complaint shows the key it received.
    reply = await gateway.request("GET", "/data/invoices?page[limit]=3&page%5Bcursor%5D=x", key=api.key)
    assert reply.status == 400
    assert (
        reply.json()["message"] == 'Could not find field "page" in the type "invoice_rpc.v1.ListDataInvoicesRequest".'
    )


async def test_native_grpc_passes_through_the_gateway(gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.process.http_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_transcoded_services_are_read_from_the_descriptor_set(tmp_path: Path) -> None:
    descriptor_path = build_descriptor_set(tmp_path / "set.pb")
    assert rest_services(descriptor_path.read_bytes()) == sorted(FACE_SERVICE_NAMES)
    config = build_envoy_config(GatewaySettings(), descriptor_path)
    http_filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    assert [f["name"] for f in http_filters] == [
        "envoy.filters.http.health_check",
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    assert http_filters[2]["typed_config"]["services"] == sorted(FACE_SERVICE_NAMES)


async def test_server_not_serving_makes_health_and_calls_503_json(db: Database, tmp_path: Path) -> None:
    built = build_server(db, "127.0.0.1:0")
    await built.start()
    try:
        settings = GatewaySettings(
            grpc_port=built.port, http_port=0, admin_port=0, listen_host="127.0.0.1", health_check_interval_seconds=0.2
        )
        async with EnvoyProcess(write_envoy_config(settings, tmp_path)) as process:
            own = RestClient(f"http://127.0.0.1:{process.http_port}")
            assert (await own.request("GET", "/healthz")).json() == {"status": "SERVING"}
            await built.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            for _ in range(50):
                health = await own.request("GET", "/healthz")
                if health.status == 503:
                    break
                await asyncio.sleep(0.1)
            assert health.status == 503
            assert health.json() == {"status": "NOT_SERVING"}
            call = await own.request("GET", "/data/invoices?source=x")
            assert call.status == 503
            assert call.json()["code"] == 14
    finally:
        await built.stop(0.5)


async def test_envoy_process_stop_leaves_no_process(db: Database, server: BuiltServer, tmp_path: Path) -> None:
    settings = GatewaySettings(grpc_port=server.port, http_port=0, admin_port=0, listen_host="127.0.0.1")
    process = EnvoyProcess(write_envoy_config(settings, tmp_path))
    await process.start()
    pid = process.pid
    assert pid is not None and process.running
    await process.stop()
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_invalid_utf8_in_path_or_query_is_400_not_500(gateway: Gateway, api: Api) -> None:
    for path in ("/api/v1/invoice-receipts/%FF%FE", "/data/invoices?source=%C0%AF", "/data/invoices?source=%ED%A0%80"):
        reply = await gateway.request("GET", path, key=api.key)
        assert reply.status == 400, path
        assert reply.json()["code"] == 3
        assert "UTF-8" in reply.json()["message"]


async def test_valid_utf8_in_path_reaches_the_server(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/INV-%C3%A9", key=api.key)
    assert reply.status == 404
    assert "INV-é" in reply.json()["message"]


async def test_run_gateway_serves_until_stopped(server: BuiltServer, tmp_path: Path) -> None:
    http_port, admin_port = _free_port(), _free_port()
    settings = GatewaySettings(
        grpc_port=server.port, http_port=http_port, admin_port=admin_port, listen_host="127.0.0.1"
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_gateway(settings, stop, tmp_path))
    try:
        url = f"http://127.0.0.1:{http_port}"
        status = 0
        for _ in range(100):
            try:
                status = (await RestClient(url).request("GET", "/healthz")).status
            except OSError:  # Envoy not listening yet
                status = 0
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- seed 004: the data import face ---------------------------------------------------------

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


async def _stripe_with_customers_and_plan(gateway: Gateway, api: Api) -> str:
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
    await _stripe_with_customers_and_plan(gateway, api)
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_SINGLE)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert "grpc-status" not in reply.headers
    assert reply.json() == {"result": [{"id": "inv_001", "import_status": "inserted"}]}


async def test_seed_004_bulk_upsert_then_resend_then_update(gateway: Gateway, api: Api) -> None:
    await _stripe_with_customers_and_plan(gateway, api)
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
    await _stripe_with_customers_and_plan(gateway, api)
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
    source_id = await _stripe_with_customers_and_plan(gateway, api)
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
    source_id = await _stripe_with_customers_and_plan(gateway, api)
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
    source_id = await _stripe_with_customers_and_plan(gateway, api)
    await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    reply = await gateway.request("GET", f"/data/invoices?source={source_id}", key=other_api.key)
    assert reply.json() == {"result": {"count": 0, "list": []}}


# --- seed 000: the invoice receipts face ----------------------------------------------------


async def _two_imported_invoices(gateway: Gateway, api: Api) -> None:
    """inv_001 (subscription, 99.00 USD) and inv_002 (one-time, 150.00 USD), both `sent`."""
    await _stripe_with_customers_and_plan(gateway, api)
    reply = await gateway.request("POST", "/data/invoices", key=api.key, body=SEED_004_BULK)
    assert [r["import_status"] for r in reply.json()["result"]] == ["inserted", "inserted"]


def _violated_fields(reply: Reply) -> list[str]:
    bad_request = next(d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    return [v["field"] for v in bad_request["field_violations"]]


async def test_seed_000_list_has_the_documented_shape(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
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
    await _two_imported_invoices(gateway, api)
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
    assert _violated_fields(reply) == ["type", "start_date", "sort", "per_page"]


async def test_seed_000_get_by_number_and_unknown_number_is_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0002", key=api.key)
    assert reply.status == 200
    assert reply.json()["data"]["invoice_number"] == "INV-2024-0002"
    missing = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0999", key=api.key)
    assert missing.status == 404
    assert missing.json()["code"] == 5
    foreign = await gateway.request("GET", "/api/v1/invoice-receipts/INV-2024-0002", key=other_api.key)
    assert foreign.status == 404


async def test_seed_000_summary_totals_per_currency_type_and_status(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
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
    await _two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/csv?line_items=false", key=api.key)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.headers["content-disposition"].startswith('attachment; filename="invoices-')
    assert "grpc-status" not in reply.headers
    lines = reply.body.decode().splitlines()
    assert lines[0].startswith("invoice_ref,invoice_number,")
    assert len(lines) == 3


async def test_seed_000_export_json_is_a_download(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/json?type=one-time", key=api.key)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["content-disposition"].endswith('.json"')
    exported = reply.json()
    assert [(i["invoice_number"], i["total"]) for i in exported] == [("INV-2024-0002", "150.00")]


async def test_seed_000_export_unknown_format_is_400_before_any_byte(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/xml", key=api.key)
    assert reply.status == 400
    assert _violated_fields(reply) == ["format"]


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
    source_id = uuid.UUID(await _stripe_with_customers_and_plan(gateway, api))
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
    assert _violated_fields(reply) == ["limit"]


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
    assert _violated_fields(reply) == ["orders[0].billing_type", "orders[0].date"]


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


# --- seed 001: the "Received" face ----------------------------------------------------------

V0 = {"Version": "V0"}


async def _invoice_ref(api: Api, external_id: str) -> str:
    async with api.db.read() as s:
        ref = await s.scalar(
            select(m.Invoice.id).where(m.Invoice.tenant_id == api.tenant_id, m.Invoice.external_id == external_id)
        )
    return str(ref)


async def test_seed_001_get_invoice_has_the_documented_fields(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    ref = await _invoice_ref(api, "inv_001")
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
    assert _violated_fields(missing) == ["Version"]
    unknown = await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers={"Version": "V9"})
    assert unknown.status == 400
    assert "V9" in unknown.json()["message"]


async def test_seed_001_unknown_invoice_is_404(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", f"/api/invoices/{uuid.uuid4()}", key=api.key, headers=V0)
    assert reply.status == 404


async def test_seed_001_reconcile_by_get_with_body_marks_paid_idempotently(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    ref = await _invoice_ref(api, "inv_001")
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
    assert _violated_fields(reply) == ["paid_date"]


async def test_seed_001_filter_answers_a_json_array_per_customer(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
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
    assert _violated_fields(reply) == ["customer_refs[0]", "limit", "page"]


# --- seed 002: the JSON:API face ------------------------------------------------------------


async def test_seed_002_list_has_the_documented_shape(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/v1/invoices?date_from=2024-07-01&date_to=2024-07-01", key=api.key)
    assert reply.status == 200
    body = reply.json()
    assert body["meta"] == {"total": 1, "limit": 20}
    assert body["included"] == []
    (invoice,) = body["data"]
    ref = await _invoice_ref(api, "inv_001")
    assert (invoice["type"], invoice["id"]) == ("invoice", f"invoice_{ref}")
    attributes = invoice["attributes"]
    assert attributes.pop("created_at").endswith("Z")
    assert attributes.pop("updated_at").endswith("Z")
    assert attributes == {
        "reference_number": "INV-2024-0001",
        "document_type": "commercial_invoice",
        "document_type_code": "380",
        "issue_date": "2024-07-01",
        "local_currency": "USD",
        "local_totals": {"subtotal": "99.00", "tax_total": "0.00", "total_amount": "99.00"},
        "billing_context": "subscription",
        "payment_status": {"paid": False, "amount_paid": 0, "amount_remaining": 99},
        "status": "sent",
    }
    assert invoice["relationships"] == {
        "payment_means": {"data": []},
        "invoice_items": {"data": []},
        "documents": {"data": []},
        "people": {"data": []},
    }


async def test_seed_002_bracketed_page_keys_page_through_with_the_cursor(gateway: Gateway, api: Api) -> None:
    await _two_imported_invoices(gateway, api)
    first = await gateway.request("GET", "/v1/invoices?page[limit]=1", key=api.key)
    assert first.status == 200
    assert len(first.json()["data"]) == 1
    assert first.json()["meta"]["total"] == 2
    cursor = first.json()["meta"]["next_cursor"]
    # Browsers percent-encode the brackets; the shim takes both spellings.
    second = await gateway.request("GET", f"/v1/invoices?page%5Blimit%5D=1&page%5Bcursor%5D={cursor}", key=api.key)
    assert second.status == 200
    assert "next_cursor" not in second.json()["meta"]
    seen = {
        first.json()["data"][0]["attributes"]["reference_number"],
        second.json()["data"][0]["attributes"]["reference_number"],
    }
    assert seen == {"INV-2024-0001", "INV-2024-0002"}


async def test_seed_002_bad_parameters_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request(
        "GET", "/v1/invoices?status=unpaid&date_from=01-01-2025&page[limit]=500&page[cursor]=nope", key=api.key
    )
    assert reply.status == 400
    assert _violated_fields(reply) == ["status", "date_from", "page.limit", "page.cursor"]


async def test_seed_002_include_is_refused_until_related_resources_are_served(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/v1/invoices?include=company,people", key=api.key)
    assert reply.status == 400
    assert _violated_fields(reply) == ["include"]
