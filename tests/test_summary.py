"""SummarizeInvoices: counts and totals per currency, billing type and status; never across currencies."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
from google.type.date_pb2 import Date
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from tests.conftest import Api
from tests.factories import make_invoice, violated_fields


def totals(currency: str, count: int, total: int, tax: int, paid: int, outstanding: int) -> isvc.CurrencyTotals:
    return isvc.CurrencyTotals(
        currency_code=currency,
        invoice_count=count,
        total_minor=total,
        tax_minor=tax,
        paid_minor=paid,
        outstanding_minor=outstanding,
    )


async def make_mixed_currency_invoices(api: Api) -> None:
    """USD: sub 9900 paid, token pack 5000+950 tax sent, draft 100.
    EUR: sub 2000+380 sent (600 credits), sub 1000 paid. JPY: sub 500 sent, refund 200 cancelled."""
    sub, pack, refund = BillingType.SUBSCRIPTION, BillingType.TOKEN_PACK, BillingType.REFUND
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, currency="USD", billing_type=sub, status=InvoiceStatus.PAID)
        await make_invoice(
            s, api.tenant_id, currency="USD", billing_type=pack, sub_total_minor=5000, total_tax_minor=950
        )
        await make_invoice(
            s, api.tenant_id, currency="USD", billing_type=sub, status=InvoiceStatus.DRAFT, sub_total_minor=100
        )
        await make_invoice(
            s,
            api.tenant_id,
            currency="EUR",
            billing_type=sub,
            sub_total_minor=2000,
            total_tax_minor=380,
            credits_minor=600,
        )
        await make_invoice(
            s, api.tenant_id, currency="EUR", billing_type=sub, status=InvoiceStatus.PAID, sub_total_minor=1000
        )
        await make_invoice(s, api.tenant_id, currency="JPY", billing_type=sub, sub_total_minor=500)
        await make_invoice(
            s,
            api.tenant_id,
            currency="JPY",
            billing_type=refund,
            status=InvoiceStatus.CANCELLED,
            sub_total_minor=200,
        )


async def test_totals_per_currency_are_exact_and_never_mixed(api: Api) -> None:
    await make_mixed_currency_invoices(api)

    reply = await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)

    assert reply.invoice_count == 7
    assert list(reply.currencies) == [
        totals("EUR", 2, 3380, 380, 1000, 1780),
        totals("JPY", 2, 700, 0, 0, 500),
        totals("USD", 3, 15950, 950, 9900, 5950),
    ]


async def test_totals_per_billing_type_and_currency(api: Api) -> None:
    await make_mixed_currency_invoices(api)

    reply = await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)

    assert [(row.billing_type, row.totals) for row in reply.billing_types] == [
        (pb.BILLING_TYPE_REFUND, totals("JPY", 1, 200, 0, 0, 0)),
        (pb.BILLING_TYPE_SUBSCRIPTION, totals("EUR", 2, 3380, 380, 1000, 1780)),
        (pb.BILLING_TYPE_SUBSCRIPTION, totals("JPY", 1, 500, 0, 0, 500)),
        (pb.BILLING_TYPE_SUBSCRIPTION, totals("USD", 2, 10000, 0, 9900, 0)),
        (pb.BILLING_TYPE_TOKEN_PACK, totals("USD", 1, 5950, 950, 0, 5950)),
    ]


async def test_totals_per_status_and_currency(api: Api) -> None:
    await make_mixed_currency_invoices(api)

    reply = await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)

    assert [(row.status, row.totals) for row in reply.statuses] == [
        (pb.INVOICE_STATUS_CANCELLED, totals("JPY", 1, 200, 0, 0, 0)),
        (pb.INVOICE_STATUS_DRAFT, totals("USD", 1, 100, 0, 0, 0)),
        (pb.INVOICE_STATUS_PAID, totals("EUR", 1, 1000, 0, 1000, 0)),
        (pb.INVOICE_STATUS_PAID, totals("USD", 1, 9900, 0, 9900, 0)),
        (pb.INVOICE_STATUS_SENT, totals("EUR", 1, 2380, 380, 0, 1780)),
        (pb.INVOICE_STATUS_SENT, totals("JPY", 1, 500, 0, 0, 500)),
        (pb.INVOICE_STATUS_SENT, totals("USD", 1, 5950, 950, 0, 5950)),
    ]


async def test_filter_limits_what_is_summarized(api: Api) -> None:
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 1, 31), sub_total_minor=1)
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 2, 1), sub_total_minor=20)
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 2, 28), sub_total_minor=300)
        await make_invoice(s, api.tenant_id, issue_date=date(2026, 3, 1), sub_total_minor=4000)

    reply = await api.invoices.SummarizeInvoices(
        isvc.SummarizeInvoicesRequest(
            filter=isvc.InvoiceFilter(
                start_date=Date(year=2026, month=2, day=1), end_date=Date(year=2026, month=2, day=28)
            )
        ),
        metadata=api.metadata,
    )

    assert reply.invoice_count == 2
    assert list(reply.currencies) == [totals("USD", 2, 320, 0, 0, 320)]


async def test_nothing_to_summarize_gives_zero_and_no_rows(api: Api) -> None:
    reply = await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)

    assert reply == isvc.SummarizeInvoicesResponse(invoice_count=0)


async def test_another_tenants_invoices_are_not_counted(api: Api, other_api: Api) -> None:
    async with api.db.write() as s:
        await make_invoice(s, other_api.tenant_id, sub_total_minor=777)

    reply = await api.invoices.SummarizeInvoices(isvc.SummarizeInvoicesRequest(), metadata=api.metadata)

    assert reply.invoice_count == 0


async def test_bad_filter_is_invalid_argument_naming_every_field(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.SummarizeInvoices(
            isvc.SummarizeInvoicesRequest(
                filter=isvc.InvoiceFilter(
                    currency_code="XYZ",
                    start_date=Date(year=2026, month=3, day=2),
                    end_date=Date(year=2026, month=3, day=1),
                )
            ),
            metadata=api.metadata,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["filter.currency_code", "filter.end_date"]
