"""The schema: the Alembic migrations make exactly what the models describe, and can be undone.

Each test gets its own empty database (never the session's shared one, which a downgrade would
wipe under the other tests' feet), once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from invoice_rpc.storage import migrate
from invoice_rpc.storage.database import sync_url
from invoice_rpc.storage.models import Base


def schema_differences(url: str) -> list[Any]:
    """What autogenerate would add to a new migration: empty when models and database agree."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def downgrade_to_base(url: str) -> None:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            config = migrate.alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
    finally:
        engine.dispose()


def test_migrations_create_exactly_the_models_schema(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    assert schema_differences(empty_database_url) == []


def test_migrations_create_every_model_table(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    assert set(Base.metadata.tables) <= table_names(empty_database_url)


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    downgrade_to_base(empty_database_url)
    assert table_names(empty_database_url) - {"alembic_version"} == set()

    migrate.upgrade(empty_database_url)
    assert set(Base.metadata.tables) <= table_names(empty_database_url)
    assert schema_differences(empty_database_url) == []
