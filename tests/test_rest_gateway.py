"""The REST gateway itself: a real Envoy (generated config, Lua shim, transcoder) in front of
the real server, called with a real HTTP client, on both databases: errors, health, limits."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from invoice_rpc.gateway.config import build_envoy_config
from invoice_rpc.gateway.descriptors import build_descriptor_set, rest_services
from invoice_rpc.gateway.envoy import EnvoyProcess, GatewaySettings, run_gateway, write_envoy_config
from invoice_rpc.rpc.faces import FACE_SERVICE_NAMES
from invoice_rpc.rpc.server import BuiltServer, build_server
from invoice_rpc.storage.database import Database
from tests.conftest import Api
from tests.gateway_harness import Gateway, RestClient, gateway

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
