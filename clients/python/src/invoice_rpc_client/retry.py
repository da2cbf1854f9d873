"""Retrying idempotent calls: exponential backoff with jitter, bounded attempts and deadline.

Only calls that are safe to repeat are ever retried (the client decides per method; see
`InvoiceRpcClient`), and only on codes that mean "the call may not have been served":
UNAVAILABLE and DEADLINE_EXCEEDED by default. Every other error is raised at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from invoice_rpc_client.exceptions import InvoiceRpcError, from_rpc_error

T = TypeVar("T")

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class RetryPolicy:
    """How an idempotent call is retried.

    The n-th retry (from 0) waits a random time between half and all of
    `min(initial_backoff * multiplier**n, max_backoff)` seconds ("equal jitter": callers that
    failed together do not come back together). No attempt starts after `deadline` seconds
    from the first one, and each attempt's own timeout is cut to what remains of it.
    `on_error` is called with each error that is about to be retried (for logging or metrics).
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    deadline: float = 60.0
    retryable_codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES
    on_error: Callable[[InvoiceRpcError], None] | None = field(default=None, compare=False)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (0 for the first retry)."""
        ceiling = min(self.initial_backoff * self.multiplier**retry_number, self.max_backoff)
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)


NO_RETRY = RetryPolicy(max_attempts=1)


class _Attempts:
    """Book-keeping shared by the sync and asyncio loops: may we retry, how long to wait."""

    def __init__(self, policy: RetryPolicy, call_timeout: float | None) -> None:
        self.policy = policy
        self.timeout = call_timeout
        self.number = 0
        self.give_up_at = time.monotonic() + policy.deadline

    def attempt_timeout(self) -> float | None:
        remaining = max(self.give_up_at - time.monotonic(), 0.001)
        return remaining if self.timeout is None else min(self.timeout, remaining)

    def next_wait(self, error: grpc.RpcError) -> tuple[InvoiceRpcError, float | None]:
        """The typed error, and how long to sleep before retrying (None: raise it now)."""
        typed = from_rpc_error(error)
        self.number += 1
        if typed.code not in self.policy.retryable_codes or self.number >= self.policy.max_attempts:
            return typed, None
        wait = self.policy.backoff(self.number - 1)
        if time.monotonic() + wait >= self.give_up_at:
            return typed, None
        if self.policy.on_error is not None:
            self.policy.on_error(typed)
        return typed, wait


def call_with_retry(call: Callable[[float | None], T], policy: RetryPolicy, call_timeout: float | None) -> T:
    """`call(attempt_timeout)` until it succeeds, retrying as `policy` allows; typed errors."""
    attempts = _Attempts(policy, call_timeout)
    while True:
        try:
            return call(attempts.attempt_timeout())
        except grpc.RpcError as error:
            typed, wait = attempts.next_wait(error)
            if wait is None:
                raise typed from error
        time.sleep(wait)


def stream_with_retry(
    start: Callable[[float | None], Iterator[T]], policy: RetryPolicy, call_timeout: float | None
) -> Iterator[T]:
    """The messages of the stream `start(call_timeout)` opens. Opening is retried until the first
    message arrives; after that the stream is never restarted (it would repeat messages)."""
    attempts = _Attempts(policy, call_timeout)
    while True:
        try:
            stream = start(call_timeout)
            first = next(stream)
            break
        except StopIteration:
            return
        except grpc.RpcError as error:
            typed, wait = attempts.next_wait(error)
            if wait is None:
                raise typed from error
        time.sleep(wait)
    try:
        yield first
        yield from stream
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        # A consumer that stops early must not leave the call running on the server.
        _cancel(stream)


async def acall_with_retry(
    call: Callable[[float | None], Awaitable[T]], policy: RetryPolicy, call_timeout: float | None
) -> T:
    """The asyncio twin of `call_with_retry`."""
    attempts = _Attempts(policy, call_timeout)
    while True:
        try:
            return await call(attempts.attempt_timeout())
        except grpc.RpcError as error:
            typed, wait = attempts.next_wait(error)
            if wait is None:
                raise typed from error
        await asyncio.sleep(wait)


async def astream_with_retry(
    start: Callable[[float | None], AsyncIterable[T]], policy: RetryPolicy, call_timeout: float | None
) -> AsyncIterator[T]:
    """The asyncio twin of `stream_with_retry`; `start` returns the call (cancelled when the
    consumer stops early)."""
    attempts = _Attempts(policy, call_timeout)
    while True:
        try:
            stream = start(call_timeout)
            messages = aiter(stream)
            first = await anext(messages)
            break
        except StopAsyncIteration:
            return
        except grpc.RpcError as error:
            typed, wait = attempts.next_wait(error)
            if wait is None:
                raise typed from error
        await asyncio.sleep(wait)
    try:
        yield first
        async for message in messages:
            yield message
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        _cancel(stream)


def _cancel(stream: object) -> None:
    cancel = getattr(stream, "cancel", None)
    if callable(cancel):
        cancel()
