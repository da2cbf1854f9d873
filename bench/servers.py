"""The system under test: N server processes on one port, and Envoy in front of them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.procs import descendants
from invoice_rpc.gateway.envoy import EnvoyProcess, GatewaySettings, write_envoy_config
from invoice_rpc.subprocesses import die_with_parent_prefix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli() -> str:
    return shutil.which("invoice-rpc") or str(Path(sys.executable).parent / "invoice-rpc")


def cli_has_workers() -> bool:
    """Whether this checkout's `invoice-rpc serve` takes `--workers N`."""
    result = subprocess.run([_cli(), "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in result.stdout


class ServerFleet:
    """`workers` server processes on one port (SO_REUSEPORT): `invoice-rpc serve --workers N`
    when the CLI has it, else N `python -m bench.serve_one`. Stopped with SIGTERM on exit."""

    def __init__(self, database_url: str, workers: int, log_path: Path) -> None:
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        self.how = ""
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        """Every process of the fleet (parents and their worker children)."""
        found: list[int] = []
        for process in self._processes:
            found.extend(descendants(process.pid))
        return sorted(set(found))

    async def start(self) -> None:
        env = {**os.environ, "INVOICE_RPC_DATABASE_URL": self.database_url}
        log = self.log_path.open("ab")
        prefix = die_with_parent_prefix()
        if cli_has_workers():
            command = [_cli(), "--log-level", "WARNING", "serve", "--host", "127.0.0.1"]
            command += ["--grpc-port", str(self.port), "--no-worker", "--workers", str(self.workers)]
            self.how = f"invoice-rpc serve --workers {self.workers}"
            commands = [command]
        else:
            command = [sys.executable, "-m", "bench.serve_one", "--port", str(self.port)]
            self.how = f"{self.workers} x bench.serve_one (SO_REUSEPORT)"
            commands = [command] * self.workers
        for command in commands:
            # Popen returns at once (fork and exec); the wait for readiness below is async.
            self._processes.append(subprocess.Popen(prefix + command, env=env, stdout=log, stderr=log))  # noqa: ASYNC220
        await self._wait_serving()

    async def _wait_serving(self, limit_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + limit_seconds
        serving = 0
        # Each new channel may land on another process; ask until as many answers as workers.
        while serving < self.workers * 2:
            if any(p.poll() is not None for p in self._processes):
                raise RuntimeError(f"a server process exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"servers not serving after {limit_seconds} s; see {self.log_path}")
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                    stub = health_pb2_grpc.HealthStub(channel)
                    # grpc_health ships no type stubs: mypy sees the stub class without its methods.
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)  # type: ignore[attr-defined]
                    serving += reply.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)

    async def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        self._processes.clear()


class Gateway:
    """Envoy (the project's own config, from `invoice_rpc.gateway`) in front of the fleet."""

    def __init__(self, grpc_port: int) -> None:
        self.grpc_port = grpc_port
        self.directory = Path(tempfile.mkdtemp(prefix="bench-envoy-"))
        self.process: EnvoyProcess | None = None
        self.http_port = 0

    async def start(self) -> None:
        settings = GatewaySettings(grpc_port=self.grpc_port, http_port=0, admin_port=0, listen_host="127.0.0.1")
        self.process = EnvoyProcess(write_envoy_config(settings, self.directory))
        await self.process.start()
        self.http_port = self.process.http_port

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None
