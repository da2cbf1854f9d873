"""Bearer authentication: `authorization: Bearer <key>` on every call.

Secure channels carry the key as call credentials; gRPC refuses call credentials on insecure
(plain-text, local) channels, so those get the same header from a client interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


def _with_header(metadata: Any, header: tuple[str, str]) -> list[tuple[str, Any]]:
    kept = [(k, v) for k, v in (metadata or ()) if k != "authorization"]
    return [*kept, header]


class BearerAuthInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """Adds the bearer header to every call of a sync channel."""

    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_header(details.metadata, self._header),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)


class _AioHeader:
    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*_with_header(details.metadata, self._header)),
            details.credentials,
            details.wait_for_ready,
        )


class AioBearerAuthUnaryUnary(_AioHeader, grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the bearer header to every unary call of an asyncio channel."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class AioBearerAuthUnaryStream(_AioHeader, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the bearer header to every server-streaming call of an asyncio channel."""

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


def aio_bearer_interceptors(api_key: str) -> list[grpc.aio.ClientInterceptor]:
    return [AioBearerAuthUnaryUnary(api_key), AioBearerAuthUnaryStream(api_key)]


def secure_channel_credentials(api_key: str, root_certificates: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS plus the key as call credentials (sent only over the encrypted channel)."""
    return grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates),
        grpc.access_token_call_credentials(api_key),
    )
