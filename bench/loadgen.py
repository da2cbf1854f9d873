"""Load generators that run in their own processes, so the bench process is never the bottleneck.

- h2load (Debian package `nghttp2-client`): a C HTTP/2 client. gRPC unary calls are plain
  HTTP/2 POSTs of a length-prefixed body with `content-type: application/grpc` and
  `te: trailers`; REST calls go over HTTP/1.1 (`--h1`). Latencies come from its per-request
  log file. One thread: on this machine's two cores it needs a fraction of one (its CPU time is
  reported with every run).
- Without h2load, `python -m bench.pyload` processes (grpc.aio with raw bytes, or http.client
  threads for REST) do the same job, more expensively; the table says which was used.

h2load only sees HTTP status 200 for gRPC calls (the grpc-status is in trailers it does not
read), so every scenario first makes the same call from Python and checks its answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    generator_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def generator_cpu_share(self) -> float:
        """The generator's CPU time as a fraction of one core over the run."""
        return self.generator_cpu_seconds / self.seconds if self.seconds else 0.0


def grpc_frame(message: bytes) -> bytes:
    """A gRPC message as sent on the wire: uncompressed flag, 4-byte length, bytes."""
    return struct.pack(">BI", 0, len(message)) + message


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def h2load_path() -> str | None:
    return shutil.which("h2load")


def generator_name() -> str:
    return "h2load (nghttp2-client)" if h2load_path() else "python -m bench.pyload processes"


async def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_h2load(
    url: str,
    *,
    concurrency: int,
    seconds: float,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    http1: bool = False,
) -> LoadResult:
    """Requests to `url` from `concurrency` connections (one request in flight on each) for
    `seconds`, after a short warm-up."""
    binary = h2load_path()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as directory:
        log_path = Path(directory) / "requests.log"
        command = [binary, "-c", str(concurrency), "-m", "1", "-t", "1", "-D", f"{round(seconds * 1000)}ms"]
        command += ["--warm-up-time", "500ms", "--log-file", str(log_path)]
        if http1:
            command.append("--h1")
        if body is not None:
            body_path = Path(directory) / "body.bin"
            body_path.write_bytes(body)
            command += ["-d", str(body_path)]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        command.append(url)
        before = await _children_cpu()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        cpu = await _children_cpu() - before
        if process.returncode != 0:
            raise RuntimeError(f"h2load failed ({process.returncode}):\n{output.decode(errors='replace')[-2000:]}")
        latencies, errors, first, last = [], 0, None, None
        for line in log_path.read_text().splitlines():
            start_us, status, elapsed_us = (int(v) for v in line.split("\t")[:3])
            if status != 200:
                errors += 1
                continue
            latencies.append(elapsed_us / 1000)
            first = start_us if first is None else min(first, start_us)
            last = start_us + elapsed_us if last is None else max(last, start_us + elapsed_us)
    latencies.sort()
    span = (last - first) / 1e6 if first is not None and last is not None else seconds
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=span,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        generator_cpu_seconds=cpu,
    )


async def run_python_load(spec: dict[str, object], *, processes: int = 2) -> LoadResult:
    """`python -m bench.pyload` in `processes` processes sharing the concurrency."""
    concurrency = spec["concurrency"]
    assert isinstance(concurrency, int)
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    before = await _children_cpu()
    started = time.perf_counter()
    runs = []
    for share in shares:
        payload = json.dumps({**spec, "concurrency": share})
        runs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.pyload",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ},
            )
        )
        runs[-1].stdin.write(payload.encode())  # type: ignore[union-attr]
        runs[-1].stdin.close()  # type: ignore[union-attr]
    outputs = [json.loads((await run.communicate())[0]) for run in runs]
    wall = time.perf_counter() - started
    cpu = await _children_cpu() - before
    latencies = sorted(v for out in outputs for v in out["latencies_ms"])
    seconds = statistics.median(out["seconds"] for out in outputs)
    return LoadResult(
        requests=len(latencies),
        errors=sum(out["errors"] for out in outputs),
        seconds=seconds or wall,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        generator_cpu_seconds=cpu,
    )


async def grpc_load(
    port: int, method: str, request: bytes, *, key: str | None, concurrency: int, seconds: float
) -> LoadResult:
    """Unary gRPC calls of `method` (/pkg.Service/Method) with the serialized `request`."""
    headers = {"content-type": "application/grpc", "te": "trailers"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if h2load_path():
        return await run_h2load(
            f"http://127.0.0.1:{port}{method}",
            concurrency=concurrency,
            seconds=seconds,
            body=grpc_frame(request),
            headers=headers,
        )
    return await run_python_load(
        {
            "kind": "grpc",
            "target": f"127.0.0.1:{port}",
            "method": method,
            "body_hex": request.hex(),
            "key": key,
            "concurrency": concurrency,
            "seconds": seconds,
        }
    )


async def http_load(port: int, path: str, *, key: str, concurrency: int, seconds: float) -> LoadResult:
    """HTTP/1.1 GETs of `path` on 127.0.0.1:`port` with a bearer key."""
    if h2load_path():
        return await run_h2load(
            f"http://127.0.0.1:{port}{path}",
            concurrency=concurrency,
            seconds=seconds,
            headers={"authorization": f"Bearer {key}"},
            http1=True,
        )
    return await run_python_load(
        {"kind": "http", "port": port, "path": path, "key": key, "concurrency": concurrency, "seconds": seconds}
    )
