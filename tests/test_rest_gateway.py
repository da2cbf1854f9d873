"""The REST gateway itself: a real Envoy (generated config, Lua shim, transcoder) in front of
the real server, called with a real HTTP client, on both databases: errors, health, limits."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import invoice_service_pb2_grpc

from invoice_rpc.gateway.config import (
    GRPC_CLUSTER,
    HEALTH_PATH,
    MAX_REQUEST_BODY_BYTES,
    MAX_REQUEST_HEADERS_COUNT,
    MAX_REQUEST_HEADERS_KIB,
    build_envoy_config,
)
from invoice_rpc.gateway.descriptors import build_descriptor_set, rest_services
from invoice_rpc.gateway.envoy import EnvoyProcess, GatewaySettings, run_gateway, write_envoy_config
from invoice_rpc.rpc.faces import FACE_SERVICE_NAMES
from invoice_rpc.rpc.interceptor import MAX_CONCURRENT_STREAMS_PER_TENANT
from invoice_rpc.rpc.server import BuiltServer, build_server
from invoice_rpc.storage.database import Database
from tests.conftest import Api
from tests.factories import make_invoices_bulk
from tests.gateway_harness import Gateway, RestClient, gateway
from tests.rest_fixtures import error_detail, violated_fields

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
        "envoy.filters.http.buffer",
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    assert http_filters[3]["typed_config"]["services"] == sorted(FACE_SERVICE_NAMES)


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
            # Serving again: health and calls come back without restarting anything.
            await built.health.set("", health_pb2.HealthCheckResponse.SERVING)
            for _ in range(50):
                health = await own.request("GET", "/healthz")
                if health.status == 200:
                    break
                await asyncio.sleep(0.1)
            assert health.json() == {"status": "SERVING"}
            # Each Envoy worker thread learns the host's health on its own: allow it a moment.
            for _ in range(50):
                call = await own.request("GET", "/data/invoices?source=x")
                if call.status != 503:
                    break
                await asyncio.sleep(0.1)
            assert call.status == 401
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


# --- the error contract: every bad request is a JSON 4xx, never a 5xx, a hang or a drop -------

SOME_UUID = "2f7a9e3e-4f6d-4a3c-8b2a-0f1b4e7d8c9a"


@dataclass(frozen=True)
class BadRequest:
    """One bad request and the answer it must get: HTTP status, google.rpc.Code, a piece of the
    message, and (for the server's 400s) the field its BadRequest names."""

    method: str
    path: str
    status: int
    code: int
    message: str
    violated: str | None = None
    body: Any = None
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    authorized: bool = True


V0 = {"Version": "V0"}
BAD_REQUESTS: dict[str, BadRequest] = {
    # Paths.
    "uuid-path-segment-malformed": BadRequest(
        "GET", "/api/invoices/not-a-uuid", 400, 3, "must be a UUID", "invoice_ref", headers=V0
    ),
    "percent-encoding-invalid": BadRequest(
        "GET", "/api/invoices/%ZZ", 400, 3, "must be a UUID", "invoice_ref", headers=V0
    ),
    "percent-encoding-truncated": BadRequest(
        "GET", "/api/invoices/%E", 400, 3, "must be a UUID", "invoice_ref", headers=V0
    ),
    "percent-encoding-not-utf8": BadRequest("GET", "/api/invoices/%C3%28", 400, 3, "UTF-8", headers=V0),
    "nul-in-path": BadRequest("GET", "/data/customers/cus%00", 400, 3, "NUL", "id"),
    "unknown-path": BadRequest("GET", "/no/such/path", 404, 5, "Could not resolve /no/such/path"),
    "unknown-path-under-a-face": BadRequest("GET", "/data/invoices/inv_001", 404, 5, "Could not resolve"),
    # Wrong method on a known path: 404 (the transcoder knows paths per method; see the report).
    "wrong-method-delete": BadRequest("DELETE", "/data/invoices", 404, 5, "Could not resolve /data/invoices"),
    "wrong-method-put": BadRequest("PUT", "/data/data_sources", 404, 5, "Could not resolve", body={"name": "x"}),
    "wrong-method-get-on-post-path": BadRequest("GET", "/data/data_sources", 404, 5, "Could not resolve"),
    # Query parameters.
    "query-not-a-uuid": BadRequest("GET", "/data/invoices?source=x", 400, 3, "must be a UUID", "source"),
    "query-wrong-type": BadRequest("GET", f"/data/invoices?source={SOME_UUID}&limit=five", 400, 3, "limit"),
    "query-int32-overflow": BadRequest("GET", f"/data/invoices?source={SOME_UUID}&limit=99999999999", 400, 3, "limit"),
    "query-unknown-parameter": BadRequest("GET", f"/data/invoices?source={SOME_UUID}&colour=blue", 400, 3, '"colour"'),
    "query-nul": BadRequest("GET", "/data/invoices?source=%00", 400, 3, "NUL", "source"),
    "query-not-utf8": BadRequest("GET", "/data/invoices?source=%C0%AF", 400, 3, "UTF-8"),
    "query-oversize": BadRequest(
        "GET", "/data/invoices?source=" + "a" * 7000, 431, 3, f"larger than {MAX_REQUEST_HEADERS_KIB} KiB"
    ),
    "too-many-headers": BadRequest(
        "GET",
        f"/data/invoices?source={SOME_UUID}",
        431,
        3,
        f"more than {MAX_REQUEST_HEADERS_COUNT} headers",
        headers={f"x-extra-{n}": "1" for n in range(MAX_REQUEST_HEADERS_COUNT)},
    ),
    # Bodies.
    "body-missing": BadRequest("POST", "/data/customers", 400, 3, "request body is required", raw_body=b""),
    "body-malformed-json": BadRequest("POST", "/data/invoices", 400, 3, "", raw_body=b'{"id": "inv_001",'),
    "body-not-utf8": BadRequest("POST", "/data/invoices", 400, 3, "UTF-8", raw_body=b'{"id": "\xff"}'),
    "body-string-for-number": BadRequest(
        "POST", "/data/invoices", 400, 3, "amount_cents", body={"id": "inv_001", "amount_cents": "abc"}
    ),
    "body-fraction-for-integer": BadRequest(
        "POST", "/data/plans", 400, 3, "amount_cents", body={"id": "p", "amount_cents": 99.5}
    ),
    "body-object-for-string": BadRequest("POST", "/data/data_sources", 400, 3, "name", body={"name": {"first": "x"}}),
    "body-array-for-object": BadRequest("POST", "/data/data_sources", 400, 3, "", body=[{"name": "stripe"}]),
    "body-scalar-for-list": BadRequest("POST", "/data/invoices", 400, 3, "invoices", raw_body=b"42"),
    "body-too-deep": BadRequest("POST", "/data/invoices", 400, 3, "deep", raw_body=b"[" * 200 + b"]" * 200),
    "body-nul-in-string": BadRequest("POST", "/data/data_sources", 400, 3, "NUL", "name", body={"name": "a\u0000b"}),
    "body-oversize": BadRequest(
        "POST",
        "/data/invoices",
        413,
        3,
        f"larger than {MAX_REQUEST_BODY_BYTES} bytes",
        raw_body=b'[{"id": "' + b"x" * MAX_REQUEST_BODY_BYTES + b'"}]',
    ),
    # Headers the service reads.
    "bearer-missing": BadRequest(
        "GET", f"/data/invoices?source={SOME_UUID}", 401, 16, "authorization", authorized=False
    ),
    "bearer-unknown": BadRequest(
        "GET",
        f"/data/invoices?source={SOME_UUID}",
        401,
        16,
        "unknown or revoked API key",
        headers={"Authorization": "Bearer irk_not_a_key"},
        authorized=False,
    ),
    "authorization-not-bearer": BadRequest(
        "GET",
        f"/data/invoices?source={SOME_UUID}",
        401,
        16,
        "authorization",
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
    ),
    "version-missing": BadRequest("GET", f"/api/invoices/{SOME_UUID}", 400, 3, "Version", "Version"),
    "version-unknown": BadRequest(
        "GET", f"/api/invoices/{SOME_UUID}", 400, 3, "unknown API version 'V9'", "Version", headers={"Version": "V9"}
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
async def test_bad_request_gets_a_json_4xx_never_a_5xx_hang_or_drop(gateway: Gateway, api: Api, name: str) -> None:
    case = BAD_REQUESTS[name]
    headers = dict(case.headers)
    # A hang raises TimeoutError and a dropped connection URLError / RemoteDisconnected here.
    reply = await gateway.request(
        case.method,
        case.path,
        key=api.key if case.authorized and "Authorization" not in headers else None,
        headers=headers,
        body=case.body,
        raw_body=case.raw_body,
    )
    assert reply.status == case.status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == case.code, body
    assert case.message in body["message"], body
    if case.violated is not None:
        assert case.violated in violated_fields(reply)


@pytest.mark.parametrize("padding", ["path", "header"])
async def test_largest_accepted_request_reaches_the_server_not_a_429(gateway: Gateway, api: Api, padding: str) -> None:
    """At the edge of both header limits (size and count) the request still reaches the server
    and gets its answer (here: 400, `source` is not a UUID), never gRPC's RESOURCE_EXHAUSTED for
    metadata beyond its 8 KiB limit."""
    # urllib sends Host, User-Agent, Accept-Encoding, Connection and Authorization itself.
    extra = {f"x-h{n:02d}": "v" for n in range(MAX_REQUEST_HEADERS_COUNT - 5)}
    size = MAX_REQUEST_HEADERS_KIB * 1024
    while True:
        if padding == "path":
            path, headers = "/data/invoices?source=" + "a" * size, extra
        else:
            path, headers = "/data/invoices?source=a", {**extra, "x-h00": "v" * size}
        reply = await gateway.request("GET", path, key=api.key, headers=headers)
        if reply.status != 431:
            break
        size -= 32
    assert size > (MAX_REQUEST_HEADERS_KIB - 1) * 1024
    assert reply.status == 400, reply.body[:200]
    assert violated_fields(reply) == ["source"]


async def test_permission_denied_is_403_json(gateway: Gateway, api: Api) -> None:
    # A real cause: generate-marketplace by a tenant without a marketplace customer id (seed 000).
    reply = await gateway.request(
        "POST",
        "/api/v1/invoice-receipts/generate-marketplace",
        key=api.key,
        body={"period_start": "2026-02-01", "period_end": "2026-02-28"},
    )
    assert reply.status == 403
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["code"] == 7
    assert "marketplace customer id" in reply.json()["message"]
    assert error_detail(reply, "google.rpc.ErrorInfo")["reason"] == "PERMISSION_DENIED"


async def test_bearer_scheme_is_case_insensitive_and_version_reaches_the_service(gateway: Gateway, api: Api) -> None:
    path = f"/api/invoices/{uuid.uuid4()}"
    for scheme in ("Bearer", "bearer", "BEARER"):
        reply = await gateway.request("GET", path, headers={"Authorization": f"{scheme} {api.key}", "Version": "V0"})
        # Authenticated and past the version check: the invoice itself is what is missing.
        assert reply.status == 404, (scheme, reply.body)
        assert reply.json()["code"] == 5


# --- 429: the per-tenant cap on concurrent streams --------------------------------------------


async def test_stream_beyond_the_tenants_cap_is_429_json_until_one_ends(
    gateway: Gateway, api: Api, other_api: Api, server: BuiltServer
) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 3000)
    # A client that reads slowly: a small flow-control window keeps each export running.
    slow = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=slow) as channel:
        stub = invoice_service_pb2_grpc.InvoiceServiceStub(channel)
        running = []
        for _ in range(MAX_CONCURRENT_STREAMS_PER_TENANT):
            call = stub.ExportInvoices(isvc.ExportInvoicesRequest(format=isvc.EXPORT_FORMAT_CSV), metadata=api.metadata)
            assert (await call.read()) is not grpc.aio.EOF
            running.append(call)
        try:
            reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/csv", key=api.key)
            assert reply.status == 429
            assert reply.headers["content-type"] == "application/json"
            body = reply.json()
            assert body["code"] == 8
            assert body["message"] == (
                f"too many concurrent streams: at most {MAX_CONCURRENT_STREAMS_PER_TENANT} streams or exports"
                " of one tenant may run at once; retry when one has finished"
            )
            (violation,) = error_detail(reply, "google.rpc.QuotaFailure")["violations"]
            assert violation["subject"] == f"tenant:{api.tenant_id}"
            info = error_detail(reply, "google.rpc.ErrorInfo")
            assert info["reason"] == "TOO_MANY_CONCURRENT_STREAMS"
            assert info["metadata"] == {
                "limit": str(MAX_CONCURRENT_STREAMS_PER_TENANT),
                "request_id": reply.headers["x-request-id"],
            }

            # Native callers get the same status; other tenants are not affected.
            extra = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(), metadata=api.metadata)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await extra.read()
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            elsewhere = await gateway.request("GET", "/api/v1/invoice-receipts/export/json", key=other_api.key)
            assert elsewhere.status == 200

            running.pop().cancel()
            for _ in range(100):
                reply = await gateway.request("GET", "/api/v1/invoice-receipts/export/json", key=api.key)
                if reply.status != 429:
                    break
                await asyncio.sleep(0.05)
            assert reply.status == 200
        finally:
            for call in running:
                call.cancel()


