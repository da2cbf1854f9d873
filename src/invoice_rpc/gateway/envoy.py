"""The gateway's entry points: settings, config generation, the Envoy process, and
`run_gateway` for the `gateway` / `up` commands."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from invoice_rpc.gateway.config import DEFAULT_DIRECTORY, GatewaySettings, write_envoy_config
from invoice_rpc.gateway.process import EnvoyNotReady, EnvoyProcess
from invoice_rpc.logs import log

__all__ = ["EnvoyNotReady", "EnvoyProcess", "GatewaySettings", "run_gateway", "write_envoy_config"]

logger = logging.getLogger("invoice_rpc.gateway")


async def run_gateway(settings: GatewaySettings, stop: asyncio.Event, directory: Path = DEFAULT_DIRECTORY) -> int:
    """Write the config, run Envoy until `stop` is set or Envoy exits, then stop it.

    Returns 0 after a requested stop, otherwise Envoy's exit code (non-zero: it died).
    """
    config_path = write_envoy_config(settings, directory)
    async with EnvoyProcess(config_path) as process:
        log(logger, logging.INFO, "gateway.started", http_port=process.http_port, admin_port=process.admin_port)
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(process.wait())
        done, pending = await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if exited in done:
            code = exited.result()
            log(logger, logging.ERROR, "gateway.envoy_exited", returncode=code, log_tail=process.log_tail())
            return code or 1
    log(logger, logging.INFO, "gateway.stopped")
    return 0
