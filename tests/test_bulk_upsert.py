"""BulkUpsertInvoices (seed 004): per-item results, exact messages, no rewrite of identical
items, invoice mapping and numbering, audit rows, and the metric job queued in the same
transaction."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select, text, update

from invoice_rpc.storage import models as m
from tests.conftest import Api

INSERTED = ipb.IMPORT_STATUS_INSERTED
UPDATED = ipb.IMPORT_STATUS_UPDATED
UNCHANGED = ipb.IMPORT_STATUS_UNCHANGED
ERROR = ipb.IMPORT_STATUS_ERROR

# Seed 004's single-object example, verbatim.
SEED_INV_001 = {
    "id": "inv_001",
    "customer_id": "cus_123",
    "data_source": "stripe",
    "type": "subscription",
    "date": "2024-07-01T00:00:00Z",
    "amount_cents": 9900,
    "currency": "USD",
    "plan_id": "plan_123",
    "subscription_id": "sub_001",
    "start_date": "2024-07-01T00:00:00Z",
    "end_date": "2024-08-01T00:00:00Z",
    "quantity": 1,
    "discount": 0,
}
# The second item of seed 004's bulk example.
SEED_INV_002 = {
    "id": "inv_002",
    "customer_id": "cus_456",
    "data_source": "stripe",
    "type": "one-time",
    "date": "2024-07-02T00:00:00Z",
    "amount_cents": 15000,
    "currency": "USD",
    "start_date": "2024-07-02T00:00:00Z",
    "end_date": "2024-07-02T00:00:00Z",
}


async def load_stripe_tenant(api: Api, source: str = "stripe") -> str:
    """The data source, customers cus_123 and cus_456 and a monthly plan_123, all by rpc."""
    created = await api.imports.CreateDataSource(
        ipb.CreateDataSourceRequest(data_source=pb.DataSource(name=source)), metadata=api.metadata
    )
    customers = await api.imports.UpsertCustomers(
        ipb.UpsertCustomersRequest(
            customers=[
                pb.Customer(id="cus_123", data_source_id=source, name="Acme Corporation", legal_name="Acme Corp Ltd"),
                pb.Customer(id="cus_456", data_source_id=created.id, name="Globex"),
            ]
        ),
        metadata=api.metadata,
    )
    plans = await api.imports.UpsertPlans(
        ipb.UpsertPlansRequest(
            plans=[
                pb.Plan(
                    id="plan_123",
                    data_source_id=source,
                    name="Pro",
                    interval="month",
                    amount_minor=9900,
                    currency_code="USD",
                )
            ]
        ),
        metadata=api.metadata,
    )
    assert [r.import_status for r in (*customers.results, *plans.results)] == [INSERTED] * 3
    return created.id


async def bulk(api: Api, *items: dict[str, object]) -> list[ipb.ImportResult]:
    reply = await api.imports.BulkUpsertInvoices(
        ipb.BulkUpsertInvoicesRequest(invoices=[ipb.InvoiceImport(**item) for item in items]),  # type: ignore[arg-type]
        metadata=api.metadata,
    )
    return list(reply.results)


async def one_error(api: Api, **changes: object) -> str:
    """The error of importing inv_001 with `changes` (None drops the field)."""
    item = {k: v for k, v in {**SEED_INV_001, **changes}.items() if v is not None}
    [result] = await bulk(api, item)
    assert result.import_status == ERROR
    return result.import_error


async def invoice_row(api: Api, external_id: str) -> m.Invoice:
    """The stored invoice, detached so that it can be read after the transaction ends."""
    async with api.db.read() as s:
        query = select(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id, m.Invoice.external_id == external_id)
        row = (await s.execute(query)).scalar_one()
        s.expunge(row)
        return row


async def test_seed_single_object_is_inserted(api: Api) -> None:
    await load_stripe_tenant(api)
    [result] = await bulk(api, SEED_INV_001)
    assert (result.id, result.import_status, result.import_error) == ("inv_001", INSERTED, "")


async def test_seed_bulk_example_inserts_both_in_order(api: Api) -> None:
    await load_stripe_tenant(api)
    first = {k: v for k, v in SEED_INV_001.items() if k not in ("quantity", "discount")}
    results = await bulk(api, first, SEED_INV_002)
    assert [(r.id, r.import_status) for r in results] == [("inv_001", INSERTED), ("inv_002", INSERTED)]


async def test_imported_invoice_maps_seed_fields(api: Api) -> None:
    source_id = await load_stripe_tenant(api)
    await bulk(api, {**SEED_INV_001, "discount": 100})
    row = await invoice_row(api, "inv_001")
    assert str(row.data_source_id) == source_id
    assert (row.document_type_code, row.accounting_event_type, row.billing_type) == ("380", "INVOICE", "subscription")
    assert (row.status, row.currency, row.issue_date.isoformat()) == ("sent", "USD", "2024-07-01")
    assert (row.total_minor, row.total_discount_minor, row.sub_total_minor, row.total_tax_minor) == (
        9900,
        100,
        10000,
        0,
    )
    assert (row.amount_paid_minor, row.amount_remaining_minor, row.credits_minor) == (0, 9900, 0)
    assert (row.quantity, row.subscription_id) == ("1", "sub_001")
    assert row.period_start is not None and row.period_start.isoformat() == "2024-07-01T00:00:00+00:00"
    assert row.period_end is not None and row.period_end.isoformat() == "2024-08-01T00:00:00+00:00"
    assert row.invoice_number == "INV-2024-0001"


async def test_refund_is_a_credit_note(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, {**SEED_INV_001, "type": "refund"})
    row = await invoice_row(api, "inv_001")
    assert (row.document_type_code, row.accounting_event_type) == ("381", "CREDIT_NOTE")


async def test_inserted_invoices_are_numbered_per_issue_year_in_input_order(api: Api) -> None:
    await load_stripe_tenant(api)
    items = [
        {**SEED_INV_002, "id": "a", "date": "2024-03-01"},
        {**SEED_INV_002, "id": "b", "date": "2025-01-05"},
        {**SEED_INV_002, "id": "c", "date": "2024-12-31T23:30:00-02:00"},  # 2025-01-01 in UTC
        {**SEED_INV_002, "id": "d", "date": "2024-06-01"},
    ]
    await bulk(api, *items)
    numbers = {key: (await invoice_row(api, key)).invoice_number for key in "abcd"}
    assert numbers == {"a": "INV-2024-0001", "b": "INV-2025-0001", "c": "INV-2025-0002", "d": "INV-2024-0002"}


async def test_identical_resend_is_unchanged_and_rewrites_nothing(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001, SEED_INV_002)
    before = await invoice_row(api, "inv_001")
    xmin_sql = text("SELECT xmin::text FROM invoices WHERE id = :id")
    if api.db.dialect == "postgresql":
        async with api.db.read() as s:
            xmin_before = (await s.execute(xmin_sql, {"id": before.id})).scalar_one()
    results = await bulk(api, SEED_INV_001, SEED_INV_002)
    assert [r.import_status for r in results] == [UNCHANGED, UNCHANGED]
    after = await invoice_row(api, "inv_001")
    assert after.updated_at == before.updated_at
    if api.db.dialect == "postgresql":
        async with api.db.read() as s:
            # xmin is the id of the transaction that wrote the row version: unchanged = not rewritten.
            assert (await s.execute(xmin_sql, {"id": before.id})).scalar_one() == xmin_before


async def test_identical_resend_writes_no_audit_row_and_queues_nothing(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        await s.execute(m.MetricJob.__table__.delete().where(m.MetricJob.tenant_id == api.tenant_id))
    await bulk(api, SEED_INV_001)
    async with api.db.read() as s:
        audits = (await s.execute(select(func.count()).where(m.AuditEvent.tenant_id == api.tenant_id))).scalar_one()
        jobs = (await s.execute(select(func.count()).where(m.MetricJob.tenant_id == api.tenant_id))).scalar_one()
    assert (audits, jobs) == (1, 0)


async def test_changed_item_is_updated_keeping_number_status_and_payments(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        row = (await s.execute(select(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id))).scalar_one()
        row.amount_paid_minor = 5000
        row.amount_remaining_minor = 4900
    [result] = await bulk(api, {**SEED_INV_001, "amount_cents": 12000, "date": "2025-02-01"})
    assert (result.id, result.import_status) == ("inv_001", UPDATED)
    row = await invoice_row(api, "inv_001")
    assert (row.invoice_number, row.status, row.amount_paid_minor) == ("INV-2024-0001", "sent", 5000)
    assert (row.total_minor, row.amount_remaining_minor) == (12000, 7000)


async def test_update_shrinking_total_below_paid_leaves_nothing_remaining(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        row = (await s.execute(select(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id))).scalar_one()
        row.amount_paid_minor = 9900
    await bulk(api, {**SEED_INV_001, "amount_cents": 5000})
    assert (await invoice_row(api, "inv_001")).amount_remaining_minor == 0


async def test_inserts_and_updates_are_audited(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    await bulk(api, {**SEED_INV_001, "amount_cents": 100})
    query = select(m.AuditEvent).where(m.AuditEvent.tenant_id == api.tenant_id).order_by(m.AuditEvent.created_at)
    async with api.db.read() as s:
        events = (await s.execute(query)).scalars().all()
        assert [e.action for e in events] == ["invoice.imported", "invoice.import_updated"]
        assert events[0].after["invoice_number"] == "INV-2024-0001" and events[0].api_key_id == api.api_key_id
        assert (events[1].before, events[1].after) == (
            {"total_minor": 9900, "sub_total_minor": 9900},
            {"total_minor": 100, "sub_total_minor": 100},
        )


async def test_seed_validation_examples(api: Api) -> None:
    await load_stripe_tenant(api)
    results = await bulk(
        api,
        {**SEED_INV_001, "id": ""},
        {**SEED_INV_001, "id": "inv_004", "plan_id": "plan_999"},
    )
    assert [(r.import_status, r.import_error) for r in results] == [
        (ERROR, "Missing invoice ID"),
        (ERROR, "Plan ID plan_999 does not exist"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"customer_id": "cus_9"}, "Customer ID cus_9 does not exist"),
        ({"customer_id": None}, "Missing customer ID"),
        ({"data_source": None}, "Missing data source"),
        ({"data_source": "X"}, "Data source X does not exist"),
        ({"type": "x"}, "Invalid type 'x': must be one of subscription, one-time, refund, cancellation"),
        ({"amount_cents": None}, "Missing amount_cents"),
        ({"amount_cents": -1}, "amount_cents must be a non-negative number"),
        ({"currency": "US"}, "Invalid currency 'US': must be a 3-letter ISO 4217 code"),
        ({"date": None}, "Missing date"),
        ({"date": "x"}, "Invalid date 'x': expected RFC 3339 or YYYY-MM-DD"),
        ({"date": "2024-07-01T00:00:00"}, "Invalid date '2024-07-01T00:00:00': expected RFC 3339 or YYYY-MM-DD"),
        ({"start_date": "2024-13-01"}, "Invalid start_date '2024-13-01': expected RFC 3339 or YYYY-MM-DD"),
        ({"end_date": "soon"}, "Invalid end_date 'soon': expected RFC 3339 or YYYY-MM-DD"),
        ({"end_date": "2024-06-30"}, "end_date is before start_date"),
        ({"quantity": -2}, "quantity must be a non-negative number"),
        ({"discount": -5}, "discount must be a non-negative number"),
        # Beyond 64-bit arithmetic's comfort (amount + discount, customer totals): refused, not a 500.
        ({"amount_cents": 2**63 - 1, "discount": 1}, "amount_cents must be at most 1000000000000000"),
        # Year 1 at +01:00 is before year 1 in UTC: not a time, not a 500.
        (
            {"date": "0001-01-01T00:00:00+01:00"},
            "Invalid date '0001-01-01T00:00:00+01:00': expected RFC 3339 or YYYY-MM-DD",
        ),
    ],
)
async def test_item_error_message(api: Api, changes: dict[str, object], message: str) -> None:
    await load_stripe_tenant(api)
    assert await one_error(api, **changes) == message


async def test_several_problems_of_one_item_are_joined(api: Api) -> None:
    await load_stripe_tenant(api)
    error = await one_error(api, type="x", amount_cents=-1, currency="US")
    assert error == (
        "Invalid type 'x': must be one of subscription, one-time, refund, cancellation; "
        "amount_cents must be a non-negative number; Invalid currency 'US': must be a 3-letter ISO 4217 code"
    )


async def test_customer_of_another_data_source_does_not_exist(api: Api) -> None:
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, source="paddle")
    await api.imports.UpsertCustomers(
        ipb.UpsertCustomersRequest(customers=[pb.Customer(id="cus_only_paddle", data_source_id="paddle")]),
        metadata=api.metadata,
    )
    assert await one_error(api, customer_id="cus_only_paddle") == "Customer ID cus_only_paddle does not exist"


async def test_valid_items_land_beside_failing_ones(api: Api) -> None:
    await load_stripe_tenant(api)
    results = await bulk(api, {**SEED_INV_001, "currency": "US"}, SEED_INV_002)
    assert [r.import_status for r in results] == [ERROR, INSERTED]
    async with api.db.read() as s:
        ids = (await s.execute(select(m.Invoice.external_id).where(m.Invoice.tenant_id == api.tenant_id))).scalars()
        assert list(ids) == ["inv_002"]


async def test_duplicate_id_in_one_batch_is_an_error_for_later_occurrences(api: Api) -> None:
    await load_stripe_tenant(api)
    results = await bulk(api, SEED_INV_001, {**SEED_INV_001, "amount_cents": 1})
    assert [(r.import_status, r.import_error) for r in results] == [
        (INSERTED, ""),
        (ERROR, "Duplicate invoice ID inv_001 in this batch"),
    ]
    assert (await invoice_row(api, "inv_001")).total_minor == 9900


async def test_same_id_in_two_data_sources_is_two_invoices(api: Api) -> None:
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, source="paddle")
    results = await bulk(api, SEED_INV_001, {**SEED_INV_001, "data_source": "paddle"})
    assert [r.import_status for r in results] == [INSERTED, INSERTED]


@pytest.mark.parametrize("count", [0, 1001])
async def test_batch_outside_1_to_1000_is_invalid_argument(api: Api, count: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bulk(api, *[{**SEED_INV_002, "id": f"i{n}"} for n in range(count)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invoices" in (caught.value.details() or "")


async def test_affected_customers_are_queued_in_the_same_transaction(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001, SEED_INV_002)
    async with api.db.read() as s:
        queued = (
            await s.execute(
                select(m.Customer.external_id)
                .join(m.MetricJob, m.MetricJob.customer_id == m.Customer.id)
                .where(m.MetricJob.tenant_id == api.tenant_id)
                .order_by(m.Customer.external_id)
            )
        ).scalars()
        assert list(queued) == ["cus_123", "cus_456"]


async def test_moving_an_invoice_to_another_customer_queues_both(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        await s.execute(m.MetricJob.__table__.delete().where(m.MetricJob.tenant_id == api.tenant_id))
    await bulk(api, {**SEED_INV_001, "customer_id": "cus_456"})
    async with api.db.read() as s:
        count = (await s.execute(select(func.count()).where(m.MetricJob.tenant_id == api.tenant_id))).scalar_one()
    assert count == 2


async def test_requeueing_a_queued_customer_bumps_its_generation(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    await bulk(api, {**SEED_INV_001, "amount_cents": 1})
    async with api.db.read() as s:
        generations = (
            await s.execute(select(m.MetricJob.generation).where(m.MetricJob.tenant_id == api.tenant_id))
        ).scalars()
        assert list(generations) == [2]


async def test_every_written_row_keeps_the_digest_of_the_item_as_received(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    inserted = (await invoice_row(api, "inv_001")).item_digest
    await bulk(api, {**SEED_INV_001, "amount_cents": 9901})
    updated = (await invoice_row(api, "inv_001")).item_digest
    assert inserted is not None and updated is not None and len({inserted, updated}) == 2


async def test_differently_written_identical_item_is_unchanged_without_a_write(api: Api) -> None:
    """Same columns, other spelling: the digest differs, the normalized fingerprint does not."""
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    before = await invoice_row(api, "inv_001")
    respelled = {**SEED_INV_001, "currency": "usd", "type": " subscription ", "date": "2024-07-01"}
    [result] = await bulk(api, respelled)
    assert result.import_status == UNCHANGED
    after = await invoice_row(api, "inv_001")
    assert (after.updated_at, after.item_digest, after.fingerprint) == (
        before.updated_at,
        before.item_digest,
        before.fingerprint,
    )


async def test_row_without_a_digest_is_still_recognized_as_unchanged(api: Api) -> None:
    """Rows imported before item digests existed (or seeded in bulk) take the normalizing path."""
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        await s.execute(update(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id).values(item_digest=None))
    [result] = await bulk(api, SEED_INV_001)
    assert result.import_status == UNCHANGED
    assert (await invoice_row(api, "inv_001")).item_digest is None


async def test_unchanged_item_followed_by_its_duplicate_reports_the_later_one(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    results = await bulk(api, SEED_INV_001, {**SEED_INV_001, "amount_cents": 1})
    assert [(r.import_status, r.import_error) for r in results] == [
        (UNCHANGED, ""),
        (ERROR, "Duplicate invoice ID inv_001 in this batch"),
    ]
    assert (await invoice_row(api, "inv_001")).total_minor == 9900


async def test_changed_item_followed_by_the_stored_one_reports_the_later_one(api: Api) -> None:
    """Input order decides which occurrence is the duplicate, whichever path each one takes."""
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    results = await bulk(api, {**SEED_INV_001, "amount_cents": 1}, SEED_INV_001)
    assert [(r.import_status, r.import_error) for r in results] == [
        (UPDATED, ""),
        (ERROR, "Duplicate invoice ID inv_001 in this batch"),
    ]
    assert (await invoice_row(api, "inv_001")).total_minor == 1


async def test_same_item_sent_to_another_data_source_is_a_new_invoice(api: Api) -> None:
    """The digest only ever speaks for the row of the item's own (data source, id) key."""
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, "chargebee")
    await bulk(api, SEED_INV_001)
    moved = {**SEED_INV_001, "data_source": "chargebee"}
    [result] = await bulk(api, moved)
    assert result.import_status == INSERTED


