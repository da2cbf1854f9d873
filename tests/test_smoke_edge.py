"""The edge: auth on every rpc but health and reflection; health answers SERVING; reflection
lists every service and every method is served; a call the client cancels stops its database
work."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from sqlalchemy import text

from invoice_rpc import event_loop
from invoice_rpc.rpc.server import SERVICE_NAMES
from tests.conftest import Api


async def test_health_needs_no_key(channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_every_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = [reply async for reply in stub.ServerReflectionInfo(iter([request]))]
    listed = {service.name for service in replies[0].list_services_response.service}
    assert listed == {*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME}


async def test_every_method_of_every_service_is_served(channel: grpc.aio.Channel) -> None:
    # The services are registered as generic handlers (server._GenericHandlersOnly): each of
    # their methods must still be found, and answer UNAUTHENTICATED without a key rather than
    # UNIMPLEMENTED.
    called = 0
    for service_name in SERVICE_NAMES:
        service = descriptor_pool.Default().FindServiceByName(service_name)
        for method in service.methods:
            path = f"/{service_name}/{method.name}"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                if method.server_streaming:
                    async for _ in channel.unary_stream(path)(b""):
                        pass
                else:
                    await channel.unary_unary(path)(b"")
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, path
            called += 1
    assert called >= len(SERVICE_NAMES) > 0


async def test_missing_key_is_unauthenticated(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_number="INV-2026-0001"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_key_is_unauthenticated(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(
            isvc.GetInvoiceRequest(invoice_number="INV-2026-0001"),
            metadata=(("authorization", "Bearer irk_not-a-key"),),
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _backends_waiting_on_a_lock(api: Api) -> int:
    async with api.db.read() as probe:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int((await probe.execute(query)).scalar_one())


async def test_a_call_the_client_cancels_stops_its_query_quietly(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # The page's SELECT waits on a lock another session holds, so the client's cancel reaches
    # the server in the middle of the database call.
    if api.db.dialect != "postgresql":
        pytest.skip("SQLite reads do not wait on a table lock")
    async with api.db.write() as blocker:
        await blocker.execute(text("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE"))
        with caplog.at_level(logging.INFO, logger="invoice_rpc"):
            call = api.invoices.ListInvoices(isvc.ListInvoicesRequest(), metadata=api.metadata)
            for _ in range(50):
                if await _backends_waiting_on_a_lock(api):
                    break
                await asyncio.sleep(0.05)
            assert await _backends_waiting_on_a_lock(api) == 1
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            for _ in range(50):
                if not await _backends_waiting_on_a_lock(api):
                    break
                await asyncio.sleep(0.05)

            # The server cancelled its query (the lock is still held), and nothing was logged
            # as a failure: a caller that gives up is not an error of the service.
            assert await _backends_waiting_on_a_lock(api) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_tests_run_on_the_service_event_loop() -> None:
    # The commands run on invoice_rpc.event_loop's loop, uvloop (a dependency off Windows); so
    # does this suite.
    assert event_loop.uvloop is not None
    assert isinstance(asyncio.get_running_loop(), event_loop.uvloop.Loop)
