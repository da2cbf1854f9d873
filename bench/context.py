"""What every scenario gets: the settings, the seeded tenants, the running servers and gateway,
a client channel, and helpers to repeat measurements and capture the SQL an operation runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import psycopg
from sqlalchemy import event

from bench.report import Figure
from bench.seed import SeededTenant
from bench.servers import Gateway, ServerFleet
from invoice_rpc.storage.database import Database

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    database: str  # "postgresql" or "sqlite"
    url: str
    invoices: int
    small_invoices: int  # the small tenant, for the export's memory comparison
    repetitions: int
    load_seconds: float  # each load-generator run
    bulk_invoices: int
    bulk_batch: int
    bulk_concurrency: int  # batches in flight at once, as an importer with several connections
    workers: int
    only: frozenset[str]
    reuse: bool  # keep an already seeded database of the same N
    stats_wait: float  # seconds for PostgreSQL to publish table statistics (n_tup_upd)


@dataclass
class BenchContext:
    settings: Settings
    db: Database
    big: SeededTenant
    small: SeededTenant
    fleet: ServerFleet
    gateway: Gateway | None
    channel: grpc.aio.Channel
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_postgresql(self) -> bool:
        return self.settings.database == "postgresql"

    def metadata(self, tenant: SeededTenant | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {(tenant or self.big).api_key}"),)

    async def repeat(self, measure: Callable[[], Awaitable[T]]) -> list[T]:
        """`measure` run `repetitions` times, one after the other."""
        return [await measure() for _ in range(self.settings.repetitions)]

    @asynccontextmanager
    async def captured_sql(self) -> AsyncIterator[list[tuple[str, Any]]]:
        """Every (statement, parameters) the bench process sends to the database driver inside
        the block, transaction control excluded. On PostgreSQL taken at psycopg's cursors, which
        also sees what the service runs on the driver directly (storage/driver_rows.py), and
        what a connection runs when it is opened or pinged: check the connection out first
        (`await session.connection()`). On SQLite taken at the engine."""
        captured: list[tuple[str, Any]] = []

        def keep(statement: Any, parameters: Any) -> None:
            text = statement if isinstance(statement, str) else str(statement)
            if text.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
                captured.append((text, parameters))

        if self.is_postgresql:
            originals = {cls: cls.execute for cls in (psycopg.AsyncCursor, psycopg.AsyncServerCursor)}

            def recording(original: Any) -> Any:
                async def execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
                    keep(query, params)
                    return await original(cursor, query, params, **kwargs)

                return execute

            for cls, original in originals.items():
                cls.execute = recording(original)  # type: ignore[method-assign]
            try:
                yield captured
            finally:
                for cls, original in originals.items():
                    cls.execute = original  # type: ignore[method-assign]
            return

        engine = self.db.read_engine.sync_engine

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
            keep(statement, parameters)

        event.listen(engine, "before_cursor_execute", capture)
        try:
            yield captured
        finally:
            event.remove(engine, "before_cursor_execute", capture)


def new_request_id() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"
