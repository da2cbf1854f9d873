"""Alembic environment: migrations run on a synchronous connection given by the caller
(invoice_rpc.storage.migrate) or built from INVOICE_RPC_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from invoice_rpc.config import database_url
from invoice_rpc.storage.database import ensure_sqlite_directory, sync_url
from invoice_rpc.storage.models import Base

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = sync_url(config.get_main_option("sqlalchemy.url") or database_url())
    ensure_sqlite_directory(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite can only ALTER by copying tables
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
