"""`serve` and `up`: N gRPC server processes on one port, the metrics worker, and Envoy.

This process serves too (and runs the metrics worker, unless told not to); the other N-1 are
children running `invoice-rpc serve --workers 1 --no-worker` on the same port with
SO_REUSEPORT, so the kernel spreads connections over every process and every core. Children are
started with a fresh interpreter (never fork: gRPC does not survive fork) and die with this
process. On stop, children get SIGTERM and drain their calls while this process drains its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from invoice_rpc import config
from invoice_rpc.logs import log
from invoice_rpc.storage.database import Database
from invoice_rpc.subprocesses import die_with_parent_prefix

logger = logging.getLogger("invoice_rpc.serving")


def default_worker_count() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    grpc_port: int
    workers: int
    run_metrics_worker: bool
    grace_seconds: float
    log_level: str = "INFO"
    # Set on every process of a multi-process server (children get it from the command line).
    reuse_port: bool = False
    # PostgreSQL connections all the processes may open together; each gets an equal share.
    db_connections: int = config.DEFAULT_DB_CONNECTIONS

    @property
    def connections_per_process(self) -> int:
        return self.db_connections // self.workers


def _child_command(options: ServeOptions) -> list[str]:
    return [
        *die_with_parent_prefix(),
        sys.executable,
        "-m",
        "invoice_rpc.cli",
        "--log-level",
        options.log_level,
        "serve",
        "--workers",
        "1",
        "--no-worker",
        "--reuse-port",
        "--host",
        options.host,
        "--grpc-port",
        str(options.grpc_port),
        "--grace-seconds",
        str(options.grace_seconds),
        "--db-connections",
        str(options.connections_per_process),
    ]


async def serve(db: Database, options: ServeOptions, stop: asyncio.Event) -> int:
    """Serve on `options.grpc_port` with `options.workers` processes until `stop` is set, then
    drain. Returns 0, or 1 when a child server exited on its own or with an error."""
    if options.workers < 1:
        raise ValueError("workers must be at least 1")
    if options.workers > 1 and options.grpc_port == 0:
        raise ValueError("several server processes need a fixed --grpc-port, not 0")
    from invoice_rpc.rpc.server import run_server

    reuse_port = options.reuse_port or options.workers > 1
    worker_stop = asyncio.Event()
    worker_task: asyncio.Task[None] | None = None
    if options.run_metrics_worker:
        from invoice_rpc.worker import run_worker

        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        worker_task = asyncio.create_task(run_worker(db, worker_id=worker_id, stop=worker_stop))
    children: list[asyncio.subprocess.Process] = []
    try:
        address = f"{options.host}:{options.grpc_port}"
        server = asyncio.create_task(
            run_server(db, address, grace_seconds=options.grace_seconds, reuse_port=reuse_port, stop=stop)
        )
        # This process binds first: a port that is taken fails here, before any child starts.
        await asyncio.sleep(0)
        if server.done():
            await server
        for _ in range(options.workers - 1):
            children.append(
                await asyncio.create_subprocess_exec(*_child_command(options), stdin=asyncio.subprocess.DEVNULL)
            )
        if children:
            log(logger, logging.INFO, "serve.children_started", pids=[child.pid for child in children])
        await server
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        codes = [await _wait_or_kill(child, options.grace_seconds + 5) for child in children]
        worker_stop.set()
        if worker_task is not None:
            await worker_task
    # A child that had not yet installed its handlers when asked to stop dies of the SIGTERM
    # itself: it was still starting, so it had no call in flight, and that is a clean stop too.
    failed = [code for code in codes if code not in (0, -signal.SIGTERM)]
    if failed:
        log(logger, logging.ERROR, "serve.children_failed", returncodes=codes)
        return 1
    return 0


async def _wait_or_kill(child: asyncio.subprocess.Process, grace_seconds: float) -> int:
    try:
        async with asyncio.timeout(grace_seconds):
            return await child.wait()
    except TimeoutError:
        child.kill()
        return await child.wait()


async def wait_until_serving(host: str, port: int, timeout_seconds: float = 30.0) -> None:
    """Return once the gRPC health service at host:port answers SERVING; TimeoutError otherwise."""
    target = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    deadline = time.monotonic() + timeout_seconds
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                # types-grpcio-health-checking types the stub's methods for the sync channel only.
                reply = await health.Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(service=""), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the gRPC server at {target} did not answer SERVING within {timeout_seconds:g} s")
