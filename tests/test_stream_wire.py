"""StreamInvoices' wire path: on PostgreSQL the basic view's pb.Invoice bytes are written by the
database (rpc/invoice_wire.py) and must parse to exactly what invoice_to_pb builds in Python, for
every field set and unset and at the edges of every value's range."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from invoice_rpc.domain.enums import BillingType, InvoiceStatus, PaymentTerm, SortDirection, SortField
from invoice_rpc.rpc.convert import invoice_to_pb
from invoice_rpc.rpc.invoice_wire import FIELDS_NOT_IN_BASIC_VIEW, encoded_field_numbers, invoice_wire_column
from invoice_rpc.service import invoice_queries
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort, order_by, ordered_invoice_select
from invoice_rpc.service.invoice_ranges import stream_projected_ranges
from invoice_rpc.service.invoice_records import invoice_record_select
from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import (
    make_company,
    make_contract,
    make_customer,
    make_data_source,
    make_invoice,
    make_plan,
    utc,
)

UNICODE = "Rechnung für Müller – 東京 🚀"
# Invoice fields whose columns cannot be NULL: always set.
ALWAYS_SET = {
    "invoice_ref",
    "invoice_number",
    "document_type_code",
    "accounting_event_type",
    "billing_type",
    "status",
    "currency_code",
    "issue_date",
    "create_time",
    "update_time",
}


def require_postgresql(api: Api) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip(
            "the wire paths are PostgreSQL's: on SQLite StreamInvoices and ListInvoices build pb.Invoice in Python"
        )


async def link(session: Any, api: Api, invoice_id: uuid.UUID, model: Any, external_ids: list[str]) -> None:
    """Link new payment means, documents or people to the invoice, positions in list order (rows
    added last position first, so that only the position gives the order)."""
    link_model, target_column = {
        m.PaymentMeans: (m.InvoicePaymentMeans, "payment_means_id"),
        m.Document: (m.InvoiceDocument, "document_id"),
        m.Person: (m.InvoicePerson, "person_id"),
    }[model]
    targets = [
        model(tenant_id=api.tenant_id, external_id=external_id, fingerprint="test") for external_id in external_ids
    ]
    session.add_all(targets)
    await session.flush()
    for position, target in reversed(list(enumerate(targets, start=1))):
        session.add(link_model(invoice_id=invoice_id, position=position, **{target_column: target.id}))
    await session.flush()


async def make_every_kind_of_invoice(api: Api) -> None:
    """Invoices that between them set and leave unset every pb.Invoice field, with edge values."""
    async with api.db.write() as s:
        source = await make_data_source(s, api.tenant_id)
        customer = await make_customer(s, api.tenant_id, data_source=source, name=UNICODE, legal_name="Müller AG")
        bare_customer = await make_customer(s, api.tenant_id, data_source=source, name="", legal_name=None)
        contract = await make_contract(s, api.tenant_id, customer=customer, contract_number=10**15)
        numberless_contract = await make_contract(s, api.tenant_id, customer=customer, contract_number=0)
        issuer = await make_company(s, api.tenant_id, external_id="supplier_ü")
        receiver = await make_company(s, api.tenant_id, external_id="company_" + "x" * 150)
        plan = await make_plan(s, api.tenant_id, data_source=source, external_id="plan_team")
        order = m.Order(
            tenant_id=api.tenant_id,
            data_source_id=source.id,
            external_id="order_1",
            customer_id=customer.id,
            billing_type=BillingType.SUBSCRIPTION,
            ordered_at=utc(2026, 3, 1),
            amount_minor=9900,
            currency="EUR",
            fingerprint="test",
        )
        s.add(order)
        await s.flush()

        # Everything set, amounts large and negative, timestamps with microseconds.
        full = await make_invoice(
            s,
            api.tenant_id,
            data_source_id=source.id,
            external_id="inv_ü_1",
            customer=customer,
            contract=contract,
            number_in_contract=2**31 - 1,
            issuer_company_id=issuer.id,
            receiver_company_id=receiver.id,
            plan_id=plan.id,
            subscription_id="sub_1",
            currency="EUR",
            sub_total_minor=10**15,
            total_discount_minor=1,
            total_tax_minor=-(10**15),
            credits_minor=127,
            total_minor=-1,
            amount_paid_minor=128,
            amount_remaining_minor=-(2**40),
            net_terms_days=30,
            payment_term=PaymentTerm.DUE_UPON_RECEIPT,  # days win: NetTerms is a oneof
            issue_date=date(2026, 3, 1),
            due_date=date(2026, 3, 31),
            submitted_at=datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC),
            paid_at=datetime(2026, 3, 2, 8, 0, 0, 999999, tzinfo=UTC),
            period_start=datetime(2026, 3, 1, tzinfo=UTC),
            period_end=datetime(2026, 3, 31, 23, 59, 59, 1, tzinfo=UTC),
            is_partial_period=True,
            terms=UNICODE,
            description="d" * 127,
            quantity="1.5",
            order_id=order.id,
            created_at=datetime(2026, 3, 1, 23, 59, 3, 218636, tzinfo=UTC),
            updated_at=datetime(2026, 3, 4, 23, 59, 3, 218637, tzinfo=UTC),
        )
        await link(s, api, full.id, m.PaymentMeans, ["pm_bank", "pm_card", "pm_ü"])
        await link(s, api, full.id, m.Document, ["doc_1"])
        await link(s, api, full.id, m.Person, ["person_1", "person_2"])

        # Nothing optional set; amounts 0.
        await make_invoice(
            s,
            api.tenant_id,
            status=InvoiceStatus.DRAFT,
            sub_total_minor=0,
            created_at=utc(2026, 1, 1),
            updated_at=utc(2026, 1, 1),
        )
        # Empty strings rather than NULL; a customer with empty name and no legal name; a contract
        # numbered 0; net terms of 0 days (set, so written); a period with only its start.
        await make_invoice(
            s,
            api.tenant_id,
            customer=bare_customer,
            contract=numberless_contract,
            number_in_contract=0,
            external_id="",
            subscription_id="",
            terms="",
            description="",
            quantity="",
            net_terms_days=0,
            period_start=datetime(2026, 2, 1, 0, 0, 0, 500000, tzinfo=UTC),
            created_at=utc(2026, 1, 2),
            updated_at=utc(2026, 1, 2),
        )
        # Times before 1970, at the epoch and at the end of year 9999; a period with only its end;
        # int64 extremes in the amounts that no rollup adds up; long text (2- and 3-byte lengths).
        await make_invoice(
            s,
            api.tenant_id,
            status=InvoiceStatus.PAID,
            sub_total_minor=2**63 - 1,
            total_discount_minor=-(2**63),
            credits_minor=-(2**62),
            total_minor=10**15,
            amount_paid_minor=10**15,
            amount_remaining_minor=0,
            number_in_contract=-7,
            payment_term=PaymentTerm.DUE_UPON_USAGE,
            due_date=date(1, 1, 1),
            submitted_at=datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
            paid_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            period_end=datetime(1900, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
            description="é" * 10_000,
            terms="t" * 200,
            created_at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            updated_at=datetime(1970, 1, 1, tzinfo=UTC),
        )
        # Every billing type, status, accounting event type and payment term.
        statuses = list(InvoiceStatus)
        for i, billing_type in enumerate(BillingType):
            await make_invoice(
                s,
                api.tenant_id,
                billing_type=billing_type,
                status=statuses[i % len(statuses)],
                payment_term=PaymentTerm.DUE_UPON_RECEIPT if i == 0 else None,
                created_at=utc(2025, 1, 1 + i),
                updated_at=utc(2025, 1, 1 + i),
            )


async def python_invoices(api: Api) -> list[pb.Invoice]:
    """The tenant's invoices as the Python path builds them (basic view, default order)."""
    async with api.db.read() as s:
        batches = invoice_queries.stream_invoice_batches(s, api.tenant_id, InvoiceQuery(), InvoiceSort())
        return [invoice_to_pb(record) async for batch in batches for record in batch]


