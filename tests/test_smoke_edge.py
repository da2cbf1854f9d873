"""The edge: auth on every rpc but health and reflection; health answers SERVING."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoice_rpc.v1 import invoice_service_pb2 as isvc

from tests.conftest import Api


async def test_health_needs_no_key(channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


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
