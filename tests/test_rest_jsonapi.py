"""Seeds 002 and 003 (JSON:API `/v1/invoices`) through Envoy, with the documents' own examples."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from google.protobuf import json_format
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import func, select

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.gateway_harness import Gateway, Reply, gateway
from tests.rest_fixtures import invoice_ref, two_imported_invoices, violated_fields
from tests.test_rest_data_import import assert_json_answer, post_ok
from tests.test_rest_received import V0

__all__ = ["gateway"]

# --- the documents' examples ----------------------------------------------------------------

# Seed 002, "Complex Usage Example", verbatim (its cursor was issued by the vendor's system).
SEED_002_COMPLEX_QUERY = (
    "/v1/invoices?issuer_id=550e8400-e29b-41d4-a716-446655440001&receiver_id=550e8400-e29b-41d4-a716-446655440002"
    "&status=sent&date_from=2025-01-01&date_to=2025-12-31&page[limit]=20"
    "&page[cursor]=eyJkYXRlIjoiMjAyNS0xMS0wMiIsImlkIjoiaW52b2ljZTktdXVpZCJ9"
)
SEED_002_ISSUER = "550e8400-e29b-41d4-a716-446655440001"
SEED_002_RECEIVER = "550e8400-e29b-41d4-a716-446655440002"

# Seed 002's example `included`, attributes as documented (created_at / updated_at are ours).
SEED_002_PERSON = {
    "first_name": "John",
    "last_name": "Smith",
    "full_name": "John Smith",
    "email": "jsmith@example.com",
}
SEED_002_DOCUMENT = {
    "file_name": "invoice_2025_001.pdf",
    "status": "processed",
    "uploaded_at": "2023-11-07T05:31:56Z",
    "processed_at": "2023-11-07T05:31:56Z",
    "file_type": "application/pdf",
    "size_bytes": 245678,
}
SEED_002_PAYMENT_MEANS = {
    "type": "card_details",
    "scheme": "SEPA",
    "status": "active",
    "account_details": {
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "account_number": "532013000",
        "routing_number": "37040044",
        "currency": "EUR",
    },
    "bank_details": {
        "bank_name": "Commerzbank AG",
        "bank_code": "37040044",
        "branch_name": "Main Branch",
        "branch_code": "440",
    },
    "card_details": {
        "masked_pan": "****1234",
        "brand": "visa",
        "card_type": "credit",
        "expiry_month": 12,
        "expiry_year": 2027,
        "cardholder_name": "John Smith",
    },
    "digital_wallet": {"provider": "paypal", "wallet_id": "john.smith@example.com", "wallet_type": "personal"},
    "compliance": {
        "kyc_status": "verified",
        "aml_status": "cleared",
        "sanctions_check": "passed",
        "last_compliance_check": "2023-11-07T05:31:56Z",
    },
    "metadata": {"source": "api", "external_id": "ext_pm_12345"},
    "nickname": "Primary Payment Method",
    "description": "Main company payment account",
    "tags": ["primary", "sepa"],
}
SEED_002_RECEIVER_COMPANY = {
    "name": "ACME Corporation",
    "description": "Technology solutions provider",
    "domain_name_primary_link_url": "acme.com",
    "locale": "en",
    "tax_id": {"value": "DE123456789", "type": "VAT"},
    "registration": {"trade_name": "TechSol", "registered_name": "ACME Corporation GmbH"},
    "registration_number": {
        "business_type": "GmbH",
        "value": "HRB 123456",
        "registry_name": "Handelsregister Berlin",
        "registry_country": "DE",
    },
}
SEED_002_ISSUER_COMPANY = {
    "name": "Service Provider Inc",
    "description": "Professional services company",
    "domain_name_primary_link_url": "serviceprovider.com",
    "locale": "en",
    "tax_id": {"value": "FR987654321", "type": "VAT"},
    "registration": {"trade_name": "Service Provider", "registered_name": "Service Provider Inc."},
    "registration_number": {
        "business_type": "Inc",
        "value": "RCS 987654",
        "registry_name": "Paris Commercial Registry",
        "registry_country": "FR",
    },
}

# Seed 003's curl body, verbatim (the resource bare, without the `data` its Body section names).
SEED_003_BODY: dict[str, Any] = {
    "type": "invoices",
    "attributes": {
        "reference_number": "INV-2025-0456",
        "issue_date": "2025-06-19",
        "due_date": "2025-07-19",
        "document_type_code": "380",
        "local_currency": "EUR",
        "local_totals": {"items_total": 2500, "tax_total": 500, "grand_total": 3000},
        "terms": "Net 30",
        "status": "sent",
        "payment_status": {"paid": True, "local_amount_paid": 3000, "local_amount_remaining": 0},
        "billing_context": "subscription",
        "description": "Monthly cloud hosting subscription",
    },
    "relationships": {
        "issuer": {"data": {"type": "company", "id": "company_id"}},
        "receiver": {"data": {"type": "company", "id": "company_id_2"}},
        "payment_type": {"data": [{"type": "payment_means", "id": "id1"}, {"type": "payment_means", "id": "id2"}]},
        "invoice_items": {"data": [{"type": "invoice_item", "id": "id1"}, {"type": "invoice_item", "id": "id2"}]},
        "documents": {
            "data": [
                {"type": "document", "id": "doc_original_invoice"},
                {"type": "document", "id": "doc_terms_and_conditions"},
            ]
        },
    },
}

# Priced items (seed 002's invoice_item attributes, plus a quantity) for a create that lists them.
WIRELESS_MOUSE = {
    "type": "invoice_item",
    "id": "item_1",
    "attributes": {
        "sku": "WM-1001",
        "name": "Wireless Mouse",
        "description": "Ergonomic wireless mouse with USB receiver",
        "quantity": 3,
        "unit_price": 25,
        "currency": "EUR",
        "unit": "EA",
        "min_quantity": 1,
        "max_quantity": 500,
        "tax": {"rate": 20, "category": "standard", "scheme": "VAT"},
        "period": {"start": "2025-06-26", "end": "2025-06-27"},
    },
}
KEYBOARD = {
    "type": "invoice_item",
    "id": "item_2",
    "attributes": {"name": "Keyboard", "unit_price": "49.99", "tax": {"rate": 20}},
}

# --- arranging the world through ImportService ----------------------------------------------


def _company(company_id: str, attributes: dict[str, Any]) -> pb.Company:
    values = dict(attributes)
    values["domain"] = values.pop("domain_name_primary_link_url")
    return json_format.ParseDict({"id": company_id, **values}, pb.Company())


def _payment_means(payment_means_id: str) -> pb.PaymentMeans:
    values = copy.deepcopy(SEED_002_PAYMENT_MEANS)
    values["account_details"]["currency_code"] = values["account_details"].pop("currency")
    values["compliance"]["last_compliance_check_time"] = values["compliance"].pop("last_compliance_check")
    return json_format.ParseDict({"id": payment_means_id, **values}, pb.PaymentMeans())


def _document(document_id: str) -> pb.Document:
    return pb.Document(
        id=document_id,
        file_name=SEED_002_DOCUMENT["file_name"],
        status=SEED_002_DOCUMENT["status"],
        file_type=SEED_002_DOCUMENT["file_type"],
        size_bytes=SEED_002_DOCUMENT["size_bytes"],
        upload_time=json_format.Parse('"2023-11-07T05:31:56Z"', pb.Document().upload_time),
        process_time=json_format.Parse('"2023-11-07T05:31:56Z"', pb.Document().process_time),
    )


async def import_companies(api: Api, companies: dict[str, dict[str, Any]]) -> None:
    request = ipb.UpsertCompaniesRequest(companies=[_company(i, a) for i, a in companies.items()])
    reply = await api.imports.UpsertCompanies(request, metadata=api.metadata)
    assert all(r.import_status == ipb.IMPORT_STATUS_INSERTED for r in reply.results), reply


async def import_seed_003_world(api: Api) -> None:
    """What seed 003's example names: companies company_id (issuer) and company_id_2
    (receiver), payment means id1 and id2, documents doc_original_invoice and
    doc_terms_and_conditions; attributes from seed 002's example."""
    await import_companies(api, {"company_id": SEED_002_ISSUER_COMPANY, "company_id_2": SEED_002_RECEIVER_COMPANY})
    await api.imports.UpsertPaymentMeans(
        ipb.UpsertPaymentMeansRequest(payment_means=[_payment_means("id1"), _payment_means("id2")]),
        metadata=api.metadata,
    )
    await api.imports.UpsertDocuments(
        ipb.UpsertDocumentsRequest(
            documents=[_document("doc_original_invoice"), _document("doc_terms_and_conditions")]
        ),
        metadata=api.metadata,
    )


