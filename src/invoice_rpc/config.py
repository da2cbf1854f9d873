"""Settings read from the environment, once, at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "INVOICE_RPC_DATABASE_URL"


def default_database_url() -> str:
    """The embedded default: a SQLite file in the working directory's var/."""
    path = Path.cwd() / "var" / "invoice-rpc.sqlite3"
    return f"sqlite:///{path}"


def database_url() -> str:
    return os.environ.get(DATABASE_URL_ENV) or default_database_url()


@dataclass(frozen=True)
class ServerPorts:
    grpc: int = 50051
    http: int = 8080
    admin: int = 9901
