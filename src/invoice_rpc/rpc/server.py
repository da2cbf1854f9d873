"""Building and running the gRPC server: servicers, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any, cast

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from invoice_rpc.v1 import (
    import_service_pb2,
    import_service_pb2_grpc,
    invoice_service_pb2,
    invoice_service_pb2_grpc,
)

from invoice_rpc.logs import log
from invoice_rpc.rpc.faces import FACE_SERVICE_NAMES, add_face_servicers
from invoice_rpc.rpc.import_servicer import ImportServicer
from invoice_rpc.rpc.interceptor import EdgeInterceptor
from invoice_rpc.rpc.invoice_servicer import InvoiceServicer
from invoice_rpc.storage.database import Database

logger = logging.getLogger("invoice_rpc.server")

SERVICE_NAMES = (
    invoice_service_pb2.DESCRIPTOR.services_by_name["InvoiceService"].full_name,
    import_service_pb2.DESCRIPTOR.services_by_name["ImportService"].full_name,
    *FACE_SERVICE_NAMES,
)
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
YOUNG_GC_THRESHOLD = 10_000


class _Registration:
    """Stands in for the server while generated code registers a service: keeps its handlers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers arrive by name below

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, dict(handlers)


class _GenericHandlersOnly:
    """Stands in for the server while generated code registers a service: its handlers are added
    as generic handlers only, never as registered methods. grpc.aio keeps a pending request for
    every registered method and waits on all of them (asyncio.wait) for each call it accepts:
    with this server's 51 methods that was 7% of a list page's instructions (callgrind: 4.01M
    against 3.72M a page), paid by every rpc. A generic handler is found by its full method
    name in a dict, one per service."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        pass  # the same handlers arrived as a generic handler just before


def _response_bytes(response: Message | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_invoice_service(server: grpc.aio.Server, servicer: InvoiceServicer) -> None:
    """InvoiceService as generated, except that StreamInvoices and ListInvoices may also answer
    with a response's wire bytes (the basic view on PostgreSQL, framed by rpc/invoice_wire.py),
    which are sent as they are: parsing them into a message only to serialize it again cost the
    server about 1 µs an invoice, on a path where the server's CPU is shared with the database's."""
    registration = _Registration()
    invoice_service_pb2_grpc.add_InvoiceServiceServicer_to_server(servicer, registration)  # type: ignore[arg-type]
    for method in ("StreamInvoices", "ListInvoices"):
        handler = registration.handlers[method]
        registration.handlers[method] = handler._replace(  # type: ignore[attr-defined]
            response_serializer=_response_bytes
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(registration.service, registration.handlers),)
    )


class BuiltServer:
    """A server bound to its port but not started, with its health servicer."""

    def __init__(self, server: grpc.aio.Server, port: int, health_servicer: health_aio.HealthServicer) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking new calls, let in-flight ones finish within the grace period."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_seconds)


def build_server(db: Database, address: str = "127.0.0.1:0", *, reuse_port: bool = False) -> BuiltServer:
    """The server with every service registered, bound to `address` (port 0: any free port)."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    server = grpc.aio.server(interceptors=[EdgeInterceptor(db)], options=options)
    add_invoice_service(server, InvoiceServicer(db))
    # Every other service through the generated functions, as generic handlers only.
    registry = cast(grpc.aio.Server, _GenericHandlersOnly(server))
    import_service_pb2_grpc.add_ImportServiceServicer_to_server(ImportServicer(db), registry)
    add_face_servicers(registry, db)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registry)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), registry)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    return BuiltServer(server, port, health_servicer)


async def run_server(
    db: Database,
    address: str,
    *,
    grace_seconds: float = 10.0,
    reuse_port: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (without one: until SIGTERM or SIGINT), then drain in-flight
    calls and return."""
    built = build_server(db, address, reuse_port=reuse_port)
    await built.start()
    # What start-up built (modules, descriptors, the engine) lives as long as the process: out of
    # the collector's sight, a full collection walks only what requests made (it took 90-140 ms
    # every few dozen import batches with everything in view).
    gc.freeze()
    # Requests' objects die young and are freed by reference counting; at the default threshold
    # (700 net new containers) the young collections walked every in-flight request's objects,
    # ~0.08 ms a list page with 16 pages in flight. Cycles are collected a little later instead.
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    log(logger, logging.INFO, "server.started", address=address, port=built.port)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log(logger, logging.INFO, "server.stopping", grace_seconds=grace_seconds)
    await built.stop(grace_seconds)
    log(logger, logging.INFO, "server.stopped")