# --- health checking of the gRPC upstream ----------------------------------------------------


def test_envoy_health_checks_the_grpc_upstream(tmp_path: Path) -> None:
    settings = GatewaySettings(health_check_interval_seconds=0.5)
    config = build_envoy_config(settings, build_descriptor_set(tmp_path / "set.pb"))
    (cluster,) = config["static_resources"]["clusters"]
    assert cluster["name"] == GRPC_CLUSTER
    (check,) = cluster["health_checks"]
    assert check["grpc_health_check"] == {}
    assert check["interval"] == check["no_traffic_interval"] == "0.500s"
    # Panic routing off: an unhealthy single host gets no traffic (503) rather than all of it.
    assert cluster["common_lb_config"]["healthy_panic_threshold"] == {"value": 0.0}
    connection_manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    health_filter = connection_manager["http_filters"][0]["typed_config"]
    assert health_filter["headers"] == [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}]
    assert health_filter["cluster_min_healthy_percentages"] == {GRPC_CLUSTER: {"value": 100.0}}
    assert connection_manager["max_request_headers_kb"] == MAX_REQUEST_HEADERS_KIB
    assert connection_manager["common_http_protocol_options"] == {"max_headers_count": MAX_REQUEST_HEADERS_COUNT}
    assert connection_manager["http_filters"][1]["typed_config"]["max_request_bytes"] == MAX_REQUEST_BODY_BYTES
