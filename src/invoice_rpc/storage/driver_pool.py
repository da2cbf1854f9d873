"""PostgreSQL connections for single-statement reads, kept as psycopg opens them, in autocommit.

A list page is one statement run on the driver directly (storage/driver_rows.py). Taking its
connection from the engine's pool cost more than the page's own Python work around the driver:
SQLAlchemy's checkout and return through greenlets, its pool events, and two isolation-level
flips (autocommit on for the page, off again for the next transaction): 0.30M of a page's 3.38M
instructions (callgrind, the bench's page). Here a checkout is a pop from a list.

The connections are opened with the engine's own connect arguments (its dialect's, with its type
adapters, plus the application name and planner options), and are always in autocommit: nothing
here ever runs in a transaction, so there is nothing to flip and nothing to roll back. A
connection that comes back broken, closed or inside a transaction (the block ran BEGIN, or a
query was cut short) is closed rather than kept. One that sat idle for a while is pinged before
use and replaced if PostgreSQL dropped it, as the engine's pool does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Dialect


@dataclass(frozen=True, slots=True)
class DriverConnection:
    """A checked-out psycopg connection (autocommit) and the dialect that compiles statements
    and processes values for it, as the engine would."""

    driver: psycopg.AsyncConnection[Any]
    dialect: Dialect


class DriverPool:
    """At most `size` connections open at once, the most recently returned used first; opened
    when first needed, closed by `close()`."""

    def __init__(self, dialect: Dialect, connect_kwargs: Mapping[str, Any], *, size: int, idle_ping_seconds: float):
        self.dialect = dialect
        self.size = size
        self.idle_ping_seconds = idle_ping_seconds
        self._connect_kwargs = dict(connect_kwargs)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[DriverConnection]:
        """A connection for the block; waits while `size` are in use."""
        async with self._slots:
            if self._closed:
                raise RuntimeError("the driver pool is closed")
            driver = await self._checkout()
            try:
                yield DriverConnection(driver, self.dialect)
            finally:
                await self._checkin(driver)

    async def close(self) -> None:
        """Close the idle connections now, and the ones in use when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for driver, _ in idle:
            await driver.close()

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            driver, idle_since = self._idle.pop()
            if time.monotonic() - idle_since < self.idle_ping_seconds:
                return driver
            if await _answers(driver):
                return driver
            await driver.close()
        return await psycopg.AsyncConnection.connect(autocommit=True, **self._connect_kwargs)

    async def _checkin(self, driver: psycopg.AsyncConnection[Any]) -> None:
        reusable = not driver.closed and not driver.broken and driver.info.transaction_status == TransactionStatus.IDLE
        if reusable and not self._closed:
            self._idle.append((driver, time.monotonic()))
        else:
            await driver.close()


async def _answers(driver: psycopg.AsyncConnection[Any]) -> bool:
    try:
        await driver.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True
