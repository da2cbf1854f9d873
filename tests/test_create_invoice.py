"""CreateInvoice: totals from the lines, defaults, every bad field at once, references that must
exist for the tenant, gapless number_in_contract, and request_id idempotency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type.date_pb2 import Date
from grpc_status import rpc_status
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select

from invoice_rpc.domain.enums import BillingType
from invoice_rpc.domain.errors import InvalidArgument, NotFound
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.invoice_create import NewInvoice, NewLineItem, create_invoice
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import make_company, make_contract, make_customer, make_plan


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields.extend(v.field for v in bad_request.field_violations)
    return fields


def item(name: str = "Pro plan", quantity: str = "1", unit_price_minor: int = 9900, **fields: Any) -> pb.LineItem:
    return pb.LineItem(name=name, quantity=quantity, unit_price_minor=unit_price_minor, **fields)


def new_invoice(**fields: Any) -> pb.Invoice:
    values: dict[str, Any] = {
        "billing_type": pb.BILLING_TYPE_SUBSCRIPTION,
        "currency_code": "USD",
        "line_items": [item()],
    }
    return pb.Invoice(**(values | fields))


async def create(api: Api, invoice: pb.Invoice, request_id: str = "") -> pb.Invoice:
    return await api.invoices.CreateInvoice(
        isvc.CreateInvoiceRequest(invoice=invoice, request_id=request_id), metadata=api.metadata
    )


async def create_error(api: Api, invoice: pb.Invoice) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(api, invoice)
    return caught.value


async def invoice_count(api: Api) -> int:
    async with api.db.read() as s:
        return int(await s.scalar(select(func.count()).where(m.Invoice.tenant_id == api.tenant_id)) or 0)


async def test_totals_are_computed_from_the_lines(api: Api) -> None:
    created = await create(
        api,
        new_invoice(
            currency_code="EUR",
            line_items=[
                item("Seats", "3", 2500, discount_minor=500, tax=pb.Tax(rate_percent="19", scheme="VAT")),
                item("Overage", "1.5", 333, tax=pb.Tax(rate_percent="7")),
            ],
            credits_minor=100,
        ),
    )
    seats, overage = created.line_items
    assert (seats.position, seats.sub_total_minor, seats.discount_minor, seats.tax_minor, seats.total_minor) == (
        1,
        7500,
        500,
        1330,
        8330,
    )
    assert seats.tax.rate_percent == "19" and seats.tax.scheme == "VAT"
    assert (overage.position, overage.sub_total_minor, overage.tax_minor, overage.total_minor) == (2, 500, 35, 535)
    assert created.sub_total_minor == 8000
    assert created.total_discount_minor == 500
    assert created.total_tax_minor == 1365
    assert created.total_minor == 8865
    assert created.credits_minor == 100
    assert created.amount_paid_minor == 0
    assert created.amount_remaining_minor == 8765


async def test_defaults_are_draft_today_invoice_380_and_due_on_issue(api: Api) -> None:
    created = await create(api, new_invoice())
    today = datetime.now(UTC).date()
    assert created.status == pb.INVOICE_STATUS_DRAFT
    assert created.document_type_code == "380"
    assert created.accounting_event_type == pb.ACCOUNTING_EVENT_TYPE_INVOICE
    assert created.invoice_number == f"INV-{today.year}-0001"
    assert date(created.issue_date.year, created.issue_date.month, created.issue_date.day) == today
    assert created.due_date == created.issue_date
    assert not created.HasField("submission_time")


async def test_due_date_is_issue_date_plus_net_terms_days(api: Api) -> None:
    created = await create(
        api, new_invoice(issue_date=Date(year=2026, month=1, day=15), net_terms=pb.NetTerms(days=30))
    )
    assert (created.due_date.year, created.due_date.month, created.due_date.day) == (2026, 2, 14)
    assert created.net_terms.days == 30


async def test_due_upon_receipt_is_due_on_the_issue_date(api: Api) -> None:
    created = await create(
        api,
        new_invoice(
            issue_date=Date(year=2026, month=3, day=1),
            net_terms=pb.NetTerms(payment_term=pb.PAYMENT_TERM_DUE_UPON_RECEIPT),
        ),
    )
    assert created.due_date == Date(year=2026, month=3, day=1)
    assert created.net_terms.payment_term == pb.PAYMENT_TERM_DUE_UPON_RECEIPT


async def test_sent_invoice_gets_a_submission_time(api: Api) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await create(api, new_invoice(status=pb.INVOICE_STATUS_SENT))
    assert created.status == pb.INVOICE_STATUS_SENT
    assert created.submission_time.ToDatetime(tzinfo=UTC) >= before


@pytest.mark.parametrize("billing_type", [pb.BILLING_TYPE_REFUND, pb.BILLING_TYPE_CANCELLATION])
async def test_refunds_and_cancellations_are_credit_notes_381(api: Api, billing_type: int) -> None:
    created = await create(api, new_invoice(billing_type=billing_type))
    assert created.document_type_code == "381"
    assert created.accounting_event_type == pb.ACCOUNTING_EVENT_TYPE_CREDIT_NOTE


async def test_every_bad_field_is_reported_at_once_and_nothing_is_written(api: Api) -> None:
    error = await create_error(
        api,
        pb.Invoice(
            currency_code="usd",
            status=pb.INVOICE_STATUS_PAID,
            net_terms=pb.NetTerms(days=-1),
            issue_date=Date(year=2026, month=2, day=30),
            line_items=[
                item(name=" ", quantity="1.1234567"),
                item(quantity="-1", unit_price_minor=-5),
                item(quantity="2", unit_price_minor=100, discount_minor=201, tax=pb.Tax(rate_percent="100.5")),
            ],
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(error)) == {
        "invoice.billing_type",
        "invoice.currency_code",
        "invoice.status",
        "invoice.net_terms.days",
        "invoice.issue_date",
        "invoice.line_items[0].name",
        "invoice.line_items[0].quantity",
        "invoice.line_items[1].quantity",
        "invoice.line_items[1].unit_price_minor",
        "invoice.line_items[2].tax.rate_percent",
    }
    assert await invoice_count(api) == 0


async def test_discount_above_the_line_sub_total_is_invalid(api: Api) -> None:
    error = await create_error(
        api, new_invoice(line_items=[item(quantity="2", unit_price_minor=100, discount_minor=201)])
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["invoice.line_items[0].discount_minor"]


async def test_an_invoice_needs_a_line_item(api: Api) -> None:
    error = await create_error(api, new_invoice(line_items=[]))
    assert violated_fields(error) == ["invoice.line_items"]


async def test_due_date_before_issue_date_is_invalid(api: Api) -> None:
    error = await create_error(
        api, new_invoice(issue_date=Date(year=2026, month=5, day=2), due_date=Date(year=2026, month=5, day=1))
    )
    assert violated_fields(error) == ["invoice.due_date"]


async def test_credits_above_the_total_are_invalid(api: Api) -> None:
    error = await create_error(api, new_invoice(line_items=[item(unit_price_minor=500)], credits_minor=501))
    assert violated_fields(error) == ["invoice.credits_minor"]


async def test_unknown_customer_is_not_found_naming_it(api: Api) -> None:
    missing = str(uuid.uuid4())
    error = await create_error(api, new_invoice(customer=pb.CustomerSummary(customer_ref=missing)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert missing in (error.details() or "")
    assert await invoice_count(api) == 0


async def test_another_tenants_customer_is_not_found(api: Api, other_api: Api) -> None:
    async with other_api.db.write() as s:
        foreign = await make_customer(s, other_api.tenant_id)
    error = await create_error(api, new_invoice(customer=pb.CustomerSummary(customer_ref=str(foreign.id))))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_references_are_resolved_and_shown(api: Api) -> None:
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id, name="Acme")
        issuer = await make_company(s, api.tenant_id, external_id="us-entity")
        plan = await make_plan(s, api.tenant_id, external_id="plan_pro")
    created = await create(
        api,
        new_invoice(
            customer=pb.CustomerSummary(customer_ref=str(customer.id)),
            issuer_company_id=issuer.external_id,
            plan_id=plan.external_id,
            subscription_id="sub_001",
        ),
    )
    assert created.customer.customer_ref == str(customer.id)
    assert created.customer.name == "Acme"
    assert created.issuer_company_id == "us-entity"
    assert created.plan_id == "plan_pro"
    assert created.subscription_id == "sub_001"


async def test_unknown_ids_are_named_together_in_not_found(api: Api) -> None:
    error = await create_error(api, new_invoice(issuer_company_id="no-such-company", plan_id="no-such-plan"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-company" in (error.details() or "") and "no-such-plan" in (error.details() or "")


async def test_contract_must_belong_to_the_given_customer(api: Api) -> None:
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id)
        contract = await make_contract(s, api.tenant_id)  # of another customer
    error = await create_error(
        api,
        new_invoice(
            customer=pb.CustomerSummary(customer_ref=str(customer.id)),
            contract=pb.ContractSummary(contract_ref=str(contract.id)),
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["invoice.contract.contract_ref"]


async def test_invoices_of_a_contract_are_numbered_from_one(api: Api) -> None:
    async with api.db.write() as s:
        contract = await make_contract(s, api.tenant_id)
    ref = pb.ContractSummary(contract_ref=str(contract.id))
    first = await create(api, new_invoice(contract=ref))
    second = await create(api, new_invoice(contract=ref))
    assert (first.number_in_contract, second.number_in_contract) == (1, 2)
    assert first.contract.contract_number == contract.contract_number
    assert first.customer.customer_ref == str(contract.customer_id)  # the contract's customer


async def test_failed_create_gives_back_its_number_in_contract(api: Api) -> None:
    async with api.db.write() as s:
        contract = await make_contract(s, api.tenant_id)
    ref = pb.ContractSummary(contract_ref=str(contract.id))
    error = await create_error(api, new_invoice(contract=ref, payment_means_ids=["pm_missing"]))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await create(api, new_invoice(contract=ref))).number_in_contract == 1


async def test_payment_means_documents_and_people_are_linked_in_order(api: Api) -> None:
    async with api.db.write() as s:
        for external_id in ("pm_card", "pm_bank"):
            s.add(m.PaymentMeans(tenant_id=api.tenant_id, external_id=external_id, fingerprint="test"))
        s.add(m.Document(tenant_id=api.tenant_id, external_id="doc_1", fingerprint="test"))
        s.add(m.Person(tenant_id=api.tenant_id, external_id="person_1", fingerprint="test"))
    created = await create(
        api, new_invoice(payment_means_ids=["pm_bank", "pm_card"], document_ids=["doc_1"], person_ids=["person_1"])
    )
    assert list(created.payment_means_ids) == ["pm_bank", "pm_card"]
    assert list(created.document_ids) == ["doc_1"]
    assert list(created.person_ids) == ["person_1"]


async def test_create_records_an_audit_event(api: Api) -> None:
    created = await create(api, new_invoice(), request_id="audit-1")
    async with api.db.read() as s:
        events = (
            await s.execute(
                select(m.AuditEvent.action, m.AuditEvent.api_key_id, m.AuditEvent.after).where(
                    m.AuditEvent.invoice_id == uuid.UUID(created.invoice_ref)
                )
            )
        ).all()
    assert [(e.action, e.api_key_id, e.after["invoice_number"]) for e in events] == [
        ("invoice.created", api.api_key_id, created.invoice_number)
    ]


async def test_retry_with_the_same_request_id_returns_the_first_invoice(api: Api) -> None:
    first = await create(api, new_invoice(), request_id="req-1")
    retry = await create(api, new_invoice(), request_id="req-1")
    assert retry.invoice_ref == first.invoice_ref
    assert retry.invoice_number == first.invoice_number
    assert (await create(api, new_invoice())).invoice_number.endswith("-0002")  # no number was spent
    assert await invoice_count(api) == 2


async def test_request_ids_are_per_tenant(api: Api, other_api: Api) -> None:
    mine = await create(api, new_invoice(), request_id="shared-key")
    theirs = await create(other_api, new_invoice(), request_id="shared-key")
    assert mine.invoice_ref != theirs.invoice_ref


async def test_concurrent_duplicates_create_one_invoice_and_retries_return_it(api: Api) -> None:
    results = await asyncio.gather(
        *(create(api, new_invoice(), request_id="race-1") for _ in range(6)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, pb.Invoice)]
    aborted = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert created, results
    assert all(e.code() == grpc.StatusCode.ABORTED for e in aborted), aborted
    assert {r.invoice_ref for r in created} == {created[0].invoice_ref}
    assert (await create(api, new_invoice(), request_id="race-1")).invoice_ref == created[0].invoice_ref
    assert await invoice_count(api) == 1
    assert created[0].invoice_number.endswith("-0001")


# --- the contract named by its external id (what the REST faces use; gRPC takes contract_ref) ---


async def create_in_service(api: Api, **fields: Any) -> InvoiceRecord:
    """The Create use case called directly, in a write transaction of its own: InvoiceService's
    CreateInvoice has no field for a contract's external id."""
    new = NewInvoice(
        billing_type=BillingType.SUBSCRIPTION,
        currency="USD",
        line_items=[NewLineItem(name="Pro plan", quantity="1", unit_price_minor=9900)],
        **fields,
    )
    async with api.db.write() as s:
        return await create_invoice(s, Caller(api.tenant_id, api.api_key_id, "test"), new)


