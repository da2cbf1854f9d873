"""The "same SQL through the driver alone" ceiling, in its own process:
`python -m bench.sql_replay SPEC.pickle` replays a captured list of (statement, parameters)
as one unit of work, from `concurrency` connections for `seconds`, fetching every row (in
binary when the spec says `binary`, as the server reads list pages on PostgreSQL), and prints
{"latencies_ms", "seconds"}.

PostgreSQL: psycopg's async connections (the server's driver) on the server's event loop
(invoice_rpc.event_loop), with the server's session settings, in autocommit as the server reads
pages (Database.read_autocommit: no BEGIN or ROLLBACK). SQLite: the sqlite3 module in threads
(what aiosqlite runs underneath), one connection each.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sqlite3
import sys
import threading
import time
from typing import Any

import psycopg

from invoice_rpc import event_loop
from invoice_rpc.storage.database import POSTGRESQL_SESSION_OPTIONS


async def _postgresql(spec: dict[str, Any]) -> dict[str, Any]:
    statements: list[tuple[str, Any]] = spec["statements"]
    latencies: list[float] = []
    # The service's own session settings: the same SQL, planned the same way.
    connections = [
        await psycopg.AsyncConnection.connect(spec["url"], options=POSTGRESQL_SESSION_OPTIONS, autocommit=True)
        for _ in range(spec["concurrency"])
    ]
    deadline = time.perf_counter() + spec["seconds"]

    async def worker(connection: psycopg.AsyncConnection[Any]) -> None:
        async with connection.cursor(binary=spec.get("binary", False)) as cursor:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                for statement, parameters in statements:
                    await cursor.execute(statement, parameters)
                    await cursor.fetchall()
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    seconds = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return {"latencies_ms": latencies, "seconds": seconds}


def _sqlite(spec: dict[str, Any]) -> dict[str, Any]:
    statements: list[tuple[str, Any]] = spec["statements"]
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + spec["seconds"]

    def worker() -> None:
        connection = sqlite3.connect(spec["path"], isolation_level=None, check_same_thread=False)
        mine = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.execute("BEGIN")
            for statement, parameters in statements:
                connection.execute(statement, parameters).fetchall()
            connection.execute("ROLLBACK")
            mine.append((time.perf_counter() - started) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(spec["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies_ms": latencies, "seconds": time.perf_counter() - started}


def main() -> None:
    with open(sys.argv[1], "rb") as file:
        spec = pickle.load(file)
    result = event_loop.run(_postgresql(spec)) if spec["dialect"] == "postgresql" else _sqlite(spec)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