async def import_seed_002_world(api: Api) -> None:
    """Seed 002's example related resources under their documented ids."""
    await import_companies(
        api, {"company-issuer-uuid": SEED_002_ISSUER_COMPANY, "company-receiver-uuid": SEED_002_RECEIVER_COMPANY}
    )
    await api.imports.UpsertPaymentMeans(
        ipb.UpsertPaymentMeansRequest(payment_means=[_payment_means("pm_1")]), metadata=api.metadata
    )
    await api.imports.UpsertDocuments(
        ipb.UpsertDocumentsRequest(documents=[_document("doc_original_invoice")]), metadata=api.metadata
    )
    person = pb.Person(id="3c90c3cc-0d44-4b50-8888-8dd25736052a", first_name="John", last_name="Smith")
    person.email = "jsmith@example.com"
    await api.imports.UpsertPeople(ipb.UpsertPeopleRequest(people=[person]), metadata=api.metadata)


def seed_003_body(**attributes: Any) -> dict[str, Any]:
    """Seed 003's body with some attributes replaced (None removes one)."""
    body = copy.deepcopy(SEED_003_BODY)
    for name, value in attributes.items():
        if value is None:
            body["attributes"].pop(name, None)
        else:
            body["attributes"][name] = value
    return body


def unpaid(**attributes: Any) -> dict[str, Any]:
    return seed_003_body(payment_status=None, **attributes)


async def create(gateway: Gateway, api: Api, body: dict[str, Any], **headers: str) -> Reply:
    return await gateway.request("POST", "/v1/invoices", key=api.key, body=body, headers=headers)