async def test_contract_named_by_external_id_is_numbered_and_gives_its_customer(api: Api) -> None:
    async with api.db.write() as s:
        contract = await make_contract(s, api.tenant_id, external_id="ctr_1")
    first = await create_in_service(api, contract_id="ctr_1")
    second = await create_in_service(api, contract_id="ctr_1")
    assert (first.contract_ref, first.contract_number) == (contract.id, contract.contract_number)
    assert (first.number_in_contract, second.number_in_contract) == (1, 2)
    assert first.customer_ref == contract.customer_id  # the contract's customer
    # The same counter as for a contract named by reference.
    by_ref = await create(api, new_invoice(contract=pb.ContractSummary(contract_ref=str(contract.id))))
    assert by_ref.number_in_contract == 3


async def test_contract_id_and_contract_ref_together_are_invalid(api: Api) -> None:
    async with api.db.write() as s:
        contract = await make_contract(s, api.tenant_id, external_id="ctr_1")
    with pytest.raises(InvalidArgument) as caught:
        await create_in_service(api, contract_id="ctr_1", contract_ref=str(contract.id))
    assert [v.field for v in caught.value.violations] == ["invoice.contract_id"]
    with pytest.raises(InvalidArgument) as caught:
        await create_in_service(api, contract_id="  ")
    assert [v.field for v in caught.value.violations] == ["invoice.contract_id"]
    assert await invoice_count(api) == 0


async def test_contract_id_must_belong_to_the_given_customer(api: Api) -> None:
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id)
        await make_contract(s, api.tenant_id, external_id="ctr_1")  # of another customer
    with pytest.raises(InvalidArgument) as caught:
        await create_in_service(api, contract_id="ctr_1", customer_ref=str(customer.id))
    assert [v.field for v in caught.value.violations] == ["invoice.contract_id"]
    assert await invoice_count(api) == 0


async def test_unknown_or_another_tenants_contract_id_is_not_found(api: Api, other_api: Api) -> None:
    async with other_api.db.write() as s:
        await make_contract(s, other_api.tenant_id, external_id="ctr_theirs")
    for contract_id in ("ctr_theirs", "ctr_nope"):
        with pytest.raises(NotFound) as caught:
            await create_in_service(api, contract_id=contract_id)
        assert caught.value.message == f"not found: contract {contract_id}"
    assert await invoice_count(api) == 0