def wire_digest(item: dict[str, object]) -> str:
    """The digest BulkUpsertInvoices keeps: blake2b-128 of the item's deterministic wire bytes."""
    message = ipb.InvoiceImport(**item)  # type: ignore[arg-type]
    return hashlib.blake2b(message.SerializeToString(deterministic=True), digest_size=16).hexdigest()


async def xmin_of(api: Api, external_id: str) -> str | None:
    """The id of the transaction that wrote the row's current version (None on SQLite)."""
    if api.db.dialect != "postgresql":
        return None
    row = await invoice_row(api, external_id)
    async with api.db.read() as s:
        xmin = (await s.execute(text("SELECT xmin::text FROM invoices WHERE id = :id"), {"id": row.id})).scalar_one()
    return str(xmin)


async def test_the_digest_kept_is_of_the_item_wire_bytes(api: Api) -> None:
    """The same fields give the same bytes whichever client encoded them, so the digest of an
    item is the same on every re-send."""
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    assert (await invoice_row(api, "inv_001")).item_digest == wire_digest(SEED_INV_001)


async def test_row_with_a_digest_of_another_encoding_is_unchanged_and_not_rewritten(api: Api) -> None:
    """A row written before digests were of the wire bytes (they were of the item's repr) does
    not match its re-send's digest: the fingerprint finds it unchanged, and nothing is written,
    not even the new digest."""
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    older = hashlib.blake2b(b"InvoiceImport(id='inv_001', ...)", digest_size=16).hexdigest()
    async with api.db.write() as s:
        await s.execute(update(m.Invoice).where(m.Invoice.tenant_id == api.tenant_id).values(item_digest=older))
    before, xmin_before = await invoice_row(api, "inv_001"), await xmin_of(api, "inv_001")
    [result] = await bulk(api, SEED_INV_001)
    assert result.import_status == UNCHANGED
    after = await invoice_row(api, "inv_001")
    assert (after.item_digest, after.updated_at, await xmin_of(api, "inv_001")) == (
        older,
        before.updated_at,
        xmin_before,
    )