def timestamps_popped(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes without created_at / updated_at, after checking they are RFC 3339 UTC."""
    for name in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attributes.pop(name)), name
    return attributes


def included_by_key(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    keys = [(r["type"], r["id"]) for r in body["included"]]
    assert len(keys) == len(set(keys)), "each included resource appears once"
    return {(r["type"], r["id"]): timestamps_popped(r["attributes"]) for r in body["included"]}


def assert_violations(reply: Reply, fields: list[str]) -> None:
    assert reply.status == 400, reply.body
    assert reply.json()["code"] == 3
    assert violated_fields(reply) == fields


async def invoice_count(api: Api) -> int:
    async with api.db.read() as s:
        return int(await s.scalar(select(func.count()).where(m.Invoice.tenant_id == api.tenant_id)) or 0)


# --- seed 002: GET /v1/invoices ---------------------------------------------------------------


async def test_seed_002_list_has_the_documented_shape(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/v1/invoices?date_from=2024-07-01&date_to=2024-07-01", key=api.key)
    assert reply.status == 200
    body = reply.json()
    assert body["meta"] == {"total": 1, "page": 1, "limit": 20}
    assert body["included"] == []
    (invoice,) = body["data"]
    ref = await invoice_ref(api, "inv_001")
    assert (invoice["type"], invoice["id"]) == ("invoice", f"invoice_{ref}")
    assert timestamps_popped(invoice["attributes"]) == {
        "reference_number": "INV-2024-0001",
        "document_type": "commercial_invoice",
        "document_type_code": "380",
        "issue_date": "2024-07-01",
        "local_currency": "USD",
        "local_totals": {"subtotal": "99.00", "tax_total": "0.00", "total_amount": "99.00"},
        "billing_context": "subscription",
        "payment_status": {"paid": False, "amount_paid": 0, "amount_remaining": 99},
        "status": "sent",
    }
    assert invoice["relationships"] == {
        "payment_means": {"data": []},
        "invoice_items": {"data": []},
        "documents": {"data": []},
        "people": {"data": []},
    }


async def test_seed_002_bracketed_page_keys_page_through_with_the_cursor(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    first = await gateway.request("GET", "/v1/invoices?page[limit]=1", key=api.key)
    assert first.status == 200
    assert len(first.json()["data"]) == 1
    meta = first.json()["meta"]
    assert (meta["total"], meta["page"], meta["limit"]) == (2, 1, 1)
    cursor = meta["next_cursor"]
    # Browsers percent-encode the brackets; the shim takes both spellings.
    second = await gateway.request("GET", f"/v1/invoices?page%5Blimit%5D=1&page%5Bcursor%5D={cursor}", key=api.key)
    assert second.status == 200
    assert second.json()["meta"] == {"total": 2, "page": 2, "limit": 1}
    seen = {
        first.json()["data"][0]["attributes"]["reference_number"],
        second.json()["data"][0]["attributes"]["reference_number"],
    }
    assert seen == {"INV-2024-0001", "INV-2024-0002"}


async def test_seed_002_bad_parameters_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request(
        "GET",
        "/v1/invoices?status=unpaid&date_from=01-01-2025&page[limit]=500&page[cursor]=nope&include=company,invoices",
        key=api.key,
    )
    assert_violations(reply, ["status", "date_from", "page[limit]", "include", "page[cursor]"])


async def test_seed_002_page_limit_must_be_from_1_to_100(gateway: Gateway, api: Api) -> None:
    assert_violations(await gateway.request("GET", "/v1/invoices?page[limit]=0", key=api.key), ["page[limit]"])
    assert_violations(await gateway.request("GET", "/v1/invoices?page[limit]=101", key=api.key), ["page[limit]"])
    assert (await gateway.request("GET", "/v1/invoices?page[limit]=100", key=api.key)).status == 200


async def test_seed_002_a_cursor_is_refused_with_other_filters(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    first = await gateway.request("GET", "/v1/invoices?page[limit]=1", key=api.key)
    cursor = first.json()["meta"]["next_cursor"]
    reply = await gateway.request("GET", f"/v1/invoices?page[limit]=1&status=sent&page[cursor]={cursor}", key=api.key)
    assert_violations(reply, ["page[cursor]"])


async def test_seed_002_date_to_before_date_from_is_400(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/v1/invoices?date_from=2025-02-01&date_to=2025-01-31", key=api.key)
    assert_violations(reply, ["date_to"])


async def test_seed_002_complex_example_filters_by_issuer_receiver_status_and_dates(gateway: Gateway, api: Api) -> None:
    await import_companies(
        api, {SEED_002_ISSUER: SEED_002_ISSUER_COMPANY, SEED_002_RECEIVER: SEED_002_RECEIVER_COMPANY}
    )

    async def invoice(issuer: str, receiver: str, status: str, issue_date: str) -> str:
        body = unpaid(status=status, issue_date=issue_date, due_date=None)
        body["relationships"] = {
            "issuer": {"data": {"type": "company", "id": issuer}},
            "receiver": {"data": {"type": "company", "id": receiver}},
        }
        reply = await create(gateway, api, body)
        assert reply.status == 201, reply.body
        return str(reply.json()["data"]["id"])

    first_match = await invoice(SEED_002_ISSUER, SEED_002_RECEIVER, "sent", "2025-01-01")
    await invoice(SEED_002_ISSUER, SEED_002_RECEIVER, "draft", "2025-03-01")  # status
    await invoice(SEED_002_ISSUER, SEED_002_RECEIVER, "sent", "2024-12-31")  # before date_from
    await invoice(SEED_002_ISSUER, SEED_002_RECEIVER, "sent", "2026-01-01")  # after date_to
    await invoice(SEED_002_RECEIVER, SEED_002_ISSUER, "sent", "2025-03-01")  # issuer and receiver swapped
    last_match = await invoice(SEED_002_ISSUER, SEED_002_RECEIVER, "sent", "2025-12-31")

    # The example's own cursor was issued by the vendor's system: it is refused, by name.
    verbatim = await gateway.request("GET", SEED_002_COMPLEX_QUERY, key=api.key)
    assert_violations(verbatim, ["page[cursor]"])

    without_cursor = SEED_002_COMPLEX_QUERY.split("&page[cursor]=")[0]
    reply = await gateway.request("GET", without_cursor, key=api.key)
    assert reply.status == 200, reply.body
    assert [i["id"] for i in reply.json()["data"]] == [last_match, first_match]  # newest first
    assert reply.json()["meta"] == {"total": 2, "page": 1, "limit": 20}
    for found in reply.json()["data"]:
        assert found["attributes"]["status"] == "sent"
        assert found["relationships"]["issuer"] == {"data": {"type": "company", "id": SEED_002_ISSUER}}
        assert found["relationships"]["receiver"] == {"data": {"type": "company", "id": SEED_002_RECEIVER}}

    page_1 = await gateway.request("GET", without_cursor.replace("page[limit]=20", "page[limit]=1"), key=api.key)
    cursor = page_1.json()["meta"]["next_cursor"]
    page_2 = await gateway.request(
        "GET", without_cursor.replace("page[limit]=20", "page[limit]=1") + f"&page[cursor]={cursor}", key=api.key
    )
    assert page_2.status == 200, page_2.body
    assert [i["id"] for i in page_2.json()["data"]] == [first_match]
    assert page_2.json()["meta"] == {"total": 2, "page": 2, "limit": 1}


async def test_seed_002_include_fills_included_with_the_documented_attributes(gateway: Gateway, api: Api) -> None:
    await import_seed_002_world(api)
    body = unpaid()
    body["relationships"] = {
        "issuer": {"data": {"type": "company", "id": "company-issuer-uuid"}},
        "receiver": {"data": {"type": "company", "id": "company-receiver-uuid"}},
        "payment_means": {"data": [{"type": "payment_means", "id": "pm_1"}]},
        "documents": {"data": [{"type": "document", "id": "doc_original_invoice"}]},
        "people": {"data": [{"type": "people", "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}]},
    }
    assert (await create(gateway, api, body)).status == 201

    reply = await gateway.request("GET", "/v1/invoices?include=company,payment_means,people,documents", key=api.key)
    assert reply.status == 200, reply.body
    (invoice,) = reply.json()["data"]
    relationships = invoice["relationships"]
    assert relationships["issuer"] == {"data": {"type": "company", "id": "company-issuer-uuid"}}
    assert relationships["receiver"] == {"data": {"type": "company", "id": "company-receiver-uuid"}}
    assert relationships["payment_means"] == {"data": [{"type": "payment_means", "id": "pm_1"}]}
    assert relationships["documents"] == {"data": [{"type": "document", "id": "doc_original_invoice"}]}
    assert relationships["people"] == {"data": [{"type": "people", "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}]}
    # Seed 002's order: people, documents, (items,) payment means, companies.
    assert [(r["type"], r["id"]) for r in reply.json()["included"]] == [
        ("people", "3c90c3cc-0d44-4b50-8888-8dd25736052a"),
        ("document", "doc_original_invoice"),
        ("payment_means", "pm_1"),
        ("company", "company-issuer-uuid"),
        ("company", "company-receiver-uuid"),
    ]
    included = included_by_key(reply.json())
    workspace = {"workspace_id": str(api.tenant_id)}
    assert included == {
        ("people", "3c90c3cc-0d44-4b50-8888-8dd25736052a"): SEED_002_PERSON,
        ("document", "doc_original_invoice"): SEED_002_DOCUMENT,
        ("payment_means", "pm_1"): SEED_002_PAYMENT_MEANS,
        ("company", "company-issuer-uuid"): SEED_002_ISSUER_COMPANY | workspace,
        ("company", "company-receiver-uuid"): SEED_002_RECEIVER_COMPANY | workspace,
    }


async def test_seed_002_include_gives_only_what_is_asked_each_once(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    for _ in range(2):  # two invoices naming the same companies and documents
        assert (await create(gateway, api, unpaid())).status == 201
    reply = await gateway.request("GET", "/v1/invoices?include=documents&include=company", key=api.key)
    assert reply.status == 200, reply.body
    assert [(r["type"], r["id"]) for r in reply.json()["included"]] == [
        ("document", "doc_original_invoice"),
        ("document", "doc_terms_and_conditions"),
        ("company", "company_id"),
        ("company", "company_id_2"),
    ]
    plain = await gateway.request("GET", "/v1/invoices", key=api.key)
    assert plain.json()["included"] == []


async def test_seed_002_include_invoice_items_shows_each_line(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid(local_totals={"items_total": "75.00", "tax_total": "15.00", "grand_total": "90.00"})
    body["relationships"]["invoice_items"] = {"data": [{"type": "invoice_item", "id": "item_1"}]}
    body["included"] = [WIRELESS_MOUSE]
    assert (await create(gateway, api, body)).status == 201, body
    reply = await gateway.request("GET", "/v1/invoices?include=invoice_items", key=api.key)
    assert reply.status == 200, reply.body
    ((item_type, item_id),) = [(r["type"], r["id"]) for r in reply.json()["included"]]
    assert reply.json()["data"][0]["relationships"]["invoice_items"] == {"data": [{"type": item_type, "id": item_id}]}
    assert included_by_key(reply.json())[(item_type, item_id)] == {
        "line_id": "1",
        "sku": "WM-1001",
        "name": "Wireless Mouse",
        "description": "Ergonomic wireless mouse with USB receiver",
        "quantity": 3,
        "unit_price": 25,
        "currency": "EUR",
        "unit": "EA",
        "min_quantity": 1,
        "max_quantity": 500,
        "tax": {"rate": 20, "category": "standard", "scheme": "VAT"},
        "period": {"start": "2025-06-26", "end": "2025-06-27"},
    }


async def test_seed_002_list_shows_only_the_callers_invoices(gateway: Gateway, api: Api, other_api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/v1/invoices", key=other_api.key)
    assert reply.status == 200
    assert reply.json()["data"] == []
    assert reply.json()["meta"]["total"] == 0


async def test_seed_002_without_a_valid_key_is_401(gateway: Gateway, api: Api) -> None:
    missing = await gateway.request("GET", "/v1/invoices")
    wrong = await gateway.request("GET", "/v1/invoices", key="irk_not_a_key")
    assert (missing.status, wrong.status) == (401, 401)
    assert missing.json()["code"] == 16


# --- seed 003: POST /v1/invoices ---------------------------------------------------------------


async def test_seed_003_example_creates_the_invoice_201_with_location(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    reply = await create(gateway, api, SEED_003_BODY)

    assert reply.status == 201, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert "x-http-status" not in reply.headers and "grpc-status" not in reply.headers
    body = reply.json()
    invoice = body["data"]
    ref = invoice["id"].removeprefix("invoice_")
    assert invoice["id"] == f"invoice_{uuid.UUID(ref)}"
    assert invoice["type"] == "invoice"
    assert reply.headers["location"] == f"/v1/invoices/invoice_{ref}"
    assert timestamps_popped(invoice["attributes"]) == {
        "reference_number": "INV-2025-0001",  # ours; the caller's INV-2025-0456 is its external id
        "document_type": "commercial_invoice",
        "document_type_code": "380",
        "issue_date": "2025-06-19",
        "due_date": "2025-07-19",
        "local_currency": "EUR",
        "local_totals": {"subtotal": "2500.00", "tax_total": "500.00", "total_amount": "3000.00"},
        "terms": "Net 30",
        "billing_context": "subscription",
        "payment_status": {"paid": True, "amount_paid": 3000, "amount_remaining": 0},
        "status": "paid",  # sent, and paid in full: the recorded payment makes it paid
        "description": "Monthly cloud hosting subscription",
    }
    relationships = invoice["relationships"]
    ((_, line_id),) = [(i["type"], i["id"]) for i in relationships.pop("invoice_items")["data"]]
    assert relationships == {
        "issuer": {"data": {"type": "company", "id": "company_id"}},
        "receiver": {"data": {"type": "company", "id": "company_id_2"}},
        "payment_means": {"data": [{"type": "payment_means", "id": "id1"}, {"type": "payment_means", "id": "id2"}]},
        "documents": {
            "data": [
                {"type": "document", "id": "doc_original_invoice"},
                {"type": "document", "id": "doc_terms_and_conditions"},
            ]
        },
        "people": {"data": []},
    }
    workspace = {"workspace_id": str(api.tenant_id)}
    documented_document = SEED_002_DOCUMENT
    assert included_by_key(body) == {
        ("document", "doc_original_invoice"): documented_document,
        ("document", "doc_terms_and_conditions"): documented_document,
        # No item catalog is kept: the invoice has one line carrying the stated totals.
        ("invoice_item", line_id): {
            "line_id": "1",
            "name": "Monthly cloud hosting subscription",
            "quantity": 1,
            "unit_price": 2500,
            "currency": "EUR",
            "tax": {"rate": 20},
        },
        ("payment_means", "id1"): SEED_002_PAYMENT_MEANS,
        ("payment_means", "id2"): SEED_002_PAYMENT_MEANS,
        ("company", "company_id"): SEED_002_ISSUER_COMPANY | workspace,
        ("company", "company_id_2"): SEED_002_RECEIVER_COMPANY | workspace,
    }
    async with api.db.read() as s:
        stored = await s.get(m.Invoice, uuid.UUID(ref))
        assert stored is not None
        assert (stored.external_id, stored.total_minor, stored.amount_paid_minor) == ("INV-2025-0456", 300000, 300000)
        payments = (await s.scalars(select(m.Payment.amount_minor).where(m.Payment.invoice_id == stored.id))).all()
        assert payments == [300000]


async def test_seed_003_location_gets_the_created_invoice(gateway: Gateway, api: Api, other_api: Api) -> None:
    await import_seed_003_world(api)
    created = await create(gateway, api, SEED_003_BODY)
    location = created.headers["location"]

    reply = await gateway.request("GET", location + "?include=company", key=api.key)
    assert reply.status == 200, reply.body
    assert reply.json()["data"] == created.json()["data"]
    assert [(r["type"], r["id"]) for r in reply.json()["included"]] == [
        ("company", "company_id"),
        ("company", "company_id_2"),
    ]
    foreign = await gateway.request("GET", location, key=other_api.key)
    unknown = await gateway.request("GET", f"/v1/invoices/invoice_{uuid.uuid4()}", key=api.key)
    malformed = await gateway.request("GET", "/v1/invoices/INV-2025-0001", key=api.key)
    assert (foreign.status, unknown.status, malformed.status) == (404, 404, 404)
    assert foreign.json()["code"] == 5


async def test_seed_003_body_wrapped_in_data_is_accepted_too(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    reply = await create(gateway, api, {"data": SEED_003_BODY})
    assert reply.status == 201, reply.body
    assert reply.json()["data"]["attributes"]["local_totals"]["total_amount"] == "3000.00"


async def test_seed_003_data_and_a_bare_resource_together_are_400(gateway: Gateway, api: Api) -> None:
    reply = await create(gateway, api, {"data": SEED_003_BODY, **SEED_003_BODY})
    assert_violations(reply, ["data"])
    assert_violations(await create(gateway, api, {}), ["data"])


async def test_seed_003_draft_unpaid_invoice_stays_draft(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = seed_003_body(status="draft", payment_status={"paid": False, "local_amount_paid": 0})
    reply = await create(gateway, api, body)
    assert reply.status == 201, reply.body
    attributes = reply.json()["data"]["attributes"]
    assert attributes["status"] == "draft"
    assert attributes["payment_status"] == {"paid": False, "amount_paid": 0, "amount_remaining": 3000}


async def test_seed_003_partial_payment_is_recorded(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = seed_003_body(
        payment_status={"paid": False, "local_amount_paid": "1000.50", "local_amount_remaining": 1999.5}
    )
    reply = await create(gateway, api, body)
    assert reply.status == 201, reply.body
    attributes = reply.json()["data"]["attributes"]
    assert attributes["status"] == "sent"
    assert attributes["payment_status"] == {"paid": False, "amount_paid": 1000.5, "amount_remaining": 1999.5}


async def test_seed_003_payment_that_disagrees_with_the_total_is_400(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    paid_short = seed_003_body(
        payment_status={"paid": True, "local_amount_paid": 2999.99, "local_amount_remaining": 0.01}
    )
    assert_violations(
        await create(gateway, api, paid_short),
        ["attributes.payment_status.local_amount_paid", "attributes.payment_status.local_amount_remaining"],
    )
    draft_paid = seed_003_body(status="draft")
    assert_violations(await create(gateway, api, draft_paid), ["attributes.payment_status"])
    assert await invoice_count(api) == 0


async def test_seed_003_amounts_are_exact_to_the_cent(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    # 0.1 + 0.02 is 0.12 here, not the 0.12000000000000001 of binary floating point.
    exact = unpaid(local_totals={"items_total": 0.1, "tax_total": 0.02, "grand_total": 0.12})
    reply = await create(gateway, api, exact)
    assert reply.status == 201, reply.body
    assert reply.json()["data"]["attributes"]["local_totals"] == {
        "subtotal": "0.10",
        "tax_total": "0.02",
        "total_amount": "0.12",
    }
    too_fine = unpaid(local_totals={"items_total": 0.1, "tax_total": 0.02, "grand_total": 0.1 + 0.02})
    assert_violations(await create(gateway, api, too_fine), ["attributes.local_totals.grand_total"])
    off_by_a_cent = unpaid(local_totals={"items_total": "2500.00", "tax_total": "500.00", "grand_total": "3000.01"})
    reply = await create(gateway, api, off_by_a_cent)
    assert_violations(reply, ["attributes.local_totals.grand_total"])
    assert "3000.01" in reply.json()["message"] and "3000.00" in reply.json()["message"]


async def test_seed_003_tax_above_the_items_total_is_400(gateway: Gateway, api: Api) -> None:
    body = unpaid(local_totals={"items_total": 10, "tax_total": 11})
    assert_violations(await create(gateway, api, body), ["attributes.local_totals.tax_total"])
    assert await invoice_count(api) == 0


async def test_seed_003_yen_has_no_decimals(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid(local_currency="JPY", local_totals={"items_total": 2500, "tax_total": 250.5})
    assert_violations(await create(gateway, api, body), ["attributes.local_totals.tax_total"])
    body = unpaid(local_currency="JPY", local_totals={"items_total": 2500, "tax_total": 250})
    reply = await create(gateway, api, body)
    assert reply.status == 201, reply.body
    assert reply.json()["data"]["attributes"]["local_totals"]["total_amount"] == "2750"


async def test_seed_003_included_items_price_the_invoice_and_totals_must_agree(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid(local_totals={"items_total": 124.99, "tax_total": 25, "grand_total": 150})
    body["relationships"]["invoice_items"] = {
        "data": [{"type": "invoice_item", "id": "item_1"}, {"type": "invoice_item", "id": "item_2"}]
    }
    body["included"] = [KEYBOARD, WIRELESS_MOUSE]
    # 3 × 25.00 + 49.99 = 124.99; tax 15.00 + 10.00 (9.998 rounded half up) = 25.00; total 149.99.
    reply = await create(gateway, api, body)
    assert_violations(reply, ["attributes.local_totals.grand_total"])
    assert "is 150.00 but the invoice's lines give 149.99" in reply.json()["message"]

    body["attributes"]["local_totals"]["grand_total"] = "149.99"
    reply = await create(gateway, api, body)
    assert reply.status == 201, reply.body
    # The failed create gave its number back.
    assert reply.json()["data"]["attributes"]["reference_number"] == "INV-2025-0001"
    assert reply.json()["data"]["attributes"]["local_totals"] == {
        "subtotal": "124.99",
        "tax_total": "25.00",
        "total_amount": "149.99",
    }
    items = [r["attributes"] for r in reply.json()["included"] if r["type"] == "invoice_item"]
    assert [(i["line_id"], i["name"], i["quantity"], i["unit_price"]) for i in items] == [
        ("1", "Wireless Mouse", 3, 25),
        ("2", "Keyboard", 1, 49.99),
    ]


async def test_seed_003_included_items_must_match_the_listed_ones(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid()
    body["relationships"]["invoice_items"] = {
        "data": [{"type": "invoice_item", "id": "item_1"}, {"type": "invoice_item", "id": "item_9"}]
    }
    body["included"] = [WIRELESS_MOUSE, KEYBOARD, {"type": "invoice_item", "id": "item_1", "attributes": {}}]
    assert_violations(
        await create(gateway, api, body),
        ["included[1].id", "included[2].id", "relationships.invoice_items.data[1].id"],
    )


async def test_seed_003_bad_fields_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    body = {
        "data": {
            "type": "receipts",
            "attributes": {
                "issue_date": "19-06-2025",
                "due_date": "2025-02-30",
                "document_type_code": "999",
                "local_currency": "EURO",
                "local_totals": {"items_total": -5, "tax_total": "ten"},
                "status": "overdue",
                "billing_context": "monthly",
            },
            "relationships": {
                "issuer": {"data": {"type": "person", "id": "company_id"}},
                "payment_type": {"data": [{"type": "payment_means", "id": ""}]},
                "documents": {"data": [{"type": "document", "id": "doc_1"}, {"type": "document", "id": "doc_1"}]},
            },
        },
        "included": [{"type": "invoice_item", "id": "item_1", "attributes": {"unit_price": True}}],
    }
    reply = await create(gateway, api, body)
    assert_violations(
        reply,
        [
            "data.type",
            "data.attributes.document_type_code",
            "data.relationships.issuer.data.type",
            "data.attributes.billing_context",
            "included[0].id",
            "data.attributes.status",
            "data.attributes.issue_date",
            "data.attributes.due_date",
            "data.relationships.payment_type.data[0].id",
            "data.attributes.local_totals.items_total",
            "data.attributes.local_totals.tax_total",
            "data.attributes.local_currency",
            "data.relationships.documents.data",
        ],
    )
    assert await invoice_count(api) == 0


async def test_seed_003_status_must_be_draft_or_sent_and_billing_context_given(gateway: Gateway, api: Api) -> None:
    reply = await create(gateway, api, unpaid(status="paid", billing_context=None))
    assert_violations(reply, ["attributes.billing_context", "attributes.status"])


async def test_seed_003_document_type_code_must_match_the_billing_context(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    assert_violations(await create(gateway, api, unpaid(billing_context="refund")), ["attributes.document_type_code"])
    reply = await create(gateway, api, unpaid(billing_context="refund", document_type_code="381"))
    assert reply.status == 201, reply.body
    assert reply.json()["data"]["attributes"]["document_type"] == "credit_note"


async def test_seed_003_payment_means_may_be_named_payment_means(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid()
    body["relationships"]["payment_means"] = body["relationships"].pop("payment_type")
    reply = await create(gateway, api, body)
    assert reply.status == 201, reply.body
    assert [i["id"] for i in reply.json()["data"]["relationships"]["payment_means"]["data"]] == ["id1", "id2"]
    body["relationships"]["payment_type"] = body["relationships"]["payment_means"]
    assert_violations(await create(gateway, api, body), ["relationships.payment_means"])


async def test_seed_003_unknown_related_ids_are_404_naming_the_field(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    body = unpaid()
    body["relationships"]["receiver"]["data"]["id"] = "company_nope"
    body["relationships"]["payment_type"]["data"][1]["id"] = "pm_nope"
    reply = await create(gateway, api, body)
    assert reply.status == 404, reply.body
    assert reply.json()["code"] == 5
    assert reply.json()["message"] == (
        "relationships.receiver.data.id: no company 'company_nope'; "
        "relationships.payment_type.data[1].id: no payment means 'pm_nope'"
    )
    assert await invoice_count(api) == 0


async def test_seed_003_another_tenants_related_ids_are_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    await import_seed_003_world(other_api)
    reply = await create(gateway, api, {"data": unpaid()})
    assert reply.status == 404, reply.body
    message = reply.json()["message"]
    assert message.startswith("data.relationships.issuer.data.id: no company 'company_id'; ")
    assert "data.relationships.documents.data[1].id: no document 'doc_terms_and_conditions'" in message
    assert await invoice_count(api) == 0


async def test_seed_003_idempotency_key_makes_a_retry_answer_the_same_invoice(gateway: Gateway, api: Api) -> None:
    await import_seed_003_world(api)
    first = await create(gateway, api, SEED_003_BODY, **{"Idempotency-Key": "order-42"})
    retry = await create(gateway, api, SEED_003_BODY, **{"Idempotency-Key": "order-42"})
    assert (first.status, retry.status) == (201, 201)
    assert retry.json()["data"] == first.json()["data"]
    assert retry.headers["location"] == first.headers["location"]
    assert await invoice_count(api) == 1
    other = await create(gateway, api, SEED_003_BODY, **{"Idempotency-Key": "order-43"})
    assert other.json()["data"]["attributes"]["reference_number"] == "INV-2025-0002"
    async with api.db.read() as s:
        payments = await s.scalar(
            select(func.count()).select_from(m.Payment).where(m.Payment.tenant_id == api.tenant_id)
        )
    assert payments == 2


async def test_seed_003_without_a_valid_key_is_401(gateway: Gateway, api: Api) -> None:
    missing = await gateway.request("POST", "/v1/invoices", body=SEED_003_BODY)
    wrong = await gateway.request("POST", "/v1/invoices", key="irk_not_a_key", body=SEED_003_BODY)
    assert (missing.status, wrong.status) == (401, 401)
    assert await invoice_count(api) == 0


# --- an invoice on a contract: relationship `contract` (an addition to seed 003) --------------

# A contract as `POST /data/contracts` takes it; the invoice names it by this id.
CONTRACT = {"id": "ctr_1", "customer_id": "cus_123", "contract_number": 123, "name": "Cloud hosting"}
ON_CONTRACT = {"data": {"type": "contract", "id": "ctr_1"}}


def on_contract(body: dict[str, Any], contract: dict[str, Any] = ON_CONTRACT) -> dict[str, Any]:
    """Seed 003's body (bare) with a `contract` relationship added."""
    with_contract = copy.deepcopy(body)
    with_contract["relationships"]["contract"] = copy.deepcopy(contract)
    return with_contract


def _company_import(company_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """Seed 002's company as `/data/companies` takes it (the core Company's `domain`)."""
    values = {key: value for key, value in attributes.items() if key != "domain_name_primary_link_url"}
    return {"id": company_id, "domain": attributes["domain_name_primary_link_url"], **values}


async def import_contract_world_over_rest(gateway: Gateway, api: Api) -> None:
    """Over REST only: data source stripe, customer cus_123 in it, contract ctr_1 of that
    customer, and what seed 003's example names (companies, payment means, documents)."""
    assert_json_answer(await gateway.request("POST", "/data/data_sources", key=api.key, body={"name": "stripe"}), 201)
    batches: dict[str, list[dict[str, Any]]] = {
        "/data/customers": [{"id": "cus_123", "data_source": "stripe", "name": "Acme Corporation"}],
        "/data/contracts": [CONTRACT],
        "/data/companies": [
            _company_import("company_id", SEED_002_ISSUER_COMPANY),
            _company_import("company_id_2", SEED_002_RECEIVER_COMPANY),
        ],
        "/data/payment_means": [{"id": i, **SEED_002_PAYMENT_MEANS} for i in ("id1", "id2")],
        "/data/documents": [
            {"id": i, **SEED_002_DOCUMENT} for i in ("doc_original_invoice", "doc_terms_and_conditions")
        ],
    }
    for path, items in batches.items():
        results = await post_ok(gateway, api, path, items)
        assert [r["import_status"] for r in results] == ["inserted"] * len(items), (path, results)


async def test_contract_relationship_puts_the_invoice_on_the_contract_seed_001_shows(
    gateway: Gateway, api: Api
) -> None:
    await import_contract_world_over_rest(gateway, api)
    created = await create(gateway, api, on_contract(SEED_003_BODY))
    assert_json_answer(created, 201)
    assert created.json()["data"]["relationships"]["contract"] == ON_CONTRACT
    first_ref = created.json()["data"]["id"].removeprefix("invoice_")

    # Seed 001 shows the contract, its reference (which no other path shows), and the counters.
    received = await gateway.request("GET", f"/api/invoices/{first_ref}", key=api.key, headers=V0)
    assert_json_answer(received)
    shown = received.json()
    contract_ref = shown["contract"]["contract_ref"]
    assert shown["contract"] == {"contract_ref": str(uuid.UUID(contract_ref)), "contract_number": 123}
    assert (shown["number_in_contract"], shown["total_in_contract"]) == (1, 3000)
    assert shown["customer"]["customer_name"] == "Acme Corporation"  # the contract's customer

    second = await create(gateway, api, on_contract(SEED_003_BODY))
    assert_json_answer(second, 201)
    second_ref = second.json()["data"]["id"].removeprefix("invoice_")
    received = await gateway.request("GET", f"/api/invoices/{second_ref}", key=api.key, headers=V0)
    assert (received.json()["number_in_contract"], received.json()["total_in_contract"]) == (2, 6000)

    path = f"/api/documents/filter?contract_refs={contract_ref}&limit=50&page=0"
    filtered = await gateway.request("GET", path, key=api.key, headers=V0)
    assert_json_answer(filtered)
    assert sorted(i["invoice_ref"] for i in filtered.json()) == sorted([first_ref, second_ref])


async def test_contract_relationship_shows_on_get_and_list(gateway: Gateway, api: Api) -> None:
    await import_contract_world_over_rest(gateway, api)
    created = await create(gateway, api, on_contract(SEED_003_BODY))
    assert created.status == 201, created.body
    without = await create(gateway, api, SEED_003_BODY)
    assert without.status == 201, without.body
    assert "contract" not in without.json()["data"]["relationships"]

    fetched = await gateway.request("GET", created.headers["location"], key=api.key)
    assert fetched.status == 200, fetched.body
    assert fetched.json()["data"] == created.json()["data"]
    listed = await gateway.request("GET", "/v1/invoices", key=api.key)
    assert listed.status == 200, listed.body
    contracts = {i["id"]: i["relationships"].get("contract") for i in listed.json()["data"]}
    assert contracts == {created.json()["data"]["id"]: ON_CONTRACT, without.json()["data"]["id"]: None}


async def test_unknown_contract_is_404_naming_the_field(gateway: Gateway, api: Api) -> None:
    await import_contract_world_over_rest(gateway, api)
    unknown = {"data": {"type": "contract", "id": "ctr_nope"}}
    reply = await create(gateway, api, {"data": on_contract(SEED_003_BODY, unknown)})
    assert reply.status == 404, reply.body
    assert reply.json()["code"] == 5
    assert reply.json()["message"] == "data.relationships.contract.data.id: no contract 'ctr_nope'"
    assert await invoice_count(api) == 0


async def test_another_tenants_contract_is_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    await import_contract_world_over_rest(gateway, other_api)
    await import_seed_003_world(api)  # all but the contract
    reply = await create(gateway, api, on_contract(SEED_003_BODY))
    assert reply.status == 404, reply.body
    assert reply.json()["message"] == "relationships.contract.data.id: no contract 'ctr_1'"
    assert await invoice_count(api) == 0


async def test_contract_of_the_wrong_type_or_without_an_id_is_400(gateway: Gateway, api: Api) -> None:
    await import_contract_world_over_rest(gateway, api)
    wrong_type = {"data": {"type": "company", "id": "ctr_1"}}
    assert_violations(
        await create(gateway, api, on_contract(SEED_003_BODY, wrong_type)), ["relationships.contract.data.type"]
    )
    no_id = {"data": {"type": "contract", "id": " "}}
    assert_violations(await create(gateway, api, on_contract(SEED_003_BODY, no_id)), ["relationships.contract.data.id"])
    assert await invoice_count(api) == 0
