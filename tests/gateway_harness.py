"""A real Envoy in front of the session's real gRPC server, and a small real HTTP client.

The HTTP calls run in a worker thread: the gRPC server answering them lives on the test's
event loop, which must keep running while a call waits.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from invoice_rpc.gateway.envoy import EnvoyProcess, GatewaySettings, write_envoy_config
from invoice_rpc.rpc.server import BuiltServer


@dataclass
class Reply:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RestClient:
    """A client for one REST listener."""

    base_url: str

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
    ) -> Reply:
        """Send one request; `body` is sent as JSON, `raw_body` as is; `key` as a bearer token."""
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        return await asyncio.to_thread(_send, request)


@dataclass
class Gateway(RestClient):
    """The running Envoy and a client for its REST listener."""

    process: EnvoyProcess = field(kw_only=True)


def _headers(message: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}


def _send(request: urllib.request.Request) -> Reply:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, _headers(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, _headers(error.headers), error.read())


@pytest.fixture(scope="session")
async def gateway(server: BuiltServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """Envoy on free ports in front of the session's server (once per database)."""
    directory: Path = tmp_path_factory.mktemp("envoy")
    settings = GatewaySettings(grpc_port=server.port, http_port=0, admin_port=0, listen_host="127.0.0.1")
    config_path = write_envoy_config(settings, directory)
    async with EnvoyProcess(config_path) as process:
        yield Gateway(f"http://127.0.0.1:{process.http_port}", process=process)
