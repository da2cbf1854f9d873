"""Settings read from the environment, once, at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "INVOICE_RPC_DATABASE_URL"
DB_CONNECTIONS_ENV = "INVOICE_RPC_DB_CONNECTIONS"
# PostgreSQL's default max_connections (100) less its 3 reserved for superusers, less one for psql.
DEFAULT_DB_CONNECTIONS = 96


def default_database_url() -> str:
    """The embedded default: a SQLite file in the working directory's var/."""
    path = Path.cwd() / "var" / "invoice-rpc.sqlite3"
    return f"sqlite:///{path}"


def database_url() -> str:
    return os.environ.get(DATABASE_URL_ENV) or default_database_url()


def db_connections() -> int:
    """How many PostgreSQL connections a `serve` may open, all its processes together."""
    text = os.environ.get(DB_CONNECTIONS_ENV, "").strip()
    if not text:
        return DEFAULT_DB_CONNECTIONS
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{DB_CONNECTIONS_ENV} must be a whole number, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{DB_CONNECTIONS_ENV} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class ServerPorts:
    grpc: int = 50051
    http: int = 8080
    admin: int = 9901
