"""The ingest rpcs: data sources, customers (and GetCustomer), plans, contracts, companies,
orders, usage records, payment means, people and documents — all through the one upsert
mechanism, with per-item results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.test_bulk_upsert import ERROR, INSERTED, UNCHANGED, UPDATED, load_stripe_tenant

AUG_1 = Timestamp(seconds=int(datetime(2024, 8, 1, tzinfo=UTC).timestamp()))


def statuses(reply: object) -> list[tuple[str, int, str]]:
    return [(r.id, r.import_status, r.import_error) for r in reply.results]  # type: ignore[attr-defined]


async def expect_code(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code
    return caught.value.details() or ""


# Data sources


async def test_create_data_source_returns_it(api: Api) -> None:
    source = await api.imports.CreateDataSource(
        ipb.CreateDataSourceRequest(data_source=pb.DataSource(name="stripe")), metadata=api.metadata
    )
    assert source.name == "stripe" and uuid.UUID(source.id) and source.HasField("create_time")


async def test_data_source_name_is_unique_per_tenant(api: Api, other_api: Api) -> None:
    request = ipb.CreateDataSourceRequest(data_source=pb.DataSource(name="stripe"))
    await api.imports.CreateDataSource(request, metadata=api.metadata)
    await other_api.imports.CreateDataSource(request, metadata=other_api.metadata)
    await expect_code(api.imports.CreateDataSource(request, metadata=api.metadata), grpc.StatusCode.ALREADY_EXISTS)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_data_source_name_needs_1_to_100_characters(api: Api, name: str) -> None:
    request = ipb.CreateDataSourceRequest(data_source=pb.DataSource(name=name))
    details = await expect_code(
        api.imports.CreateDataSource(request, metadata=api.metadata), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "data_source.name" in details


# Customers


async def upsert_customers(api: Api, *customers: pb.Customer) -> list[tuple[str, int, str]]:
    reply = await api.imports.UpsertCustomers(ipb.UpsertCustomersRequest(customers=customers), metadata=api.metadata)
    return statuses(reply)


async def test_customer_resend_is_unchanged_and_change_is_updated(api: Api) -> None:
    await load_stripe_tenant(api)
    same = pb.Customer(id="cus_123", data_source_id="stripe", name="Acme Corporation", legal_name="Acme Corp Ltd")
    changed = pb.Customer(id="cus_123", data_source_id="stripe", name="Acme Inc", legal_name="Acme Corp Ltd")
    assert await upsert_customers(api, same) == [("cus_123", UNCHANGED, "")]
    assert await upsert_customers(api, changed) == [("cus_123", UPDATED, "")]


async def test_customer_errors_name_the_missing_reference(api: Api) -> None:
    await load_stripe_tenant(api)
    assert await upsert_customers(
        api,
        pb.Customer(id="c1", data_source_id="nope"),
        pb.Customer(id="c2", data_source_id="stripe", company_id="co_9"),
        pb.Customer(id="", data_source_id=""),
    ) == [
        ("c1", ERROR, "Data source nope does not exist"),
        ("c2", ERROR, "Company ID co_9 does not exist"),
        ("", ERROR, "Missing customer ID; Missing data source"),
    ]


async def test_get_customer_by_ref_and_by_external_key(api: Api) -> None:
    await load_stripe_tenant(api)
    await upsert_companies(api, pb.Company(id="acme", name="Acme"))
    await upsert_customers(api, pb.Customer(id="cus_123", data_source_id="stripe", name="Acme", company_id="acme"))
    by_key = await api.imports.GetCustomer(
        ipb.GetCustomerRequest(external_key=ipb.ExternalCustomerKey(customer_id="cus_123")), metadata=api.metadata
    )
    by_ref = await api.imports.GetCustomer(
        ipb.GetCustomerRequest(customer_ref=by_key.customer_ref), metadata=api.metadata
    )
    assert by_ref == by_key
    assert (by_key.id, by_key.name, by_key.company_id) == ("cus_123", "Acme", "acme")


async def test_get_customer_id_in_two_sources_needs_the_source(api: Api) -> None:
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, source="paddle")
    no_source = ipb.GetCustomerRequest(external_key=ipb.ExternalCustomerKey(customer_id="cus_123"))
    await expect_code(api.imports.GetCustomer(no_source, metadata=api.metadata), grpc.StatusCode.FAILED_PRECONDITION)
    with_source = ipb.GetCustomerRequest(
        external_key=ipb.ExternalCustomerKey(data_source="paddle", customer_id="cus_123")
    )
    customer = await api.imports.GetCustomer(with_source, metadata=api.metadata)
    assert customer.id == "cus_123"


async def test_get_customer_of_another_tenant_is_not_found(api: Api, other_api: Api) -> None:
    await load_stripe_tenant(api)
    request = ipb.GetCustomerRequest(external_key=ipb.ExternalCustomerKey(customer_id="cus_123"))
    customer = await api.imports.GetCustomer(request, metadata=api.metadata)
    await expect_code(other_api.imports.GetCustomer(request, metadata=other_api.metadata), grpc.StatusCode.NOT_FOUND)
    by_ref = ipb.GetCustomerRequest(customer_ref=customer.customer_ref)
    await expect_code(other_api.imports.GetCustomer(by_ref, metadata=other_api.metadata), grpc.StatusCode.NOT_FOUND)


async def test_get_customer_needs_a_key(api: Api) -> None:
    await expect_code(
        api.imports.GetCustomer(ipb.GetCustomerRequest(), metadata=api.metadata), grpc.StatusCode.INVALID_ARGUMENT
    )


# Plans


async def test_plan_errors(api: Api) -> None:
    await load_stripe_tenant(api)
    reply = await api.imports.UpsertPlans(
        ipb.UpsertPlansRequest(
            plans=[
                pb.Plan(id="p1", data_source_id="stripe", interval="fortnight", amount_minor=1, currency_code="USD"),
                pb.Plan(id="p2", data_source_id="stripe", interval="year", amount_minor=-1, currency_code="usd"),
                pb.Plan(id="p3", data_source_id="stripe", interval="day", amount_minor=1, currency_code="XYZ"),
            ]
        ),
        metadata=api.metadata,
    )
    assert statuses(reply) == [
        ("p1", ERROR, "Invalid interval 'fortnight': must be one of day, week, month, year"),
        ("p2", ERROR, "amount must be a non-negative number"),
        ("p3", ERROR, "Invalid currency 'XYZ': must be a 3-letter ISO 4217 code"),
    ]


# Contracts


async def upsert_contracts(api: Api, *contracts: pb.Contract) -> list[tuple[str, int, str]]:
    reply = await api.imports.UpsertContracts(ipb.UpsertContractsRequest(contracts=contracts), metadata=api.metadata)
    return statuses(reply)


async def test_contract_finds_its_customer_across_sources(api: Api) -> None:
    await load_stripe_tenant(api)
    await upsert_customers(api, pb.Customer(id="cus_elsewhere", data_source_id="stripe"))
    assert await upsert_contracts(api, pb.Contract(id="ctr_1", contract_number=1, customer_id="cus_elsewhere")) == [
        ("ctr_1", INSERTED, "")
    ]


async def test_contract_errors(api: Api) -> None:
    await load_stripe_tenant(api)
    await upsert_contracts(api, pb.Contract(id="ctr_1", contract_number=7, customer_id="cus_456"))
    await load_stripe_tenant(api, source="paddle")  # cus_123 and cus_456 now exist twice
    assert await upsert_contracts(
        api,
        pb.Contract(id="ctr_2", contract_number=1, customer_id="cus_123"),
        pb.Contract(id="ctr_3", contract_number=0, customer_id="cus_x"),
        pb.Contract(id="ctr_4", contract_number=7, customer_id="cus_123"),
        pb.Contract(id="ctr_5", contract_number=8, customer_id=""),
    ) == [
        ("ctr_2", ERROR, "Customer ID cus_123 is ambiguous: it exists in several data sources"),
        ("ctr_3", ERROR, "contract_number must be at least 1; Customer ID cus_x does not exist"),
        (
            "ctr_4",
            ERROR,
            "Contract number 7 is already used by contract ctr_1; "
            "Customer ID cus_123 is ambiguous: it exists in several data sources",
        ),
        ("ctr_5", ERROR, "Missing customer ID"),
    ]


async def test_contract_number_taken_earlier_in_the_batch(api: Api) -> None:
    await load_stripe_tenant(api)
    assert await upsert_contracts(
        api,
        pb.Contract(id="ctr_a", contract_number=3, customer_id="cus_456"),
        pb.Contract(id="ctr_b", contract_number=3, customer_id="cus_456"),
    ) == [("ctr_a", INSERTED, ""), ("ctr_b", ERROR, "Contract number 3 is already used by contract ctr_a")]


# Companies


async def upsert_companies(api: Api, *companies: pb.Company) -> list[tuple[str, int, str]]:
    reply = await api.imports.UpsertCompanies(ipb.UpsertCompaniesRequest(companies=companies), metadata=api.metadata)
    return statuses(reply)


async def test_company_details_are_kept_and_resend_is_unchanged(api: Api) -> None:
    company = pb.Company(
        id="acme",
        name="Acme",
        locale="en",
        tax_id=pb.TaxId(value="DE123456789", type="VAT"),
        registration_number=pb.RegistrationNumber(value="HRB 1", registry_country="DE"),
    )
    assert await upsert_companies(api, company) == [("acme", INSERTED, "")]
    assert await upsert_companies(api, company) == [("acme", UNCHANGED, "")]
    async with api.db.read() as s:
        details = (await s.execute(select(m.Company.details).where(m.Company.tenant_id == api.tenant_id))).scalar_one()
    assert details == {
        "locale": "en",
        "tax_id": {"value": "DE123456789", "type": "VAT"},
        "registration_number": {"value": "HRB 1", "registry_country": "DE"},
    }


async def test_company_needs_a_name(api: Api) -> None:
    assert await upsert_companies(api, pb.Company(id="acme")) == [("acme", ERROR, "Missing name")]


# Orders


def order(**changes: object) -> pb.Order:
    fields: dict[str, object] = {
        "id": "ord_1",
        "data_source_id": "stripe",
        "customer_id": "cus_123",
        "billing_type": pb.BILLING_TYPE_SUBSCRIPTION,
        "order_time": AUG_1,
        "amount_minor": 9900,
        "currency_code": "USD",
        "plan_id": "plan_123",
    }
    return pb.Order(**{**fields, **changes})  # type: ignore[arg-type]


async def upsert_orders(api: Api, *orders: pb.Order) -> list[tuple[str, int, str]]:
    return statuses(await api.imports.UpsertOrders(ipb.UpsertOrdersRequest(orders=orders), metadata=api.metadata))


async def test_order_errors(api: Api) -> None:
    await load_stripe_tenant(api)
    await load_stripe_tenant(api, source="paddle")
    await api.imports.UpsertPlans(
        ipb.UpsertPlansRequest(
            plans=[pb.Plan(id="plan_p", data_source_id="paddle", interval="month", currency_code="USD")]
        ),
        metadata=api.metadata,
    )
    assert await upsert_orders(
        api,
        order(id="o1", billing_type=pb.BILLING_TYPE_UNSPECIFIED, order_time=None),
        order(id="o2", plan_id="plan_p"),
        order(id="o3", amount_minor=-5, currency_code="dollars"),
    ) == [
        ("o1", ERROR, "Missing billing type; Missing order time"),
        ("o2", ERROR, "Plan ID plan_p does not exist"),
        (
            "o3",
            ERROR,
            "amount must be a non-negative number; Invalid currency 'dollars': must be a 3-letter ISO 4217 code",
        ),
    ]


async def test_invoiced_order_cannot_change_but_may_be_resent(api: Api) -> None:
    await load_stripe_tenant(api)
    assert await upsert_orders(api, order()) == [("ord_1", INSERTED, "")]
    async with api.db.write() as s:
        row = (await s.execute(select(m.Order).where(m.Order.tenant_id == api.tenant_id))).scalar_one()
        s.add(
            m.Invoice(
                tenant_id=api.tenant_id,
                invoice_number="INV-2024-0042",
                document_type_code="380",
                accounting_event_type="INVOICE",
                billing_type="subscription",
                status="sent",
                currency="USD",
                sub_total_minor=9900,
                total_discount_minor=0,
                total_tax_minor=0,
                credits_minor=0,
                total_minor=9900,
                amount_paid_minor=0,
                amount_remaining_minor=9900,
                issue_date=AUG_1.ToDatetime().date(),
                order_id=row.id,
            )
        )
    assert await upsert_orders(api, order()) == [("ord_1", UNCHANGED, "")]
    assert await upsert_orders(api, order(amount_minor=1)) == [
        ("ord_1", ERROR, "Order ord_1 is already invoiced as INV-2024-0042 and cannot change")
    ]


# Usage records


def usage(**changes: object) -> pb.UsageRecord:
    fields: dict[str, object] = {
        "id": "use_1",
        "dimension": "api_calls",
        "quantity": "1200",
        "unit_price_minor": 2,
        "currency_code": "USD",
        "usage_time": AUG_1,
    }
    return pb.UsageRecord(**{**fields, **changes})  # type: ignore[arg-type]


async def upsert_usage(api: Api, *records: pb.UsageRecord) -> list[tuple[str, int, str]]:
    reply = await api.imports.UpsertUsageRecords(
        ipb.UpsertUsageRecordsRequest(usage_records=records), metadata=api.metadata
    )
    return statuses(reply)


async def test_usage_record_errors(api: Api) -> None:
    assert await upsert_usage(
        api,
        usage(id="u1", quantity="1.0000001"),
        usage(id="u2", quantity="", dimension="", usage_time=None),
        usage(id="u3", quantity="-1", unit_price_minor=-2),
    ) == [
        ("u1", ERROR, "Invalid quantity '1.0000001': must be a non-negative decimal with at most 6 decimals"),
        ("u2", ERROR, "Missing dimension; Missing quantity; Missing usage time"),
        (
            "u3",
            ERROR,
            "Invalid quantity '-1': must be a non-negative decimal with at most 6 decimals; "
            "unit_price must be a non-negative number",
        ),
    ]


async def test_usage_quantity_is_normalized_so_equal_numbers_are_unchanged(api: Api) -> None:
    assert await upsert_usage(api, usage(quantity="1.50")) == [("use_1", INSERTED, "")]
    assert await upsert_usage(api, usage(quantity="1.5")) == [("use_1", UNCHANGED, "")]


async def test_billed_usage_record_cannot_change(api: Api) -> None:
    await upsert_usage(api, usage())
    async with api.db.write() as s:
        invoice = m.Invoice(
            tenant_id=api.tenant_id,
            invoice_number="INV-2024-0007",
            document_type_code="380",
            accounting_event_type="INVOICE",
            billing_type="marketplace_usage",
            status="sent",
            currency="USD",
            sub_total_minor=2400,
            total_discount_minor=0,
            total_tax_minor=0,
            credits_minor=0,
            total_minor=2400,
            amount_paid_minor=0,
            amount_remaining_minor=2400,
            issue_date=AUG_1.ToDatetime().date(),
        )
        s.add(invoice)
        await s.flush()
        row = (await s.execute(select(m.UsageRecord).where(m.UsageRecord.tenant_id == api.tenant_id))).scalar_one()
        row.invoice_id = invoice.id
    assert await upsert_usage(api, usage(quantity="1300")) == [
        ("use_1", ERROR, "Usage record use_1 is already billed on INV-2024-0007 and cannot change")
    ]


# Payment means, people, documents


async def test_payment_means_insert_unchanged_update(api: Api) -> None:
    means = pb.PaymentMeans(id="pm_1", type="card_details", card_details=pb.CardDetails(masked_pan="****1234"))

    async def send(item: pb.PaymentMeans) -> list[tuple[str, int, str]]:
        request = ipb.UpsertPaymentMeansRequest(payment_means=[item])
        return statuses(await api.imports.UpsertPaymentMeans(request, metadata=api.metadata))

    assert await send(means) == [("pm_1", INSERTED, "")]
    assert await send(means) == [("pm_1", UNCHANGED, "")]
    means.card_details.brand = "visa"
    assert await send(means) == [("pm_1", UPDATED, "")]
    async with api.db.read() as s:
        details = (
            await s.execute(select(m.PaymentMeans.details).where(m.PaymentMeans.tenant_id == api.tenant_id))
        ).scalar_one()
    assert details == {"card_details": {"masked_pan": "****1234", "brand": "visa"}}


async def test_people_insert_unchanged_update(api: Api) -> None:
    async def send(person: pb.Person) -> list[tuple[str, int, str]]:
        return statuses(await api.imports.UpsertPeople(ipb.UpsertPeopleRequest(people=[person]), metadata=api.metadata))

    assert await send(pb.Person(id="p1", first_name="Ada")) == [("p1", INSERTED, "")]
    assert await send(pb.Person(id="p1", first_name="Ada")) == [("p1", UNCHANGED, "")]
    assert await send(pb.Person(id="p1", first_name="Ada", last_name="Lovelace")) == [("p1", UPDATED, "")]


async def test_documents_insert_unchanged_and_reject_negative_size(api: Api) -> None:
    async def send(*documents: pb.Document) -> list[tuple[str, int, str]]:
        reply = await api.imports.UpsertDocuments(
            ipb.UpsertDocumentsRequest(documents=documents), metadata=api.metadata
        )
        return statuses(reply)

    doc = pb.Document(id="d1", file_name="invoice_2025_001.pdf", size_bytes=10, upload_time=AUG_1)
    assert await send(doc, pb.Document(id="d2", size_bytes=-1)) == [
        ("d1", INSERTED, ""),
        ("d2", ERROR, "size_bytes must be a non-negative number"),
    ]
    assert await send(doc) == [("d1", UNCHANGED, "")]


async def test_every_upsert_rejects_an_empty_batch(api: Api) -> None:
    details = await expect_code(
        api.imports.UpsertPeople(ipb.UpsertPeopleRequest(), metadata=api.metadata), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "people" in details
