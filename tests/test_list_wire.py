"""ListInvoices' wire path: on PostgreSQL a basic-view page is read as each invoice's stored
own-field bytes plus its linked values (service `list_invoice_parts`), written out by
rpc/invoice_wire.py, and must answer exactly what the Python path builds: the same invoices,
order, page tokens and page info, field for field."""

from __future__ import annotations

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from invoice_rpc.domain.enums import InvoiceStatus, SortDirection, SortField
from invoice_rpc.rpc.convert import add_invoices_pb, page_info_to_pb
from invoice_rpc.rpc.invoice_filters import SORT_DIRECTION_FROM_PB, SORT_FIELD_FROM_PB
from invoice_rpc.rpc.invoice_wire import frame_list_response, invoice_parts_wire
from invoice_rpc.service import invoice_queries
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort, PageRequest
from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import make_customer, make_invoice
from tests.test_stream_wire import drop_stored_wire, make_every_kind_of_invoice, python_invoices, require_postgresql


async def python_page(
    api: Api, query: InvoiceQuery, sort: InvoiceSort, request: PageRequest
) -> isvc.ListInvoicesResponse:
    """The page as the Python path answers it (records, then invoice_to_pb)."""
    async with api.db.read_autocommit() as s:
        page = await invoice_queries.list_invoices(s, api.tenant_id, query, sort, request)
    response = isvc.ListInvoicesResponse(
        next_page_token=page.next_page_token, page_info=page_info_to_pb(page.page_info)
    )
    add_invoices_pb(response.invoices, page.invoices)
    return response


async def wire_page(api: Api, query: InvoiceQuery, sort: InvoiceSort, request: PageRequest) -> bytes:
    """The page's ListInvoicesResponse bytes as the wire path writes them."""
    async with api.db.read_driver() as connection:
        parts = await invoice_queries.list_invoice_parts(connection, api.tenant_id, query, sort, request)
    rest = isvc.ListInvoicesResponse(next_page_token=parts.next_page_token, page_info=page_info_to_pb(parts.page_info))
    return frame_list_response(map(invoice_parts_wire, parts.invoices), rest)


