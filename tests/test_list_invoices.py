"""ListInvoices: filters, whitelisted sorts, numbered pages and keyset pages."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from tests.conftest import Api
from tests.factories import (
    line,
    make_company,
    make_contract,
    make_customer,
    make_data_source,
    make_invoice,
    make_invoices_bulk,
    utc,
    violated_fields,
)


async def list_numbers(api: Api, **request: Any) -> list[str]:
    reply = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(**request), metadata=api.metadata)
    return [i.invoice_number for i in reply.invoices]


async def invalid_fields(api: Api, **request: Any) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListInvoices(isvc.ListInvoicesRequest(**request), metadata=api.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return violated_fields(caught.value)


async def walk_keyset_pages(api: Api, page_size: int, **request: Any) -> list[str]:
    numbers: list[str] = []
    token = ""
    while True:
        reply = await api.invoices.ListInvoices(
            isvc.ListInvoicesRequest(page_size=page_size, page_token=token, **request), metadata=api.metadata
        )
        numbers += [i.invoice_number for i in reply.invoices]
        token = reply.next_page_token
        if not token:
            return numbers


async def test_default_order_is_newest_created_first_without_lines(api: Api) -> None:
    async with api.db.write() as s:
        older = await make_invoice(s, api.tenant_id, created_at=utc(2026, 1, 1), lines=[line()])
        newer = await make_invoice(s, api.tenant_id, created_at=utc(2026, 1, 2), lines=[line()])

    reply = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(), metadata=api.metadata)

    assert [i.invoice_number for i in reply.invoices] == [newer.invoice_number, older.invoice_number]
    assert all(len(i.line_items) == 0 for i in reply.invoices)
    assert reply.next_page_token == ""
    assert not reply.HasField("page_info")


async def test_full_view_includes_line_items(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, lines=[line("A"), line("B")])
        await make_invoice(s, api.tenant_id, lines=[line("C")])

    reply = await api.invoices.ListInvoices(
        isvc.ListInvoicesRequest(view=isvc.INVOICE_VIEW_FULL, sort_direction=isvc.SORT_DIRECTION_ASC),
        metadata=api.metadata,
    )

    assert [[li.name for li in i.line_items] for i in reply.invoices] == [["A", "B"], ["C"]]


async def test_repeated_filters_match_any_of_their_values(api: Api) -> None:
    async with api.db.write() as s:
        sub = await make_invoice(s, api.tenant_id, billing_type=BillingType.SUBSCRIPTION)
        demo = await make_invoice(s, api.tenant_id, billing_type=BillingType.DEMO)
        await make_invoice(s, api.tenant_id, billing_type=BillingType.TOKEN_PACK)
        paid_demo = await make_invoice(s, api.tenant_id, billing_type=BillingType.DEMO, status=InvoiceStatus.PAID)

    by_type = await list_numbers(
        api, filter=isvc.InvoiceFilter(billing_types=[pb.BILLING_TYPE_SUBSCRIPTION, pb.BILLING_TYPE_DEMO])
    )
    by_type_and_status = await list_numbers(
        api,
        filter=isvc.InvoiceFilter(billing_types=[pb.BILLING_TYPE_DEMO], statuses=[pb.INVOICE_STATUS_PAID]),
    )

    assert sorted(by_type) == sorted([sub.invoice_number, demo.invoice_number, paid_demo.invoice_number])
    assert by_type_and_status == [paid_demo.invoice_number]


async def test_filters_by_customer_contract_companies_source_and_currency(api: Api) -> None:
    async with api.db.write() as s:
        source = await make_data_source(s, api.tenant_id)
        customer = await make_customer(s, api.tenant_id, data_source=source)
        contract = await make_contract(s, api.tenant_id, customer=customer)
        issuer = await make_company(s, api.tenant_id, external_id="acme_de")
        receiver = await make_company(s, api.tenant_id, external_id="globex")
        match = await make_invoice(
            s,
            api.tenant_id,
            customer=customer,
            contract=contract,
            issuer_company_id=issuer.id,
            receiver_company_id=receiver.id,
            data_source_id=source.id,
            external_id="inv_1",
            currency="EUR",
        )
        same_customer = await make_invoice(s, api.tenant_id, customer=customer, currency="EUR")
        await make_invoice(s, api.tenant_id, currency="EUR")
    filters = {
        "customer_refs": isvc.InvoiceFilter(customer_refs=[str(customer.id)]),
        "contract_refs": isvc.InvoiceFilter(contract_refs=[str(contract.id), str(uuid.uuid4())]),
        "issuer": isvc.InvoiceFilter(issuer_company_id="acme_de"),
        "receiver": isvc.InvoiceFilter(receiver_company_id="globex"),
        "source": isvc.InvoiceFilter(data_source_id=str(source.id)),
        "all": isvc.InvoiceFilter(
            customer_refs=[str(customer.id)], contract_refs=[str(contract.id)], currency_code="EUR"
        ),
    }

    found = {name: await list_numbers(api, filter=f) for name, f in filters.items()}

    assert sorted(found["customer_refs"]) == sorted([match.invoice_number, same_customer.invoice_number])
    for name in ("contract_refs", "issuer", "receiver", "source", "all"):
        assert found[name] == [match.invoice_number], name
    assert await list_numbers(api, filter=isvc.InvoiceFilter(currency_code="USD")) == []


async def test_long_id_lists_filter_like_short_ones(api: Api) -> None:
    """Up to 8 values are bound one parameter each, more as one expanding list: both match."""
    async with api.db.write() as s:
        customers = [await make_customer(s, api.tenant_id, external_id=f"cus_{i}") for i in range(10)]
        invoices = [await make_invoice(s, api.tenant_id, customer=c) for c in customers]
    expected = {i.invoice_number for i in invoices}

    for count in (1, 8, 9, 10):
        refs = [str(c.id) for c in customers[:count]]
        found = await list_numbers(api, filter=isvc.InvoiceFilter(customer_refs=refs), page_size=50)
        assert sorted(found) == sorted(i.invoice_number for i in invoices[:count]), count
        assert set(found) <= expected


async def test_issue_date_range_is_inclusive(api: Api) -> None:
    async with api.db.write() as s:
        for day in (1, 2, 3, 4):
            await make_invoice(s, api.tenant_id, issue_date=date(2026, 3, day), description=f"day {day}")

    reply = await api.invoices.ListInvoices(
        isvc.ListInvoicesRequest(
            filter=isvc.InvoiceFilter(
                start_date=Date(year=2026, month=3, day=2), end_date=Date(year=2026, month=3, day=3)
            )
        ),
        metadata=api.metadata,
    )

    assert sorted(i.description for i in reply.invoices) == ["day 2", "day 3"]


async def test_create_time_range_covers_whole_utc_days(api: Api) -> None:
    async with api.db.write() as s:
        before = await make_invoice(s, api.tenant_id, created_at=utc(2026, 3, 1, 23, 59, 59))
        first = await make_invoice(s, api.tenant_id, created_at=utc(2026, 3, 2, 0, 0, 0))
        last = await make_invoice(s, api.tenant_id, created_at=utc(2026, 3, 3, 23, 59, 59))
        after = await make_invoice(s, api.tenant_id, created_at=utc(2026, 3, 4, 0, 0, 0))

    numbers = await list_numbers(
        api,
        filter=isvc.InvoiceFilter(
            date_field=isvc.DATE_FIELD_CREATE_TIME,
            start_date=Date(year=2026, month=3, day=2),
            end_date=Date(year=2026, month=3, day=3),
        ),
    )

    assert numbers == [last.invoice_number, first.invoice_number]
    assert before.invoice_number not in numbers and after.invoice_number not in numbers


@pytest.mark.parametrize(
    ("sort_field", "key"),
    [
        (isvc.INVOICE_SORT_FIELD_CREATE_TIME, lambda i: i.create_time.ToDatetime()),
        (isvc.INVOICE_SORT_FIELD_ISSUE_DATE, lambda i: (i.issue_date.year, i.issue_date.month, i.issue_date.day)),
        (isvc.INVOICE_SORT_FIELD_BILLING_TYPE, lambda i: pb.BillingType.Name(i.billing_type)),
        (isvc.INVOICE_SORT_FIELD_TOTAL_AMOUNT, lambda i: i.total_minor),
        (isvc.INVOICE_SORT_FIELD_INVOICE_NUMBER, lambda i: i.invoice_number),
    ],
)
async def test_each_sort_field_orders_both_ways_with_ties_by_ref(api: Api, sort_field: Any, key: Any) -> None:
    types = [BillingType.DEMO, BillingType.SUBSCRIPTION, BillingType.TOKEN_PACK]
    async with api.db.write() as s:
        await make_invoices_bulk(
            s,
            api.tenant_id,
            12,
            each=lambda i: {
                "billing_type": str(types[i % 3]),
                "total_minor": 100 * (i % 4),
                "issue_date": date(2026, 1, 1) + timedelta(days=i % 5),
            },
        )
    replies = {}
    for direction in (isvc.SORT_DIRECTION_ASC, isvc.SORT_DIRECTION_DESC):
        replies[direction] = await api.invoices.ListInvoices(
            isvc.ListInvoicesRequest(sort_field=sort_field, sort_direction=direction), metadata=api.metadata
        )

    def expected(invoices: list[pb.Invoice], reverse: bool) -> list[str]:
        ordered = sorted(invoices, key=lambda i: (key(i), uuid.UUID(i.invoice_ref)), reverse=reverse)
        return [i.invoice_ref for i in ordered]

    asc = list(replies[isvc.SORT_DIRECTION_ASC].invoices)
    desc = list(replies[isvc.SORT_DIRECTION_DESC].invoices)
    assert [i.invoice_ref for i in asc] == expected(asc, reverse=False)
    assert [i.invoice_ref for i in desc] == expected(desc, reverse=True)


async def test_billing_type_sorts_by_its_stored_name(api: Api) -> None:
    async with api.db.write() as s:
        for billing_type in (BillingType.TOKEN_PACK, BillingType.DEMO, BillingType.SUBSCRIPTION):
            await make_invoice(s, api.tenant_id, billing_type=billing_type)

    reply = await api.invoices.ListInvoices(
        isvc.ListInvoicesRequest(
            sort_field=isvc.INVOICE_SORT_FIELD_BILLING_TYPE, sort_direction=isvc.SORT_DIRECTION_ASC
        ),
        metadata=api.metadata,
    )

    assert [i.billing_type for i in reply.invoices] == [
        pb.BILLING_TYPE_DEMO,
        pb.BILLING_TYPE_SUBSCRIPTION,
        pb.BILLING_TYPE_TOKEN_PACK,
    ]


async def test_page_size_defaults_to_fifty(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 51)

    reply = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(), metadata=api.metadata)

    assert len(reply.invoices) == 50
    assert reply.next_page_token != ""


@pytest.mark.parametrize("page_size", [201, -1])
async def test_page_size_out_of_range_is_invalid(api: Api, page_size: int) -> None:
    assert await invalid_fields(api, page_size=page_size) == ["page_size"]


async def test_numbered_pages_report_position_and_totals(api: Api) -> None:
    async with api.db.write() as s:
        ids = await make_invoices_bulk(s, api.tenant_id, 12)

    page2 = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page=2, page_size=5), metadata=api.metadata)
    page3 = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page=3, page_size=5), metadata=api.metadata)

    newest_first = [str(i) for i in reversed(ids)]
    assert [i.invoice_ref for i in page2.invoices] == newest_first[5:10]
    assert [i.invoice_ref for i in page3.invoices] == newest_first[10:]
    assert page2.page_info == isvc.PageInfo(current_page=2, per_page=5, total=12, last_page=3)
    assert page2.next_page_token == ""


async def test_numbered_page_of_nothing_has_last_page_one(api: Api) -> None:
    reply = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page=1), metadata=api.metadata)

    assert list(reply.invoices) == []
    assert reply.page_info == isvc.PageInfo(current_page=1, per_page=50, total=0, last_page=1)


async def test_negative_page_is_invalid(api: Api) -> None:
    assert await invalid_fields(api, page=-1) == ["page"]


async def test_page_with_page_token_is_invalid(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 3)
    first = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page_size=1), metadata=api.metadata)

    assert await invalid_fields(api, page_size=1, page=2, page_token=first.next_page_token) == ["page"]


async def test_keyset_pages_return_every_invoice_once(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 23, each=lambda i: {"total_minor": 100 * (i % 3)})

    by_created = await walk_keyset_pages(api, 5)
    by_total = await walk_keyset_pages(
        api, 4, sort_field=isvc.INVOICE_SORT_FIELD_TOTAL_AMOUNT, sort_direction=isvc.SORT_DIRECTION_ASC
    )

    assert len(by_created) == len(set(by_created)) == 23
    assert sorted(by_total) == sorted(by_created)


async def test_invoices_inserted_between_pages_cause_no_duplicates_or_skips(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 10, created_from=utc(2026, 1, 1), each=lambda i: {"total_minor": i})
    existing = set(await walk_keyset_pages(api, 100))
    request: dict[str, Any] = {"page_size": 4, "sort_field": isvc.INVOICE_SORT_FIELD_TOTAL_AMOUNT}
    seen: list[str] = []

    first = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(**request), metadata=api.metadata)
    seen += [i.invoice_number for i in first.invoices]
    async with api.db.write() as s:
        # One sorting before everything (largest total, newest), one into already-read territory.
        await make_invoice(s, api.tenant_id, total_minor=1_000_000)
        await make_invoice(s, api.tenant_id, total_minor=8, created_at=utc(2025, 1, 1))
    token = first.next_page_token
    while token:
        reply = await api.invoices.ListInvoices(
            isvc.ListInvoicesRequest(page_token=token, **request), metadata=api.metadata
        )
        seen += [i.invoice_number for i in reply.invoices]
        token = reply.next_page_token

    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


async def test_newer_invoices_created_between_create_time_pages_are_not_repeated(api: Api) -> None:
    async with api.db.write() as s:
        existing = await make_invoices_bulk(s, api.tenant_id, 9, created_from=utc(2026, 1, 1))
    first = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page_size=3), metadata=api.metadata)
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 5)  # created now: before every page read so far

    seen = [i.invoice_ref for i in first.invoices]
    token = first.next_page_token
    while token:
        reply = await api.invoices.ListInvoices(
            isvc.ListInvoicesRequest(page_size=3, page_token=token), metadata=api.metadata
        )
        seen += [i.invoice_ref for i in reply.invoices]
        token = reply.next_page_token

    assert seen == [str(i) for i in reversed(existing)]


async def test_token_of_another_filter_or_sort_is_invalid(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 3)
    first = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page_size=1), metadata=api.metadata)
    token = first.next_page_token

    other_filter = await invalid_fields(
        api, page_size=1, page_token=token, filter=isvc.InvoiceFilter(statuses=[pb.INVOICE_STATUS_PAID])
    )
    other_sort = await invalid_fields(api, page_size=1, page_token=token, sort_direction=isvc.SORT_DIRECTION_ASC)

    assert other_filter == other_sort == ["page_token"]


@pytest.mark.parametrize("token", ["garbage!", "e30", "eyJzb3J0IjoxfQ"])
async def test_token_that_does_not_decode_is_invalid(api: Api, token: str) -> None:
    assert await invalid_fields(api, page_token=token) == ["page_token"]


async def test_every_bad_filter_field_is_reported_at_once(api: Api) -> None:
    bad = isvc.InvoiceFilter(
        billing_types=[pb.BILLING_TYPE_UNSPECIFIED],
        statuses=[pb.INVOICE_STATUS_PAID, pb.INVOICE_STATUS_UNSPECIFIED],
        customer_refs=["nope"],
        contract_refs=[str(uuid.uuid4()), "x"],
        data_source_id="y",
        currency_code="usd",
        start_date=Date(year=2026, month=2, day=30),
    )

    fields = await invalid_fields(api, filter=bad, page_size=500)

    assert sorted(fields) == sorted(
        [
            "filter.billing_types[0]",
            "filter.statuses[1]",
            "filter.customer_refs[0]",
            "filter.contract_refs[1]",
            "filter.data_source_id",
            "filter.currency_code",
            "filter.start_date",
            "page_size",
        ]
    )


async def test_end_date_before_start_date_is_invalid(api: Api) -> None:
    bad = isvc.InvoiceFilter(start_date=Date(year=2026, month=3, day=2), end_date=Date(year=2026, month=3, day=1))

    assert await invalid_fields(api, filter=bad) == ["filter.end_date"]


async def test_another_tenants_invoices_never_appear(api: Api, other_api: Api) -> None:
    async with api.db.write() as s:
        mine = await make_invoice(s, api.tenant_id)
        await make_invoices_bulk(s, other_api.tenant_id, 3)

    numbered = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(page=1), metadata=api.metadata)

    assert [i.invoice_ref for i in numbered.invoices] == [str(mine.id)]
    assert numbered.page_info.total == 1
