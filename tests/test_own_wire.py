"""invoices.own_wire (migration 0006, PostgreSQL): a trigger stores the wire bytes of each
invoice's own fields on every write. Whatever writes the invoice (the ORM, set-based UPDATE, the
bulk import's COPY and its updates), the stored bytes equal what the encoder computes from the row
(rpc/invoice_wire.py), the stream built on them parses to what invoice_to_pb builds, and the
migration's frozen function is what the encoder generates now."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from types import ModuleType

import pytest
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.rpc.invoice_wire import own_wire_expression, own_wire_trigger_body
from invoice_rpc.storage import models as m
from invoice_rpc.storage.migrate import MIGRATIONS_DIR
from tests.conftest import Api
from tests.factories import make_invoice
from tests.test_bulk_upsert import INSERTED, SEED_INV_001, SEED_INV_002, UPDATED, bulk, load_stripe_tenant
from tests.test_stream_wire import make_every_kind_of_invoice, python_invoices, require_postgresql, wire_invoices


def migration_0006() -> ModuleType:
    [path] = (MIGRATIONS_DIR / "versions").glob("0006_*.py")
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_holds_the_function_the_encoder_generates() -> None:
    # When this fails, pb.Invoice or an enum table changed: add a migration that replaces
    # invoice_own_wire_on_write() with the new body and rewrites every invoice's own_wire
    # (and compare this test with that migration instead).
    assert migration_0006().OWN_WIRE_FUNCTION_BODY == own_wire_trigger_body()


async def parsed_wire(api: Api) -> list[pb.Invoice]:
    return [pb.Invoice.FromString(wire) for wire in await wire_invoices(api)]


async def stored_and_stale(api: Api) -> tuple[int, int]:
    """The tenant's invoices, and how many of them have stored bytes other than the encoder's
    (computed here by the staged SQL expression, not by the trigger's PL/pgSQL)."""
    invoices = m.Invoice.__table__
    fresh = own_wire_expression(invoices.c)
    statement = select(func.count(), func.count().filter(invoices.c.own_wire.is_distinct_from(fresh))).where(
        invoices.c.tenant_id == api.tenant_id
    )
    async with api.db.read() as s:
        count, stale = (await s.execute(statement)).one()
    return count, stale


async def test_orm_inserts_and_updates_store_the_encoders_bytes(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    count, stale = await stored_and_stale(api)
    assert count > 10
    assert stale == 0

    async with api.db.write() as s:
        invoices = (await s.execute(select(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id))).scalars()
        for invoice in invoices:
            invoice.status = InvoiceStatus.PAID
            invoice.paid_at = datetime(2026, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)
            invoice.description = None
            invoice.amount_paid_minor = invoice.total_minor

    assert await stored_and_stale(api) == (count, 0)
    streamed = await parsed_wire(api)
    assert {invoice.status for invoice in streamed} == {pb.INVOICE_STATUS_PAID}
    assert streamed == await python_invoices(api)


async def test_set_based_updates_store_the_encoders_bytes_in_any_session_time_zone(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    count, _ = await stored_and_stale(api)

    async with api.db.write() as s:
        # A zone whose offsets before 1937 were not whole minutes (+00:19:32).
        await s.execute(text("SET LOCAL TIME ZONE 'Europe/Amsterdam'"))
        await s.execute(
            update(m.Invoice)
            .where(m.Invoice.tenant_id == api.tenant_id)
            .values(
                amount_paid_minor=m.Invoice.amount_paid_minor + 1,
                quantity=None,
                submitted_at=m.Invoice.created_at,
                billing_type=str(BillingType.ONE_TIME),
            )
        )

    assert await stored_and_stale(api) == (count, 0)
    assert await parsed_wire(api) == await python_invoices(api)


async def test_bulk_upsert_copies_and_updates_store_the_encoders_bytes(api: Api) -> None:
    require_postgresql(api)
    await load_stripe_tenant(api)
    inserted = await bulk(api, SEED_INV_001, SEED_INV_002)
    assert [r.import_status for r in inserted] == [INSERTED, INSERTED]
    assert await stored_and_stale(api) == (2, 0)

    [changed] = await bulk(api, {**SEED_INV_001, "amount_cents": 12345, "quantity": 3})
    assert changed.import_status == UPDATED

    assert await stored_and_stale(api) == (2, 0)
    assert await parsed_wire(api) == await python_invoices(api)


async def test_a_write_of_an_enum_value_without_a_protobuf_number_fails(api: Api) -> None:
    require_postgresql(api)

    with pytest.raises(DBAPIError, match=r"Invoice\.accounting_event_type"):
        async with api.db.write() as s:
            await make_invoice(s, api.tenant_id, accounting_event_type="BARTER")
    assert await stored_and_stale(api) == (0, 0)


async def test_a_renamed_customer_shows_in_the_stream_at_once(api: Api) -> None:
    # Parents are encoded as the stream reads them, not stored with the invoice: renaming one
    # rewrites no invoice and no stored bytes go stale.
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    async with api.db.write() as s:
        await s.execute(update(m.Customer).where(m.Customer.tenant_id == api.tenant_id).values(name="Renamed GmbH"))

    streamed = await parsed_wire(api)

    assert {invoice.customer.name for invoice in streamed if invoice.HasField("customer")} == {"Renamed GmbH"}
    assert streamed == await python_invoices(api)