async def test_keyset_pages_parse_to_what_the_python_path_answers(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    query, sort = InvoiceQuery(), InvoiceSort()

    token, pages = "", 0
    while True:
        request = PageRequest(page_size=3, page_token=token)
        expected = await python_page(api, query, sort, request)
        answered = isvc.ListInvoicesResponse.FromString(await wire_page(api, query, sort, request))
        assert answered == expected
        pages += 1
        token = answered.next_page_token
        if not token:
            break

    assert pages == -(-len(await python_invoices(api)) // 3)


async def test_numbered_pages_carry_the_same_invoices_and_page_info(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    sort = InvoiceSort(field=SortField.TOTAL_AMOUNT, direction=SortDirection.DESC)

    for page in (1, 2, 5):
        request = PageRequest(page_size=4, page=page)
        expected = await python_page(api, InvoiceQuery(), sort, request)
        answered = isvc.ListInvoicesResponse.FromString(await wire_page(api, InvoiceQuery(), sort, request))
        assert answered == expected
        assert answered.page_info.total == len(await python_invoices(api))


@pytest.mark.parametrize("field", list(SortField))
@pytest.mark.parametrize("direction", list(SortDirection))
async def test_list_invoices_over_grpc_answers_the_python_paths_pages(
    api: Api, field: SortField, direction: SortDirection
) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)
    sort = InvoiceSort(field=field, direction=direction)
    sort_field = next(k for k, v in SORT_FIELD_FROM_PB.items() if v is field and k)
    sort_direction = next(k for k, v in SORT_DIRECTION_FROM_PB.items() if v is direction and k)

    token, answered_pages = "", 0
    while True:
        reply = await api.invoices.ListInvoices(
            isvc.ListInvoicesRequest(
                sort_field=sort_field, sort_direction=sort_direction, page_size=4, page_token=token
            ),
            metadata=api.metadata,
        )
        assert reply == await python_page(api, InvoiceQuery(), sort, PageRequest(page_size=4, page_token=token))
        answered_pages += 1
        token = reply.next_page_token
        if not token:
            break

    assert answered_pages > 1


async def test_filters_apply_to_list_pages(api: Api, other_api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        paid = await make_invoice(s, api.tenant_id, status=InvoiceStatus.PAID)
        await make_invoice(s, api.tenant_id, status=InvoiceStatus.SENT)
        await make_invoice(s, other_api.tenant_id, status=InvoiceStatus.PAID)

    reply = await api.invoices.ListInvoices(
        isvc.ListInvoicesRequest(
            filter=isvc.InvoiceFilter(billing_types=[pb.BILLING_TYPE_SUBSCRIPTION], statuses=[pb.INVOICE_STATUS_PAID])
        ),
        metadata=api.metadata,
    )

    assert [invoice.invoice_ref for invoice in reply.invoices] == [str(paid.id)]
    assert reply.invoices[0].billing_type == pb.BILLING_TYPE_SUBSCRIPTION


async def test_a_long_customer_list_filters_numbered_and_keyset_pages(api: Api) -> None:
    """More customers than are bound one parameter each (an IN list written per call): the count
    and the pages are the Python path's."""
    require_postgresql(api)
    async with api.db.write() as s:
        customers = [await make_customer(s, api.tenant_id, name=f"Customer {n}") for n in range(12)]
        for customer in customers:
            await make_invoice(s, api.tenant_id, customer=customer)
            await make_invoice(s, api.tenant_id, customer=customer)
    query = InvoiceQuery(customer_refs=tuple(c.id for c in customers[:10]))
    sort = InvoiceSort()

    for page in (1, 3, 4):
        request = PageRequest(page_size=6, page=page)
        expected = await python_page(api, query, sort, request)
        answered = isvc.ListInvoicesResponse.FromString(await wire_page(api, query, sort, request))
        assert answered == expected
        assert answered.page_info.total == 20
    first = PageRequest(page_size=15)
    expected = await python_page(api, query, sort, first)
    answered = isvc.ListInvoicesResponse.FromString(await wire_page(api, query, sort, first))
    assert answered == expected and len(answered.invoices) == 15
    rest = PageRequest(page_size=15, page_token=answered.next_page_token)
    answered = isvc.ListInvoicesResponse.FromString(await wire_page(api, query, sort, rest))
    assert answered == await python_page(api, query, sort, rest)
    assert len(answered.invoices) == 5 and not answered.next_page_token


async def test_a_renamed_customer_shows_in_a_page_at_once(api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id, name="Acme")
        await make_invoice(s, api.tenant_id, customer=customer)
    async with api.db.write() as s:
        await s.execute(update(m.Customer).where(m.Customer.id == customer.id).values(name="Renamed GmbH"))

    reply = await api.invoices.ListInvoices(isvc.ListInvoicesRequest(), metadata=api.metadata)

    assert [i.customer.name for i in reply.invoices] == ["Renamed GmbH"]


async def test_an_invoice_without_stored_bytes_fails_the_page(api: Api) -> None:
    require_postgresql(api)
    async with api.db.write() as s:
        bare = await make_invoice(s, api.tenant_id)
    await drop_stored_wire(api, bare.id)

    with pytest.raises(DBAPIError, match=f"invoice {bare.id} has no stored wire bytes"):
        await wire_page(api, InvoiceQuery(), InvoiceSort(), PageRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListInvoices(isvc.ListInvoicesRequest(), metadata=api.metadata)
    assert caught.value.code() == grpc.StatusCode.INTERNAL


async def test_line_items_view_keeps_the_python_path(api: Api) -> None:
    require_postgresql(api)
    await make_every_kind_of_invoice(api)

    reply = await api.invoices.ListInvoices(
        isvc.ListInvoicesRequest(view=isvc.INVOICE_VIEW_FULL, page_size=200), metadata=api.metadata
    )

    assert [i.invoice_ref for i in reply.invoices] == [i.invoice_ref for i in await python_invoices(api)]