async def test_resend_naming_the_data_source_by_id_is_unchanged(api: Api) -> None:
    """Other bytes, same invoice: the digest differs, the row is found by the resolved source."""
    source_id = await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    [result] = await bulk(api, {**SEED_INV_001, "data_source": source_id})
    assert result.import_status == UNCHANGED


async def test_identical_resend_across_two_data_sources_is_unchanged(api: Api) -> None:
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, source="paddle")
    items = [SEED_INV_001, {**SEED_INV_001, "data_source": "paddle"}, SEED_INV_002]
    await bulk(api, *items)
    results = await bulk(api, *items)
    assert [r.import_status for r in results] == [UNCHANGED] * 3


@pytest.mark.parametrize("external_id", ['inv "quoted"', "inv\\back", "inv,{braced}", "NULL", " inv_padded "])
async def test_identical_resend_of_an_id_with_array_syntax_is_unchanged(api: Api, external_id: str) -> None:
    """Ids are looked up as one array literal on PostgreSQL: quotes, backslashes, commas,
    braces and the word NULL are ids like any other."""
    await load_stripe_tenant(api)
    item = {**SEED_INV_001, "id": external_id}
    [inserted] = await bulk(api, item)
    assert inserted.import_status == INSERTED
    xmin_before = await xmin_of(api, external_id.strip())
    [result] = await bulk(api, item)
    assert (result.id, result.import_status) == (external_id, UNCHANGED)
    assert await xmin_of(api, external_id.strip()) == xmin_before


async def test_identical_resend_mixed_with_changes_reports_each_item_in_order(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001, SEED_INV_002)
    results = await bulk(
        api,
        {**SEED_INV_002, "amount_cents": 15001},
        {**SEED_INV_001, "id": "inv_003"},
        SEED_INV_001,
        {**SEED_INV_001, "currency": "US", "id": "inv_004"},
    )
    assert [(r.id, r.import_status) for r in results] == [
        ("inv_002", UPDATED),
        ("inv_003", INSERTED),
        ("inv_001", UNCHANGED),
        ("inv_004", ERROR),
    ]
