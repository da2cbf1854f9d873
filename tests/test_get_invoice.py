"""GetInvoice: one invoice with its lines, by number, reference or data source + external id."""

from __future__ import annotations

import uuid

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb

from tests.conftest import Api
from tests.factories import line, make_customer, make_data_source, make_invoice, violated_fields


async def test_get_by_number_returns_full_invoice_with_lines(api: Api) -> None:
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id, name="Acme")
        invoice = await make_invoice(
            s, api.tenant_id, customer=customer, lines=[line("Pro", "2", 1000, tax_minor=380), line("Setup", "1", 500)]
        )

    got = await api.invoices.GetInvoice(
        isvc.GetInvoiceRequest(invoice_number=invoice.invoice_number), metadata=api.metadata
    )

    assert got.invoice_ref == str(invoice.id)
    assert got.customer.name == "Acme"
    lines = [(li.name, li.quantity, li.total_minor) for li in got.line_items]
    assert lines == [("Pro", "2", 2380), ("Setup", "1", 500)]
    assert (got.sub_total_minor, got.total_tax_minor, got.total_minor) == (2500, 380, 2880)
    assert got.status == pb.INVOICE_STATUS_SENT


async def test_get_by_ref_finds_the_invoice(api: Api) -> None:
    async with api.db.write() as s:
        invoice = await make_invoice(s, api.tenant_id)

    got = await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_ref=str(invoice.id)), metadata=api.metadata)

    assert got.invoice_number == invoice.invoice_number


async def test_get_by_external_key_accepts_source_name_or_id(api: Api) -> None:
    async with api.db.write() as s:
        source = await make_data_source(s, api.tenant_id, name="stripe")
        invoice = await make_invoice(s, api.tenant_id, data_source_id=source.id, external_id="inv_001")

    by_name = await api.invoices.GetInvoice(
        isvc.GetInvoiceRequest(external_key=isvc.ExternalInvoiceKey(data_source="stripe", external_id="inv_001")),
        metadata=api.metadata,
    )
    by_id = await api.invoices.GetInvoice(
        isvc.GetInvoiceRequest(external_key=isvc.ExternalInvoiceKey(data_source=str(source.id), external_id="inv_001")),
        metadata=api.metadata,
    )

    assert by_name.invoice_ref == by_id.invoice_ref == str(invoice.id)
    assert by_name.data_source_id == str(source.id)
    assert by_name.external_id == "inv_001"


async def test_ref_that_is_not_a_uuid_is_invalid_argument(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_ref="not-a-uuid"), metadata=api.metadata)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["invoice_ref"]


async def test_request_without_key_is_invalid_argument(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(), metadata=api.metadata)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["key"]


async def test_external_key_without_parts_names_both_fields(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(
            isvc.GetInvoiceRequest(external_key=isvc.ExternalInvoiceKey()), metadata=api.metadata
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["external_key.data_source", "external_key.external_id"]


async def test_unknown_number_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_number="INV-1999-0001"), metadata=api.metadata)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_ref_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.GetInvoice(isvc.GetInvoiceRequest(invoice_ref=str(uuid.uuid4())), metadata=api.metadata)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_tenants_invoice_is_not_found_by_any_key(api: Api, other_api: Api) -> None:
    async with other_api.db.write() as s:
        source = await make_data_source(s, other_api.tenant_id, name="stripe")
        invoice = await make_invoice(s, other_api.tenant_id, data_source_id=source.id, external_id="inv_9")
    requests = [
        isvc.GetInvoiceRequest(invoice_number=invoice.invoice_number),
        isvc.GetInvoiceRequest(invoice_ref=str(invoice.id)),
        isvc.GetInvoiceRequest(external_key=isvc.ExternalInvoiceKey(data_source="stripe", external_id="inv_9")),
        isvc.GetInvoiceRequest(external_key=isvc.ExternalInvoiceKey(data_source=str(source.id), external_id="inv_9")),
    ]

    codes = []
    for request in requests:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.invoices.GetInvoice(request, metadata=api.metadata)
        codes.append(caught.value.code())

    assert codes == [grpc.StatusCode.NOT_FOUND] * 4