DEFAULT_QUERY = InvoiceQuery()
DEFAULT_SORT = InvoiceSort()


async def wire_batches(
    api: Api, query: InvoiceQuery = DEFAULT_QUERY, sort: InvoiceSort = DEFAULT_SORT, *, batch_size: int = 500
) -> list[list[bytes]]:
    """The wire bytes StreamInvoices sends, as the service reads them (service/invoice_ranges.py),
    in ranges of 8 so that every test reads several."""
    async with api.db.shared_snapshot() as snapshot:
        batches = stream_projected_ranges(
            snapshot, api.tenant_id, query, sort, invoice_wire_column, batch_size=batch_size, range_rows=8
        )
        return [batch async for batch in batches]


async def wire_invoices(api: Api, query: InvoiceQuery = DEFAULT_QUERY, sort: InvoiceSort = DEFAULT_SORT) -> list[bytes]:
    return [wire for batch in await wire_batches(api, query, sort) for wire in batch]


def test_every_invoice_field_is_encoded_or_left_out_by_the_basic_view() -> None:
    numbers = {field.number for field in pb.Invoice.DESCRIPTOR.fields}
    left_out = {pb.Invoice.DESCRIPTOR.fields_by_name[name].number for name in FIELDS_NOT_IN_BASIC_VIEW}

    assert encoded_field_numbers() | left_out == numbers
    assert not encoded_field_numbers() & left_out


def test_the_wire_column_builds_from_the_current_messages() -> None:
    # Building fails (naming the field) when a nested message has a field without a source.
    rows = invoice_record_select(with_links=True, with_own_wire=True).subquery("invoice_rows")

    assert invoice_wire_column(rows.c) is not None


async def test_wire_bytes_parse_to_what_invoice_to_pb_builds(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)

    expected = await python_invoices(api)
    wire = await wire_invoices(api)

    assert [pb.Invoice.FromString(w) for w in wire] == expected


