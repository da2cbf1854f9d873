"""Seed 001 ("Received": `/api/invoices/{invoice_ref}`, `/api/invoices/reconcile`,
`/api/documents/filter`, `Version: V0`) through Envoy, with the document's own examples."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import line, make_company, make_contract, make_customer, make_invoice, utc
from tests.gateway_harness import Gateway, Reply, gateway
from tests.rest_fixtures import invoice_ref, two_imported_invoices, violated_fields

__all__ = ["gateway"]

V0 = {"Version": "V0"}

# The document's example id of the customer, contract, entity, bank account and payment gateway.
EXAMPLE_REF = "32c320bb-431b-488f-bcd4-729e495a33ad"

# Seed 001, "Get Invoice", Response (the document's trailing comma after entity_legal_name
# dropped). Amounts such as 1000.00 are JSON numbers: 1000.00 and 1000 are the same number.
DOCUMENTED_INVOICE: dict[str, Any] = {
    "invoice_ref": "3a7b0f7d-fdf6-4f54-90f4-2307b73ae85f",
    "document_number": "INV-2023-001",
    "customer": {
        "customer_ref": "32c320bb-431b-488f-bcd4-729e495a33ad",
        "customer_name": "Acme Corporation",
        "customer_legal_name": "Acme Corp Ltd",
    },
    "state": "PAID",
    "created_at": "2023-08-01T00:00:00Z",
    "issue_date": "2023-08-01",
    "due_date": "2023-09-01",
    "submission_date": "2023-08-02T00:00:00Z",
    "paid_date": "2023-08-01T00:00:00Z",
    "is_partial_period": False,
    "accounting_event_type": "INVOICE",
    "currency": "USD",
    "net_terms": 30,
    "sub_total": 1000.00,
    "total_discount": 50.00,
    "total_tax": 100.00,
    "credits_amount": 0.00,
    "total": 1050.00,
    "products": [{"product_name": "Product Name", "minimum_fee": 0.00, "sub_total": 800.00, "total": 1000.00}],
    "contract": {"contract_ref": "32c320bb-431b-488f-bcd4-729e495a33ad", "contract_number": 123},
    "number_in_contract": 1,
    "total_in_contract": 1050.00,
    "billing_bank_transfer_details": {"billing_account_id": "32c320bb-431b-488f-bcd4-729e495a33ad"},
    "billing_online_payment_details": {
        "auto_charge": True,
        "payment_gateway_id": "32c320bb-431b-488f-bcd4-729e495a33ad",
        "payment_gateway_card_id": "card_abcdef1234567890",
    },
    "billing_crypto_details": {"address": "0x1234567890abcdef1234567890abcdef12345678", "tokens": ["BTC", "ETH"]},
    "entity": {
        "entity_ref": "32c320bb-431b-488f-bcd4-729e495a33ad",
        "entity_name": "Supplier Name",
        "entity_legal_name": "Supplier legal Name",
    },
}
# Seed 001, "Reconcile Invoice / Mark Paid Invoice": the request body.
DOCUMENTED_RECONCILE_BODY = {
    "invoice_ref": "3a7b0f7d-fdf6-4f54-90f4-2307b73ae85f",
    "paid_date": "2024-04-02T14:36:36.630Z",
}
DOCUMENTED_PAYMENT_MEANS = [
    pb.PaymentMeans(
        id="pm_bank", type="bank_transfer", account_details=pb.AccountDetails(billing_account_id=EXAMPLE_REF)
    ),
    pb.PaymentMeans(
        id="pm_card",
        type="card_details",
        card_details=pb.CardDetails(
            auto_charge=True, payment_gateway_id=EXAMPLE_REF, payment_gateway_card_id="card_abcdef1234567890"
        ),
    ),
    pb.PaymentMeans(
        id="pm_crypto",
        type="crypto",
        crypto_wallet=pb.CryptoWallet(address="0x1234567890abcdef1234567890abcdef12345678", tokens=["BTC", "ETH"]),
    ),
]


async def import_payment_means(api: Api, payment_means: list[pb.PaymentMeans]) -> None:
    """Through the real import rpc, so that `details` hold what an import stores."""
    request = ipb.UpsertPaymentMeansRequest(payment_means=payment_means)
    reply = await api.imports.UpsertPaymentMeans(request, metadata=api.metadata)
    assert [r.import_status for r in reply.results] == [ipb.IMPORT_STATUS_INSERTED] * len(payment_means)


async def link_payment_means(api: Api, invoice_id: uuid.UUID, external_ids: list[str]) -> None:
    async with api.db.write() as s:
        for position, external_id in enumerate(external_ids, start=1):
            means_id = await s.scalar(
                select(m.PaymentMeans.id).where(
                    m.PaymentMeans.tenant_id == api.tenant_id, m.PaymentMeans.external_id == external_id
                )
            )
            assert means_id is not None
            s.add(m.InvoicePaymentMeans(invoice_id=invoice_id, payment_means_id=means_id, position=position))


@dataclass(frozen=True)
class ExampleInvoice:
    """Seed 001's example invoice as stored for one test: its fresh ids, and the document's
    JSON with those ids in place of the example's (every other value is the document's)."""

    invoice_ref: str
    customer_ref: str
    contract_ref: str
    entity_ref: str

    @property
    def documented(self) -> dict[str, Any]:
        body = copy.deepcopy(DOCUMENTED_INVOICE)
        body["invoice_ref"] = self.invoice_ref
        body["customer"]["customer_ref"] = self.customer_ref
        body["contract"]["contract_ref"] = self.contract_ref
        body["entity"]["entity_ref"] = self.entity_ref
        return body


async def documented_example_invoice(
    api: Api, *, invoice_id: uuid.UUID | None = None, status: str = "paid"
) -> ExampleInvoice:
    """Seed 001's example invoice: the example's names, numbers, amounts, dates and payment
    details. Row ids are fresh (the example's, shared by customer, contract and entity, would
    collide between tests sharing a database), unless `invoice_id` is given; with another
    `status` than paid it has no paid date and nothing paid."""
    await import_payment_means(api, DOCUMENTED_PAYMENT_MEANS)
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id)
        contract = await make_contract(s, api.tenant_id, customer=customer, contract_number=123)
        supplier = await make_company(s, api.tenant_id, name="Supplier Name", legal_name="Supplier legal Name")
        invoice = await make_invoice(
            s,
            api.tenant_id,
            id=invoice_id or uuid.uuid4(),
            invoice_number="INV-2023-001",
            status=status,
            customer=customer,
            contract=contract,
            number_in_contract=1,
            issuer_company_id=supplier.id,
            created_at=utc(2023, 8, 1),
            issue_date=date(2023, 8, 1),
            due_date=date(2023, 9, 1),
            submitted_at=utc(2023, 8, 2),
            paid_at=utc(2023, 8, 1) if status == "paid" else None,
            net_terms_days=30,
            sub_total_minor=100000,
            total_discount_minor=5000,
            total_tax_minor=10000,
            lines=[line("Product Name", "1", 80000, tax_minor=20000)],
        )
    await link_payment_means(api, invoice.id, ["pm_bank", "pm_card", "pm_crypto"])
    return ExampleInvoice(str(invoice.id), str(customer.id), str(contract.id), str(supplier.id))


async def sent_invoice(api: Api, **overrides: Any) -> uuid.UUID:
    """An invoice, `sent` unless `status` is overridden."""
    async with api.db.write() as s:
        invoice = await make_invoice(s, api.tenant_id, **({"status": "sent"} | overrides))
    return invoice.id


def assert_violations(reply: Reply, fields: list[str]) -> None:
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["code"] == 3
    assert violated_fields(reply) == fields


# --- Get Invoice: GET /api/invoices/<invoice_ref> -------------------------------------------


async def test_seed_001_get_invoice_answers_the_documented_example(gateway: Gateway, api: Api) -> None:
    example = await documented_example_invoice(api)
    reply = await gateway.request("GET", f"/api/invoices/{example.invoice_ref}", key=api.key, headers=V0)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert "grpc-status" not in reply.headers
    assert reply.json() == example.documented


async def test_seed_001_get_invoice_leaves_out_parts_the_invoice_does_not_have(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    ref = await invoice_ref(api, "inv_001")
    reply = await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)
    assert reply.status == 200
    body = reply.json()
    customer = body.pop("customer")
    assert uuid.UUID(customer.pop("customer_ref"))
    assert customer == {"customer_name": "Acme Corporation", "customer_legal_name": ""}
    assert body.pop("created_at").endswith("Z")
    # No contract, entity or payment means: no contract, number_in_contract, total_in_contract,
    # entity or billing details; unpaid: no paid_date.
    assert body == {
        "invoice_ref": ref,
        "document_number": "INV-2024-0001",
        "state": "SENT",
        "issue_date": "2024-07-01",
        "is_partial_period": False,
        "accounting_event_type": "INVOICE",
        "currency": "USD",
        "sub_total": 99,
        "total_discount": 0,
        "total_tax": 0,
        "credits_amount": 0,
        "total": 99,
        "products": [],
    }


async def test_seed_001_net_terms_is_a_number_of_days_or_a_payment_term(gateway: Gateway, api: Api) -> None:
    days = await sent_invoice(api, net_terms_days=30)
    on_receipt = await sent_invoice(api, payment_term="DUE_UPON_RECEIPT")
    on_usage = await sent_invoice(api, payment_term="DUE_UPON_USAGE")
    answers = [
        (await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)).json()["net_terms"]
        for ref in (days, on_receipt, on_usage)
    ]
    assert answers == [30, "DUE_UPON_RECEIPT", "DUE_UPON_USAGE"]


async def test_seed_001_states_and_credit_notes_as_the_document_names_them(gateway: Gateway, api: Api) -> None:
    draft = await sent_invoice(api, status="draft")
    cancelled = await sent_invoice(api, status="cancelled")
    refund = await sent_invoice(api, billing_type="refund")
    bodies = [
        (await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)).json()
        for ref in (draft, cancelled, refund)
    ]
    assert [(b["state"], b["accounting_event_type"]) for b in bodies] == [
        ("DRAFT", "INVOICE"),
        ("CANCELLED", "INVOICE"),
        ("SENT", "CREDIT_NOTE"),
    ]


async def test_seed_001_amounts_are_major_units_of_the_invoice_currency(gateway: Gateway, api: Api) -> None:
    yen = await sent_invoice(api, currency="JPY", sub_total_minor=1050)
    dinar = await sent_invoice(api, currency="KWD", sub_total_minor=1234)
    totals = [
        (await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)).json()["total"]
        for ref in (yen, dinar)
    ]
    assert totals == [1050, 1.234]


async def test_seed_001_unknown_or_foreign_invoice_is_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    missing = await gateway.request("GET", f"/api/invoices/{uuid.uuid4()}", key=api.key, headers=V0)
    assert missing.status == 404
    assert missing.json()["code"] == 5
    foreign_ref = await sent_invoice(other_api)
    foreign = await gateway.request("GET", f"/api/invoices/{foreign_ref}", key=api.key, headers=V0)
    assert foreign.status == 404


async def test_seed_001_invoice_ref_that_is_not_a_uuid_is_400_naming_it(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/invoices/INV-2023-001", key=api.key, headers=V0)
    assert_violations(reply, ["invoice_ref"])


async def test_seed_001_needs_the_bearer_token(gateway: Gateway, api: Api) -> None:
    for method, path in (
        ("GET", f"/api/invoices/{uuid.uuid4()}"),
        ("GET", "/api/documents/filter?limit=50&page=0"),
        ("POST", "/api/invoices/reconcile"),
    ):
        body = DOCUMENTED_RECONCILE_BODY if method == "POST" else None
        reply = await gateway.request(method, path, headers=V0, body=body)
        assert reply.status == 401, path
        assert reply.json()["code"] == 16


# --- Billing details, entity and total_in_contract ------------------------------------------


async def test_seed_001_billing_details_come_from_payment_means_by_type(gateway: Gateway, api: Api) -> None:
    await import_payment_means(
        api,
        [
            pb.PaymentMeans(id="pm_cash", type="cash"),
            pb.PaymentMeans(id="pm_iban", type="SEPA Credit Transfer"),
            pb.PaymentMeans(id="pm_visa", type="card", card_details=pb.CardDetails(payment_gateway_id="stripe")),
            pb.PaymentMeans(
                id="pm_second_card",
                type="credit_card",
                card_details=pb.CardDetails(auto_charge=True, payment_gateway_id="adyen"),
            ),
        ],
    )
    ref = await sent_invoice(api)
    await link_payment_means(api, ref, ["pm_cash", "pm_iban", "pm_visa", "pm_second_card"])
    body = (await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)).json()
    # Without account_details.billing_account_id the payment means' own id names the account;
    # the first card wins; "cash" is none of the three kinds.
    assert body["billing_bank_transfer_details"] == {"billing_account_id": "pm_iban"}
    assert body["billing_online_payment_details"] == {
        "auto_charge": False,
        "payment_gateway_id": "stripe",
        "payment_gateway_card_id": "",
    }
    assert "billing_crypto_details" not in body


async def test_seed_001_entity_is_the_issuer_company(gateway: Gateway, api: Api) -> None:
    async with api.db.write() as s:
        supplier = await make_company(s, api.tenant_id, name="US Entity", legal_name=None)
    ref = await sent_invoice(api, issuer_company_id=supplier.id)
    body = (await gateway.request("GET", f"/api/invoices/{ref}", key=api.key, headers=V0)).json()
    assert body["entity"] == {"entity_ref": str(supplier.id), "entity_name": "US Entity", "entity_legal_name": ""}


async def test_seed_001_total_in_contract_runs_up_to_the_invoice_in_its_currency(gateway: Gateway, api: Api) -> None:
    async with api.db.write() as s:
        contract = await make_contract(s, api.tenant_id)
        in_contract: dict[str, Any] = {"contract": contract, "customer_id": contract.customer_id}
        first = await make_invoice(s, api.tenant_id, number_in_contract=1, sub_total_minor=10000, **in_contract)
        refund = await make_invoice(
            s, api.tenant_id, number_in_contract=2, sub_total_minor=2500, billing_type="refund", **in_contract
        )
        third = await make_invoice(
            s, api.tenant_id, number_in_contract=3, sub_total_minor=20000, status="paid", **in_contract
        )
        draft = await make_invoice(
            s, api.tenant_id, number_in_contract=4, sub_total_minor=7000, status="draft", **in_contract
        )
        euro = await make_invoice(
            s, api.tenant_id, number_in_contract=5, sub_total_minor=4200, currency="EUR", **in_contract
        )
    path = f"/api/documents/filter?contract_refs={contract.id}&limit=50&page=0"
    reply = await gateway.request("GET", path, key=api.key, headers=V0)
    assert reply.status == 200
    running = {i["invoice_ref"]: (i["number_in_contract"], i["total_in_contract"]) for i in reply.json()}
    # 100 − 25 (credit note) + 200; the draft counts for nothing; EUR is never added to USD.
    assert running == {
        str(first.id): (1, 100),
        str(refund.id): (2, 75),
        str(third.id): (3, 275),
        str(draft.id): (4, 275),
        str(euro.id): (5, 42),
    }


# --- The Version header ----------------------------------------------------------------------


async def test_seed_001_every_path_needs_the_version_header(gateway: Gateway, api: Api) -> None:
    for method, path, body in (
        ("GET", f"/api/invoices/{uuid.uuid4()}", None),
        ("GET", "/api/documents/filter?limit=50&page=0", None),
        ("GET", "/api/invoices/reconcile", DOCUMENTED_RECONCILE_BODY),
        ("POST", "/api/invoices/reconcile", DOCUMENTED_RECONCILE_BODY),
    ):
        reply = await gateway.request(method, path, key=api.key, body=body)
        assert_violations(reply, ["Version"])
        assert "Version: V0" in reply.json()["message"]


async def test_seed_001_an_unknown_version_is_400_naming_it(gateway: Gateway, api: Api) -> None:
    for version in ("V1", "v0", ""):
        reply = await gateway.request("GET", f"/api/invoices/{uuid.uuid4()}", key=api.key, headers={"Version": version})
        assert_violations(reply, ["Version"])
    unknown = await gateway.request("GET", f"/api/invoices/{uuid.uuid4()}", key=api.key, headers={"Version": "V9"})
    assert "'V9'" in unknown.json()["message"]
    assert "supported: V0" in unknown.json()["message"]


async def test_seed_001_version_is_reported_with_the_other_bad_fields(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/documents/filter?customer_refs=abc", key=api.key)
    assert_violations(reply, ["Version", "customer_refs[0]", "limit", "page"])


# --- Reconcile Invoice / Mark Paid: GET (and POST) /api/invoices/reconcile -----------------


async def test_seed_001_reconcile_by_get_with_the_documented_body(gateway: Gateway, api: Api) -> None:
    # The one test that stores the document's own invoice_ref, so that the request is the
    # document's byte for byte; the invoice is still open (sent) before it.
    example = await documented_example_invoice(
        api, invoice_id=uuid.UUID(DOCUMENTED_RECONCILE_BODY["invoice_ref"]), status="sent"
    )
    reply = await gateway.request(
        "GET", "/api/invoices/reconcile", key=api.key, headers=V0, body=DOCUMENTED_RECONCILE_BODY
    )
    assert reply.status == 200, reply.body
    # "Updated invoice object": the Get Invoice object, now paid at the given time (to the second).
    assert reply.json() == example.documented | {"paid_date": "2024-04-02T14:36:36Z"}
    fetched = await gateway.request("GET", f"/api/invoices/{example.invoice_ref}", key=api.key, headers=V0)
    assert fetched.json() == reply.json()


async def test_seed_001_reconcile_by_post_with_the_same_body(gateway: Gateway, api: Api) -> None:
    ref = await sent_invoice(api, sub_total_minor=15000)
    body = {"invoice_ref": str(ref), "paid_date": "2024-04-02T14:36:36.630Z"}
    reply = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    assert reply.status == 200, reply.body
    assert (reply.json()["invoice_ref"], reply.json()["state"], reply.json()["paid_date"]) == (
        str(ref),
        "PAID",
        "2024-04-02T14:36:36Z",
    )


async def test_seed_001_reconcile_is_idempotent_across_get_and_post(gateway: Gateway, api: Api) -> None:
    ref = await sent_invoice(api)
    body = {"invoice_ref": str(ref), "paid_date": "2024-04-02T14:36:36.630Z"}
    first = await gateway.request("GET", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    again = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
    later = await gateway.request(
        "POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body | {"paid_date": "2024-05-01"}
    )
    assert first.status == again.status == later.status == 200
    assert first.json() == again.json() == later.json()
    async with api.db.read() as s:
        payments = await s.scalar(select(func.count()).select_from(m.Payment).where(m.Payment.invoice_id == ref))
        audited = await s.scalar(select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.invoice_id == ref))
    assert (payments, audited) == (1, 1)


async def test_seed_001_reconcile_takes_a_day_or_query_parameters(gateway: Gateway, api: Api) -> None:
    ref = await sent_invoice(api)
    reply = await gateway.request(
        "GET", f"/api/invoices/reconcile?invoice_ref={ref}&paid_date=2024-04-02", key=api.key, headers=V0
    )
    assert reply.status == 200, reply.body
    assert reply.json()["paid_date"] == "2024-04-02T00:00:00Z"


async def test_seed_001_reconcile_reports_every_bad_field_together(gateway: Gateway, api: Api) -> None:
    empty = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body={})
    assert_violations(empty, ["invoice_ref", "paid_date"])
    malformed = await gateway.request(
        "GET",
        "/api/invoices/reconcile",
        key=api.key,
        headers=V0,
        body={"invoice_ref": "INV-2023-001", "paid_date": "02/04/2024"},
    )
    assert_violations(malformed, ["invoice_ref", "paid_date"])
    no_date = {"invoice_ref": str(uuid.uuid4())}
    assert_violations(
        await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=no_date), ["paid_date"]
    )


async def test_seed_001_reconcile_of_unknown_or_foreign_invoice_is_404(
    gateway: Gateway, api: Api, other_api: Api
) -> None:
    foreign = await sent_invoice(other_api)
    for ref in (uuid.uuid4(), foreign):
        body = {"invoice_ref": str(ref), "paid_date": "2024-04-02T14:36:36.630Z"}
        reply = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
        assert reply.status == 404
    async with other_api.db.read() as s:
        assert (await s.get(m.Invoice, foreign)).status == "sent"  # type: ignore[union-attr]


async def test_seed_001_reconcile_of_a_draft_or_cancelled_invoice_is_refused(gateway: Gateway, api: Api) -> None:
    for status in ("draft", "cancelled"):
        ref = await sent_invoice(api, status=status)
        body = {"invoice_ref": str(ref), "paid_date": "2024-04-02T14:36:36.630Z"}
        reply = await gateway.request("POST", "/api/invoices/reconcile", key=api.key, headers=V0, body=body)
        assert reply.status == 400
        assert reply.json()["code"] == 9  # FAILED_PRECONDITION
        assert status in reply.json()["message"]


# --- Get Customer / Contract Invoices: GET /api/documents/filter ----------------------------


async def two_customers_with_invoices(api: Api) -> dict[str, Any]:
    """Customer A with a contract (2 invoices in it, 1 outside), customer B with 1 invoice."""
    async with api.db.write() as s:
        customer_a = await make_customer(s, api.tenant_id)
        customer_b = await make_customer(s, api.tenant_id, name="Globex")
        contract = await make_contract(s, api.tenant_id, customer=customer_a)
        ids = {}
        for name, customer, in_contract, day in (
            ("a1", customer_a, True, 1),
            ("a2", customer_a, True, 2),
            ("a3", customer_a, False, 3),
            ("b1", customer_b, False, 4),
        ):
            invoice = await make_invoice(
                s,
                api.tenant_id,
                customer=customer,
                contract=contract if in_contract else None,
                number_in_contract=day if in_contract else None,
                created_at=utc(2024, 4, day),
            )
            ids[name] = str(invoice.id)
    return {"a": str(customer_a.id), "b": str(customer_b.id), "contract": str(contract.id), **ids}


async def filtered(gateway: Gateway, api: Api, query: str) -> list[str]:
    reply = await gateway.request("GET", f"/api/documents/filter?{query}", key=api.key, headers=V0)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    return [invoice["invoice_ref"] for invoice in reply.json()]


async def test_seed_001_filter_by_customer_with_the_documented_limit_and_page(gateway: Gateway, api: Api) -> None:
    world = await two_customers_with_invoices(api)
    # URL Params example values: limit 50, page 0. Newest first.
    assert await filtered(gateway, api, f"customer_refs={world['a']}&limit=50&page=0") == [
        world["a3"],
        world["a2"],
        world["a1"],
    ]


async def test_seed_001_filter_answers_the_invoice_objects_get_answers(gateway: Gateway, api: Api) -> None:
    example = await documented_example_invoice(api)
    reply = await gateway.request(
        "GET", f"/api/documents/filter?customer_refs={example.customer_ref}&limit=50&page=0", key=api.key, headers=V0
    )
    assert reply.json() == [example.documented]


async def test_seed_001_filter_takes_lists_as_repeated_keys_or_commas(gateway: Gateway, api: Api) -> None:
    world = await two_customers_with_invoices(api)
    everyone = [world["b1"], world["a3"], world["a2"], world["a1"]]
    repeated = f"customer_refs={world['a']}&customer_refs={world['b']}&limit=50&page=0"
    commas = f"customer_refs={world['a']},{world['b']}&limit=50&page=0"
    encoded = f"customer_refs={world['a']}%2C{world['b']}&limit=50&page=0"
    bracketed = f"customer_refs[]={world['a']}&customer_refs%5B%5D={world['b']}&limit=50&page=0"
    for query in (repeated, commas, encoded, bracketed):
        assert await filtered(gateway, api, query) == everyone


async def test_seed_001_filter_by_contract_and_by_both(gateway: Gateway, api: Api) -> None:
    world = await two_customers_with_invoices(api)
    assert await filtered(gateway, api, f"contract_refs={world['contract']}&limit=50&page=0") == [
        world["a2"],
        world["a1"],
    ]
    # Both given: an invoice must match both.
    both = f"customer_refs={world['b']}&contract_refs={world['contract']}&limit=50&page=0"
    assert await filtered(gateway, api, both) == []


async def test_seed_001_filter_pages_count_from_zero(gateway: Gateway, api: Api) -> None:
    world = await two_customers_with_invoices(api)
    pages = [await filtered(gateway, api, f"customer_refs={world['a']}&limit=2&page={page}") for page in (0, 1, 2)]
    assert pages == [[world["a3"], world["a2"]], [world["a1"]], []]


async def test_seed_001_filter_without_refs_lists_every_invoice_of_the_tenant_only(
    gateway: Gateway, api: Api, other_api: Api
) -> None:
    world = await two_customers_with_invoices(api)
    await sent_invoice(other_api)
    assert await filtered(gateway, api, "limit=50&page=0") == [world["b1"], world["a3"], world["a2"], world["a1"]]
    # Another tenant's customer is no customer of this one.
    foreign = await gateway.request(
        "GET", f"/api/documents/filter?customer_refs={world['a']}&limit=50&page=0", key=other_api.key, headers=V0
    )
    assert foreign.json() == []


async def test_seed_001_filter_limit_and_page_are_required(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/documents/filter", key=api.key, headers=V0)
    assert_violations(reply, ["limit", "page"])
    assert "required" in reply.json()["message"]


async def test_seed_001_filter_rejects_bad_limits_pages_and_refs(gateway: Gateway, api: Api) -> None:
    for query, fields in (
        ("limit=0&page=0", ["limit"]),
        ("limit=201&page=0", ["limit"]),
        ("limit=50&page=-1", ["page"]),
        (
            f"customer_refs={uuid.uuid4()},abc&contract_refs=xyz&limit=50&page=0",
            ["customer_refs[1]", "contract_refs[0]"],
        ),
    ):
        reply = await gateway.request("GET", f"/api/documents/filter?{query}", key=api.key, headers=V0)
        assert_violations(reply, fields)
    assert await filtered(gateway, api, "limit=200&page=0") == []


async def test_seed_001_filter_rejects_unknown_parameters(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/api/documents/filter?limit=50&page=0&customer=x", key=api.key, headers=V0)
    assert reply.status == 400
    assert reply.json()["code"] == 3
