"""Channel settings shared by the sync and asyncio clients."""

from __future__ import annotations

MAX_MESSAGE_BYTES = 32 * 1024 * 1024

# gRPC waits 1 s (growing to 120 s) before reconnecting to a server it could not reach, and
# fails calls at once meanwhile; our retries already back off, so let the channel try sooner.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
)