async def test_the_invoices_compared_set_and_leave_unset_every_field(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)

    invoices = [pb.Invoice.FromString(w) for w in await wire_invoices(api)]
    set_somewhere = {field.name for invoice in invoices for field, _ in invoice.ListFields()}
    unset_somewhere = {
        field.name
        for invoice in invoices
        for field in pb.Invoice.DESCRIPTOR.fields
        if field.name not in {f.name for f, _ in invoice.ListFields()}
    }
    encoded = {field.name for field in pb.Invoice.DESCRIPTOR.fields} - FIELDS_NOT_IN_BASIC_VIEW

    assert set_somewhere == encoded
    assert unset_somewhere >= encoded - ALWAYS_SET
    assert {i.billing_type for i in invoices} == set(pb.BillingType.values()) - {pb.BILLING_TYPE_UNSPECIFIED}
    assert {i.status for i in invoices} == set(pb.InvoiceStatus.values()) - {pb.INVOICE_STATUS_UNSPECIFIED}
    assert {i.accounting_event_type for i in invoices} == {
        pb.ACCOUNTING_EVENT_TYPE_INVOICE,
        pb.ACCOUNTING_EVENT_TYPE_CREDIT_NOTE,
    }
    assert {i.net_terms.WhichOneof("terms") for i in invoices} == {None, "days", "payment_term"}
    assert {i.net_terms.payment_term for i in invoices} == set(pb.PaymentTerm.values())


async def test_wire_bytes_do_not_depend_on_the_session_time_zone(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    expected = await python_invoices(api)

    rows = ordered_invoice_select(
        api.tenant_id, DEFAULT_QUERY, DEFAULT_SORT, with_links=True, with_own_wire=True
    ).subquery("rows")
    wire_in_order = select(invoice_wire_column(rows.c)).select_from(rows).order_by(*order_by(rows.c, DEFAULT_SORT))
    async with api.db.read() as s:
        # A zone whose offsets before 1937 were not whole minutes (+00:19:32).
        await s.execute(text("SET LOCAL TIME ZONE 'Europe/Amsterdam'"))
        invoices = [pb.Invoice.FromString(wire) for wire in (await s.execute(wire_in_order)).scalars()]

    assert invoices == expected


@pytest.mark.parametrize("field", list(SortField))
@pytest.mark.parametrize("direction", list(SortDirection))
async def test_every_sort_order_is_the_python_paths(api: Api, field: SortField, direction: SortDirection) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    sort = InvoiceSort(field=field, direction=direction)

    async with api.db.read() as s:
        records = invoice_queries.stream_invoice_batches(s, api.tenant_id, InvoiceQuery(), sort)
        expected = [str(record.id) async for batch in records for record in batch]
    refs = [pb.Invoice.FromString(wire).invoice_ref for wire in await wire_invoices(api, sort=sort)]

    assert refs == expected


async def test_batches_keep_order_and_size(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)

    sizes = [len(batch) for batch in await wire_batches(api, batch_size=5)]
    expected = await python_invoices(api)

    assert sizes == [5] * (len(expected) // 5) + ([len(expected) % 5] if len(expected) % 5 else [])


async def test_stream_invoices_sends_the_database_encoded_invoices(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)

    call = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(batch_size=4), metadata=api.metadata)
    replies = [reply async for reply in call]

    assert [len(reply.invoices) for reply in replies[:-1]] == [4] * (len(replies) - 1)
    assert [invoice for reply in replies for invoice in reply.invoices] == await python_invoices(api)


async def drop_stored_wire(api: Api, invoice_id: uuid.UUID) -> None:
    """Clear the invoice's stored own-field bytes, as a load with the trigger disabled would
    leave them (replica role: this session's triggers do not fire)."""
    async with api.db.write() as s:
        await s.execute(text("SET LOCAL session_replication_role = replica"))
        await s.execute(update(m.Invoice).where(m.Invoice.id == invoice_id).values(own_wire=None))


async def test_an_invoice_without_stored_bytes_fails_the_query_naming_it(api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id)
        bare = await make_invoice(s, api.tenant_id)
    await drop_stored_wire(api, bare.id)

    with pytest.raises(DBAPIError, match=f"invoice {bare.id} has no stored wire bytes"):
        await wire_invoices(api)


async def test_a_stream_failing_in_the_database_ends_internal(api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        bare = await make_invoice(s, api.tenant_id)
    await drop_stored_wire(api, bare.id)

    call = api.invoices.StreamInvoices(isvc.StreamInvoicesRequest(), metadata=api.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [reply async for reply in call]

    assert caught.value.code() == grpc.StatusCode.INTERNAL


async def test_filters_apply_to_the_wire_path(api: Api, other_api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        paid = await make_invoice(s, api.tenant_id, status=InvoiceStatus.PAID)
        await make_invoice(s, api.tenant_id, status=InvoiceStatus.SENT)
        await make_invoice(s, other_api.tenant_id, status=InvoiceStatus.PAID)

    query = InvoiceQuery(statuses=(InvoiceStatus.PAID,), billing_types=(BillingType.SUBSCRIPTION,))
    refs = [pb.Invoice.FromString(wire).invoice_ref for wire in await wire_invoices(api, query)]

    assert refs == [str(paid.id)]
