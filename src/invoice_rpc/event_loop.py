"""The event loop every command runs on: uvloop where it is installed (it is a dependency on
Linux and macOS), else asyncio's own.

A list page served on uvloop runs 9.6% fewer instructions than on asyncio's loop (callgrind,
300 pages of the bench's list at 4 in flight: 3.38M against 3.74M a page): the loop's own
work per call (tasks, futures, socket readiness for gRPC's poller and psycopg) is done in C.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # Windows, or installed without it
    uvloop = None  # type: ignore[assignment]

# uvloop starts subprocesses (server workers, Envoy) with fork() before exec, where asyncio's
# loop used vfork: gRPC's fork handlers then ran for every child and logged "Other threads are
# currently calling into gRPC, skipping fork() handlers". They serve programs that fork and go
# on using gRPC in the child; this service never does (its workers are fresh interpreters). gRPC
# reads the setting when it is first imported: the CLI imports this module before any module
# that imports grpc. A setting in the environment wins.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop of `new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
