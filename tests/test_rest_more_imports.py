"""The import face's paths for contracts, payment means, people and documents (`POST
/data/contracts`, `/data/payment_means`, `/data/people`, `/data/documents`) through a real Envoy
in front of the real server, on both databases: seed 004's conventions (one object or an array,
per-item `import_status`), seed 002's attributes, and a tenant loaded end to end over REST that
seeds 001 and 002 then read back."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from google.protobuf import json_format
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.gateway_harness import Gateway, gateway
from tests.rest_fixtures import violated_fields
from tests.test_rest_data_import import assert_json_answer, post_ok
from tests.test_rest_jsonapi import (
    SEED_002_DOCUMENT,
    SEED_002_ISSUER_COMPANY,
    SEED_002_PAYMENT_MEANS,
    SEED_002_PERSON,
    SEED_002_RECEIVER_COMPANY,
    SEED_003_BODY,
    included_by_key,
)
from tests.test_rest_received import DOCUMENTED_INVOICE, V0

__all__ = ["gateway"]

SEED_002_PERSON_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# The brief's contract, in seed 004's style (the core import takes no data source: the customer
# is named by its id alone).
CONTRACT_EXAMPLE = {"id": "ctr_1", "customer_id": "cus_123", "contract_number": 123, "name": "Cloud hosting"}
# Seed 002's payment means pm_1, as the import takes it: its attributes with its id.
PAYMENT_MEANS_EXAMPLE = {"id": "pm_1", **SEED_002_PAYMENT_MEANS}
PERSON_EXAMPLE = {
    "id": SEED_002_PERSON_ID,
    **{key: value for key, value in SEED_002_PERSON.items() if key != "full_name"},  # full_name is derived
}
DOCUMENT_EXAMPLE = {"id": "doc_original_invoice", **SEED_002_DOCUMENT}

# Seed 001's billing details, each carried by the payment means kind it is read from.
CARD_PAYMENT_MEANS = {
    **copy.deepcopy(PAYMENT_MEANS_EXAMPLE),
    "id": "id1",
    "card_details": {
        **SEED_002_PAYMENT_MEANS["card_details"],
        **DOCUMENTED_INVOICE["billing_online_payment_details"],
    },
}
BANK_PAYMENT_MEANS = {
    "id": "id2",
    "type": "bank_transfer",
    "scheme": "SEPA",
    "status": "active",
    "account_details": {
        "iban": "DE89370400440532013000",
        "currency": "EUR",
        **DOCUMENTED_INVOICE["billing_bank_transfer_details"],
    },
}
CRYPTO_PAYMENT_MEANS = {"id": "id3", "type": "crypto", "crypto_wallet": DOCUMENTED_INVOICE["billing_crypto_details"]}


def _company(company_id: str, attributes: dict[str, Any], legal_name: str) -> dict[str, Any]:
    """Seed 002's company as `/data/companies` takes it (the core Company's `domain`)."""
    values = {key: value for key, value in attributes.items() if key != "domain_name_primary_link_url"}
    return {"id": company_id, "legal_name": legal_name, "domain": attributes["domain_name_primary_link_url"], **values}


async def stripe_customer(gateway: Gateway, api: Api, customer_id: str = "cus_123", source: str = "stripe") -> None:
    """Data source `source` and customer `customer_id` in it, loaded through the face."""
    await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": source})
    customer = {"id": customer_id, "data_source": source, "name": "Acme Corporation", "legal_name": "Acme Corp Ltd"}
    assert await post_ok(gateway, api, "/data/customers", customer) == [
        {"id": customer_id, "import_status": "inserted"}
    ]


async def stored_count(api: Api, model: Any) -> int:
    async with api.db.read() as s:
        return int(await s.scalar(select(func.count()).where(model.tenant_id == api.tenant_id)) or 0)


# --- inserted, unchanged, updated -------------------------------------------------------------

# (path, example, a change to it)
EXAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("/data/contracts", CONTRACT_EXAMPLE, {"name": "Cloud hosting 2026"}),
    (
        "/data/payment_means",
        PAYMENT_MEANS_EXAMPLE,
        {"card_details": {**SEED_002_PAYMENT_MEANS["card_details"], "expiry_year": 2028}},
    ),
    ("/data/people", PERSON_EXAMPLE, {"email": "john.smith@example.com"}),
    ("/data/documents", DOCUMENT_EXAMPLE, {"processed_at": "2023-11-08T09:00:00Z"}),
]


@pytest.mark.parametrize(("path", "example", "change"), EXAMPLES, ids=[path for path, _, _ in EXAMPLES])
async def test_each_path_inserts_then_is_unchanged_then_updated(
    gateway: Gateway, api: Api, path: str, example: dict[str, Any], change: dict[str, Any]
) -> None:
    await stripe_customer(gateway, api)
    item_id = example["id"]
    assert await post_ok(gateway, api, path, example) == [{"id": item_id, "import_status": "inserted"}]
    assert await post_ok(gateway, api, path, [example]) == [{"id": item_id, "import_status": "unchanged"}]
    assert await post_ok(gateway, api, path, {**example, **change}) == [{"id": item_id, "import_status": "updated"}]
    assert await post_ok(gateway, api, path, [{**example, **change}]) == [{"id": item_id, "import_status": "unchanged"}]


async def test_an_array_gets_one_result_per_item_in_order(gateway: Gateway, api: Api) -> None:
    people = [{"id": f"person_{n}", "first_name": f"Name {n}"} for n in (3, 1, 2)]
    assert await post_ok(gateway, api, "/data/people", people) == [
        {"id": "person_3", "import_status": "inserted"},
        {"id": "person_1", "import_status": "inserted"},
        {"id": "person_2", "import_status": "inserted"},
    ]
    resent = [people[0], {**people[1], "last_name": "Smith"}, {"id": "person_4"}]
    assert await post_ok(gateway, api, "/data/people", resent) == [
        {"id": "person_3", "import_status": "unchanged"},
        {"id": "person_1", "import_status": "updated"},
        {"id": "person_4", "import_status": "inserted"},
    ]


async def test_payment_means_over_rest_is_stored_as_over_grpc(gateway: Gateway, api: Api) -> None:
    # The same payment means, first through ImportService (core names: currency_code,
    # last_compliance_check_time), then through the face (seed 002's names): nothing to change.
    values = copy.deepcopy(PAYMENT_MEANS_EXAMPLE)
    values["account_details"]["currency_code"] = values["account_details"].pop("currency")
    values["compliance"]["last_compliance_check_time"] = values["compliance"].pop("last_compliance_check")
    request = ipb.UpsertPaymentMeansRequest(payment_means=[json_format.ParseDict(values, pb.PaymentMeans())])
    reply = await api.imports.UpsertPaymentMeans(request, metadata=api.metadata)
    assert [r.import_status for r in reply.results] == [ipb.IMPORT_STATUS_INSERTED]

    assert await post_ok(gateway, api, "/data/payment_means", PAYMENT_MEANS_EXAMPLE) == [
        {"id": "pm_1", "import_status": "unchanged"}
    ]
    # A compliance time with an offset is the same instant.
    offset = copy.deepcopy(PAYMENT_MEANS_EXAMPLE)
    offset["compliance"]["last_compliance_check"] = "2023-11-07T06:31:56+01:00"
    assert await post_ok(gateway, api, "/data/payment_means", offset) == [{"id": "pm_1", "import_status": "unchanged"}]


async def test_contract_over_rest_is_stored_as_over_grpc(gateway: Gateway, api: Api) -> None:
    await stripe_customer(gateway, api)
    contract = pb.Contract(id="ctr_1", customer_id="cus_123", contract_number=123, name="Cloud hosting")
    reply = await api.imports.UpsertContracts(ipb.UpsertContractsRequest(contracts=[contract]), metadata=api.metadata)
    assert [r.import_status for r in reply.results] == [ipb.IMPORT_STATUS_INSERTED]
    assert await post_ok(gateway, api, "/data/contracts", CONTRACT_EXAMPLE) == [
        {"id": "ctr_1", "import_status": "unchanged"}
    ]


# --- per-item errors ----------------------------------------------------------------------------


async def test_contract_item_errors_name_the_field(gateway: Gateway, api: Api, other_api: Api) -> None:
    await stripe_customer(gateway, api)
    await stripe_customer(gateway, api, "cus_dup", "stripe")
    await stripe_customer(gateway, api, "cus_dup", "paypal")
    await stripe_customer(gateway, other_api, "cus_other")
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"customer_id": "cus_123", "contract_number": 1}, {"import_error": "Missing contract ID"}),
        (
            {"id": "ctr_a", "customer_id": "cus_999", "contract_number": 2},
            {"import_error": "Customer ID cus_999 does not exist"},
        ),
        ({"id": "ctr_b", "contract_number": 3}, {"import_error": "Missing customer ID"}),
        ({"id": "ctr_c", "customer_id": "cus_123"}, {"import_error": "contract_number must be at least 1"}),
        (
            {"id": "ctr_d", "customer_id": "cus_123", "contract_number": -4},
            {"import_error": "contract_number must be at least 1"},
        ),
        (
            {"id": "ctr_e", "customer_id": "cus_dup", "contract_number": 5},
            {"import_error": "Customer ID cus_dup is ambiguous: it exists in several data sources"},
        ),
        # Another tenant's customer is no customer of this one.
        (
            {"id": "ctr_f", "customer_id": "cus_other", "contract_number": 6},
            {"import_error": "Customer ID cus_other does not exist"},
        ),
        (
            {"id": "ctr_g", "customer_id": "cus_123", "contract_number": 7, "name": "x" * 501},
            {"import_error": "name must be at most 500 characters"},
        ),
        ({"id": "ctr_h", "customer_id": "cus_123", "contract_number": 8}, {}),
        (
            {"id": "ctr_i", "customer_id": "cus_123", "contract_number": 8},
            {"import_error": "Contract number 8 is already used by contract ctr_h"},
        ),
        (
            {"id": "ctr_h", "customer_id": "cus_123", "contract_number": 9},
            {"import_error": "Duplicate contract ID ctr_h in this batch"},
        ),
        (
            {"id": "", "contract_number": 0},
            {"import_error": "Missing contract ID; contract_number must be at least 1; Missing customer ID"},
        ),
    ]
    results = await post_ok(gateway, api, "/data/contracts", [item for item, _ in cases])
    assert results == [
        {"id": item.get("id", ""), "import_status": "error" if error else "inserted", **error} for item, error in cases
    ]
    assert await stored_count(api, m.Contract) == 1


async def test_payment_means_people_and_documents_item_errors_name_the_field(gateway: Gateway, api: Api) -> None:
    expectations: dict[str, list[tuple[dict[str, Any], str | None]]] = {
        "/data/payment_means": [
            ({"type": "card_details"}, "Missing payment means ID"),
            ({"id": "pm_a", "type": "t" * 51}, "type must be at most 50 characters"),
            (
                {"id": "pm_b", "scheme": "s" * 51, "status": "s" * 51},
                "scheme must be at most 50 characters; status must be at most 50 characters",
            ),
            ({"id": "p" * 201}, "Payment means ID must be at most 200 characters"),
            ({"id": "pm_ok", "type": "crypto"}, None),
        ],
        "/data/people": [
            ({"first_name": "John"}, "Missing person ID"),
            ({"id": "person_a", "email": "e" * 321}, "email must be at most 320 characters"),
            ({"id": "person_b", "first_name": "f" * 201}, "first_name must be at most 200 characters"),
            ({"id": "person_ok", "first_name": "John"}, None),
            ({"id": "person_ok", "first_name": "Jane"}, "Duplicate person ID person_ok in this batch"),
        ],
        "/data/documents": [
            ({"file_name": "a.pdf"}, "Missing document ID"),
            ({"id": "doc_a", "size_bytes": -1}, "size_bytes must be a non-negative number"),
            ({"id": "doc_b", "file_name": "n" * 501}, "file_name must be at most 500 characters"),
            ({"id": "doc_ok", "size_bytes": 0}, None),
        ],
    }
    for path, cases in expectations.items():
        results = await post_ok(gateway, api, path, [item for item, _ in cases])
        assert results == [
            {"id": item.get("id", ""), "import_status": "inserted"}
            if error is None
            else {"id": item.get("id", ""), "import_status": "error", "import_error": error}
            for item, error in cases
        ], path
    for model in (m.PaymentMeans, m.Person, m.Document):
        assert await stored_count(api, model) == 1, model


# --- request errors: values that are not even of the right type -------------------------------


async def test_values_of_the_wrong_json_type_are_400_naming_the_field(gateway: Gateway, api: Api) -> None:
    cases: list[tuple[str, Any, str]] = [
        ("/data/contracts", {**CONTRACT_EXAMPLE, "contract_number": "one hundred"}, "contracts.contract_number"),
        ("/data/contracts", {**CONTRACT_EXAMPLE, "contract_number": 1.5}, "contracts.contract_number"),
        ("/data/contracts", [CONTRACT_EXAMPLE, {**CONTRACT_EXAMPLE, "id": 2}], "contracts[1].id"),
        ("/data/documents", {**DOCUMENT_EXAMPLE, "size_bytes": "big"}, "documents.size_bytes"),
        (
            "/data/payment_means",
            {**PAYMENT_MEANS_EXAMPLE, "card_details": {"expiry_month": "December"}},
            "payment_means.card_details.expiry_month",
        ),
        ("/data/payment_means", {**PAYMENT_MEANS_EXAMPLE, "metadata": {"source": 1}}, "payment_means.metadata"),
        ("/data/people", {**PERSON_EXAMPLE, "email": 42}, "people.email"),
    ]
    for path, body, field in cases:
        reply = await gateway.request("POST", path, key=api.key, body=body)
        assert_json_answer(reply, 400)
        assert reply.json()["code"] == 3
        assert reply.json()["message"].startswith(field), (field, reply.json())
    # The whole request was refused: not even the valid items were written.
    for model in (m.Contract, m.PaymentMeans, m.Person, m.Document):
        assert await stored_count(api, model) == 0


async def test_times_that_are_not_times_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    documents = [DOCUMENT_EXAMPLE, {"id": "doc_2", "uploaded_at": "yesterday", "processed_at": "2023-13-01"}]
    reply = await gateway.request("POST", "/data/documents", key=api.key, body=documents)
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["documents[1].uploaded_at", "documents[1].processed_at"]
    assert reply.json()["message"].startswith(
        "documents[1].uploaded_at: Invalid uploaded_at 'yesterday': expected RFC 3339 or YYYY-MM-DD"
    )

    payment_means = {**PAYMENT_MEANS_EXAMPLE, "compliance": {"last_compliance_check": "soon"}}
    reply = await gateway.request("POST", "/data/payment_means", key=api.key, body=payment_means)
    assert_json_answer(reply, 400)
    assert violated_fields(reply) == ["payment_means[0].compliance.last_compliance_check"]
    assert await stored_count(api, m.Document) == 0
    assert await stored_count(api, m.PaymentMeans) == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/data/contracts", "contracts"),
        ("/data/payment_means", "payment_means"),
        ("/data/people", "people"),
        ("/data/documents", "documents"),
    ],
)
async def test_a_batch_holds_1_to_1000_items_and_a_body_is_required(
    gateway: Gateway, api: Api, path: str, field: str
) -> None:
    for body, count in (([], 0), ([{"id": f"x{n}"} for n in range(1001)], 1001)):
        reply = await gateway.request("POST", path, key=api.key, body=body)
        assert_json_answer(reply, 400)
        assert violated_fields(reply) == [field]
        assert reply.json()["message"] == f"{field}: must hold 1 to 1000 items, got {count}"
    no_body = await gateway.request("POST", path, key=api.key, raw_body=b"")
    assert_json_answer(no_body, 400)
    assert no_body.json()["message"] == "request body is required: one JSON object or an array of them"
    unauthenticated = await gateway.request("POST", path, key="irk_not_a_key", body={"id": "x"})
    assert unauthenticated.status == 401


# --- a tenant loaded over REST only, read back by seeds 002 and 001 ---------------------------


async def test_a_tenant_loaded_over_rest_only_reads_back_through_seeds_002_and_001(gateway: Gateway, api: Api) -> None:
    # Everything seed 003's example names, and a customer with a contract, through /data/ only.
    source = await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"})
    assert_json_answer(source, 201)
    companies = [
        _company("company_id", SEED_002_ISSUER_COMPANY, "Service Provider Inc."),
        _company("company_id_2", SEED_002_RECEIVER_COMPANY, "ACME Corporation GmbH"),
    ]
    assert [r["import_status"] for r in await post_ok(gateway, api, "/data/companies", companies)] == ["inserted"] * 2
    customer = {"id": "cus_123", "data_source": "stripe", "name": "Acme Corporation", "company_id": "company_id_2"}
    assert await post_ok(gateway, api, "/data/customers", customer) == [{"id": "cus_123", "import_status": "inserted"}]
    assert await post_ok(gateway, api, "/data/contracts", CONTRACT_EXAMPLE) == [
        {"id": "ctr_1", "import_status": "inserted"}
    ]
    payment_means = [CARD_PAYMENT_MEANS, BANK_PAYMENT_MEANS, CRYPTO_PAYMENT_MEANS]
    assert await post_ok(gateway, api, "/data/payment_means", payment_means) == [
        {"id": pm["id"], "import_status": "inserted"} for pm in payment_means
    ]
    assert await post_ok(gateway, api, "/data/people", PERSON_EXAMPLE) == [
        {"id": SEED_002_PERSON_ID, "import_status": "inserted"}
    ]
    # A date alone is midnight UTC; a size left out is not known (and not shown).
    terms = {"id": "doc_terms_and_conditions", "file_name": "terms.pdf", "uploaded_at": "2025-06-19"}
    assert await post_ok(gateway, api, "/data/documents", [DOCUMENT_EXAMPLE, terms]) == [
        {"id": "doc_original_invoice", "import_status": "inserted"},
        {"id": "doc_terms_and_conditions", "import_status": "inserted"},
    ]

    # Seed 003's example, naming the third payment means and seed 002's person too.
    body = copy.deepcopy(SEED_003_BODY)
    body["relationships"]["payment_type"]["data"].append({"type": "payment_means", "id": "id3"})
    body["relationships"]["people"] = {"data": [{"type": "people", "id": SEED_002_PERSON_ID}]}
    created = await gateway.request("POST", "/v1/invoices", key=api.key, body=body)
    assert created.status == 201, created.body
    invoice_ref = created.json()["data"]["id"].removeprefix("invoice_")

    # Seed 002: the list with every related resource included, as it was imported.
    reply = await gateway.request("GET", "/v1/invoices?include=company,payment_means,people,documents", key=api.key)
    assert_json_answer(reply)
    (invoice,) = reply.json()["data"]
    assert invoice["id"] == f"invoice_{invoice_ref}"
    assert [i["id"] for i in invoice["relationships"]["payment_means"]["data"]] == ["id1", "id2", "id3"]
    workspace = {"workspace_id": str(api.tenant_id)}
    assert included_by_key(reply.json()) == {
        ("people", SEED_002_PERSON_ID): SEED_002_PERSON,
        ("document", "doc_original_invoice"): SEED_002_DOCUMENT,
        ("document", "doc_terms_and_conditions"): {"file_name": "terms.pdf", "uploaded_at": "2025-06-19T00:00:00Z"},
        ("payment_means", "id1"): {k: v for k, v in CARD_PAYMENT_MEANS.items() if k != "id"},
        ("payment_means", "id2"): {k: v for k, v in BANK_PAYMENT_MEANS.items() if k != "id"},
        ("payment_means", "id3"): {k: v for k, v in CRYPTO_PAYMENT_MEANS.items() if k != "id"},
        ("company", "company_id"): SEED_002_ISSUER_COMPANY | workspace,
        ("company", "company_id_2"): SEED_002_RECEIVER_COMPANY | workspace,
    }

    # Seed 001: billing details from the payment means, the entity from the issuer company.
    received = await gateway.request("GET", f"/api/invoices/{invoice_ref}", key=api.key, headers=V0)
    assert_json_answer(received)
    shown = received.json()
    for part in ("billing_bank_transfer_details", "billing_online_payment_details", "billing_crypto_details"):
        assert shown[part] == DOCUMENTED_INVOICE[part], part
    assert uuid.UUID(shown["entity"].pop("entity_ref"))
    assert shown["entity"] == {"entity_name": "Service Provider Inc", "entity_legal_name": "Service Provider Inc."}


async def test_a_contract_imported_over_rest_shows_on_its_invoices_in_seed_001(gateway: Gateway, api: Api) -> None:
    """A contract imported over REST, with an invoice put on it by the core gRPC CreateInvoice,
    which names the contract by its reference (read from the database here; REST callers name it by
    its imported id instead: see test_rest_jsonapi's contract tests)."""
    await stripe_customer(gateway, api)
    await post_ok(gateway, api, "/data/contracts", CONTRACT_EXAMPLE)
    await post_ok(gateway, api, "/data/payment_means", [CARD_PAYMENT_MEANS, BANK_PAYMENT_MEANS, CRYPTO_PAYMENT_MEANS])
    async with api.db.read() as s:
        contract_ref = await s.scalar(
            select(m.Contract.id).where(m.Contract.tenant_id == api.tenant_id, m.Contract.external_id == "ctr_1")
        )
    invoice = pb.Invoice(
        billing_type=pb.BILLING_TYPE_SUBSCRIPTION,
        currency_code="USD",
        status=pb.INVOICE_STATUS_SENT,
        line_items=[pb.LineItem(name="Cloud hosting", quantity="1", unit_price_minor=105000)],
        contract=pb.ContractSummary(contract_ref=str(contract_ref)),
        payment_means_ids=["id1", "id2", "id3"],
    )
    created = await api.invoices.CreateInvoice(isvc.CreateInvoiceRequest(invoice=invoice), metadata=api.metadata)

    reply = await gateway.request("GET", f"/api/invoices/{created.invoice_ref}", key=api.key, headers=V0)
    assert_json_answer(reply)
    shown = reply.json()
    assert shown["contract"] == {"contract_ref": str(contract_ref), "contract_number": 123}
    assert (shown["number_in_contract"], shown["total_in_contract"]) == (1, 1050)
    assert shown["customer"]["customer_name"] == "Acme Corporation"  # the contract's customer
    for part in ("billing_bank_transfer_details", "billing_online_payment_details", "billing_crypto_details"):
        assert shown[part] == DOCUMENTED_INVOICE[part], part

    # Seed 001's filter by contract finds it.
    path = f"/api/documents/filter?contract_refs={contract_ref}&limit=50&page=0"
    filtered = await gateway.request("GET", path, key=api.key, headers=V0)
    assert_json_answer(filtered)
    assert [i["invoice_ref"] for i in filtered.json()] == [created.invoice_ref]
