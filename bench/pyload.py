"""A load generator process (the fallback when h2load is not installed): reads a JSON spec on
stdin, runs `concurrency` callers for `seconds`, prints {"latencies_ms", "errors", "seconds"}.

gRPC calls send and receive raw bytes (no message parsing on this side); HTTP calls use one
keep-alive http.client connection per thread.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import threading
import time
from typing import Any

import grpc


async def _grpc(spec: dict[str, Any]) -> dict[str, Any]:
    body = bytes.fromhex(spec["body_hex"])
    metadata = (("authorization", f"Bearer {spec['key']}"),) if spec.get("key") else None
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(spec["target"]) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            spec["method"], request_serializer=None, response_deserializer=None
        )
        await call(body, metadata=metadata)
        deadline = time.perf_counter() + spec["seconds"]

        async def caller() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await call(body, metadata=metadata)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(spec["concurrency"])))
        seconds = time.perf_counter() - started
    return {"latencies_ms": latencies, "errors": errors, "seconds": seconds}


def _http(spec: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    headers = {"Authorization": f"Bearer {spec['key']}"}
    deadline = time.perf_counter() + spec["seconds"]
    lock = threading.Lock()

    def caller() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
        mine = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("GET", spec["path"], headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors[0] += 1
                continue
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(spec["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies_ms": latencies, "errors": errors[0], "seconds": time.perf_counter() - started}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_grpc(spec)) if spec["kind"] == "grpc" else _http(spec)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
