"""Several PostgreSQL connections that read one snapshot: a read spread over backends that still
sees the database as of a single moment, as `pg_dump --jobs` does.

The leader's transaction is REPEATABLE READ and exports its snapshot (`pg_export_snapshot()`);
every helper opens its own REPEATABLE READ transaction and imports it (`SET TRANSACTION SNAPSHOT`)
before reading anything. Helpers are opened on demand, from the engine's pool. Everything is
read-only and rolled back at the end. A helper whose query was cancelled is discarded, not
returned to the pool: its backend may still be busy with the statement.
"""

from __future__ import annotations

import re
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The exported id is hex fields joined by dashes (e.g. 00000003-0000001B-1); SET TRANSACTION
# SNAPSHOT takes no bound parameter, so the id is checked before it is written into the statement.
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")
_OPTIONS = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


class SharedSnapshot:
    """`async with SharedSnapshot(engine) as snapshot`: `snapshot.leader` is open, and each
    `await snapshot.helper()` is a new connection that sees exactly what the leader sees."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._snapshot_id = ""
        self._helpers: list[AsyncConnection] = []
        self._leader: AsyncConnection | None = None

    @property
    def leader(self) -> AsyncConnection:
        if self._leader is None:
            raise RuntimeError("the shared snapshot is not open")
        return self._leader

    async def __aenter__(self) -> SharedSnapshot:
        leader = await _open_transaction(self._engine)
        try:
            snapshot_id = (await leader.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
        except BaseException:
            await leader.close()
            raise
        if not _SNAPSHOT_ID.fullmatch(snapshot_id):
            await leader.close()
            raise RuntimeError(f"unexpected snapshot id {snapshot_id!r}")
        self._leader, self._snapshot_id = leader, snapshot_id
        return self

    async def helper(self) -> AsyncConnection:
        """A new connection whose transaction reads the leader's snapshot; closed with the rest."""
        if self._leader is None:
            raise RuntimeError("the shared snapshot is not open")
        connection = await _open_transaction(self._engine)
        self._helpers.append(connection)
        await connection.execute(text(f"SET TRANSACTION SNAPSHOT '{self._snapshot_id}'"))
        return connection

    async def discard(self, connection: AsyncConnection) -> None:
        """Drop a helper whose statement was interrupted: its connection is closed, not pooled."""
        self._helpers.remove(connection)
        await connection.invalidate()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        connections, self._helpers = [*self._helpers, self.leader], []
        self._leader = None
        failure: BaseException | None = None
        for connection in connections:  # every one, even after one fails to close
            try:
                await connection.close()
            except BaseException as closing_error:
                failure = failure or closing_error
        if failure is not None and error is None:
            raise failure


async def _open_transaction(engine: AsyncEngine) -> AsyncConnection:
    connection = await engine.connect()
    try:
        await connection.execution_options(**_OPTIONS)
        await connection.begin()
    except BaseException:
        await connection.close()
        raise
    return connection
