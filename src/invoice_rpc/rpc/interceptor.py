"""The edge every rpc passes through: bearer auth, the caller's context, the per-tenant cap on
concurrent streams, and the mapping of errors to statuses (domain errors through rpc/errors.py;
anything else is logged with the request id and answered as a bare INTERNAL)."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from invoice_rpc.domain.errors import DomainError, InvalidArgument, Unauthenticated
from invoice_rpc.logs import log
from invoice_rpc.rpc.errors import internal_status, rich_status, stream_limit_status
from invoice_rpc.rpc.request_text import nul_violations
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.tenants import KeyCache, TenantKey, authenticate
from invoice_rpc.storage.database import Database

logger = logging.getLogger("invoice_rpc.rpc")

# Methods anyone may call: health checks and server reflection.
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Server-streaming calls (streams and exports, also through the REST faces) one tenant may have
# running at once in one server process. Each holds a database connection and its transaction
# (a basic-view StreamInvoices on PostgreSQL three, and up to ~35 MB of wire bytes read ahead:
# service/invoice_ranges.py) for as long as it streams, and the connection pool is shared by
# every tenant: without a cap a single tenant could take them all. One more is
# RESOURCE_EXHAUSTED (HTTP 429) at once, before anything is read or sent; the caller retries
# once one of its streams has finished.
MAX_CONCURRENT_STREAMS_PER_TENANT = 4

_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")
_TENANT_KEY: contextvars.ContextVar[TenantKey] = contextvars.ContextVar("tenant_key")


def current_caller() -> Caller:
    """The authenticated caller of the rpc being served."""
    return _CALLER.get()


def current_tenant_key() -> TenantKey:
    """The authenticated key's tenant facts (e.g. its marketplace customer id)."""
    return _TENANT_KEY.get()


def _metadata_value(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


class StreamSlots:
    """How many server-streaming calls each tenant has running, against a cap. The server runs on
    one event loop, so taking and giving back a slot needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: Counter[uuid.UUID] = Counter()

    def take(self, tenant_id: uuid.UUID) -> bool:
        """Take one of the tenant's slots; False (nothing taken) when all are in use."""
        if self._running[tenant_id] >= self.limit:
            return False
        self._running[tenant_id] += 1
        return True

    def give_back(self, tenant_id: uuid.UUID) -> None:
        self._running[tenant_id] -= 1
        if self._running[tenant_id] <= 0:
            del self._running[tenant_id]


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, db: Database, *, max_streams_per_tenant: int = MAX_CONCURRENT_STREAMS_PER_TENANT) -> None:
        self.db = db
        self.keys = KeyCache()
        self.streams = StreamSlots(max_streams_per_tenant)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PUBLIC_METHOD_PREFIXES):
            return handler
        metadata = handler_call_details.invocation_metadata
        request_id = _metadata_value(metadata, "x-request-id") or str(uuid.uuid4())
        authorization = _metadata_value(metadata, "authorization")
        return _wrap(handler, self, method, request_id, authorization)

    async def authenticate(self, authorization: str | None) -> TenantKey:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("missing `authorization: Bearer <key>` metadata")
        key = authorization[7:].strip()
        cached = self.keys.get(key)
        if cached is not None:
            return cached
        async with self.db.read() as session:
            tenant_key = await authenticate(session, key)
        self.keys.put(key, tenant_key)
        return tenant_key


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException, method: str, request_id: str
) -> None:
    if isinstance(error, DomainError):
        log(logger, logging.INFO, "rpc.rejected", method=method, request_id=request_id, error=error.message)
        await context.abort_with_status(rpc_status.to_status(rich_status(error, request_id)))
    log(logger, logging.ERROR, "rpc.failed", method=method, request_id=request_id)
    await context.abort_with_status(rpc_status.to_status(internal_status(request_id)))


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    edge: EdgeInterceptor,
    method: str,
    request_id: str,
    authorization: str | None,
) -> grpc.RpcMethodHandler[Any, Any]:
    # types-grpcio describes a handler's behaviours as the sync server's (grpc.ServicerContext,
    # plain iterators); on grpc.aio they take an aio context and are coroutines or async
    # generators, hence the ignores on the calls below.
    async def enter(request: Any) -> None:
        tenant_key = await edge.authenticate(authorization)
        _TENANT_KEY.set(tenant_key)
        _CALLER.set(Caller(tenant_id=tenant_key.tenant_id, api_key_id=tenant_key.api_key_id, request_id=request_id))
        # Checked for every rpc here rather than in each servicer: no stored text may hold U+0000.
        if violations := nul_violations(request):
            raise InvalidArgument(violations)

    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                await enter(request)
                return await behavior(request, context)  # type: ignore[arg-type]
            except (DomainError, Exception) as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await _abort(context, error, method, request_id)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )

    if handler.unary_stream is not None:
        stream_behavior = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                await enter(request)
            except (DomainError, Exception) as error:
                await _abort(context, error, method, request_id)
            tenant_id = current_caller().tenant_id
            if not edge.streams.take(tenant_id):
                log(logger, logging.INFO, "rpc.stream_limit", method=method, request_id=request_id, tenant_id=tenant_id)
                await context.abort_with_status(
                    rpc_status.to_status(stream_limit_status(edge.streams.limit, tenant_id, request_id))
                )
            try:
                async for response in stream_behavior(request, context):  # type: ignore[arg-type,attr-defined]
                    yield response
            except (DomainError, Exception) as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await _abort(context, error, method, request_id)
            finally:
                # Also when the caller cancels: the generator is closed and this runs.
                edge.streams.give_back(tenant_id)

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )

    raise TypeError(f"{method}: client-streaming rpcs are not part of this API")
