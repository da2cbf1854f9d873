"""Seeds 002 and 003 (JSON:API `/v1/invoices`) through Envoy."""

from __future__ import annotations

from tests.conftest import Api
from tests.gateway_harness import Gateway, gateway
from tests.rest_fixtures import invoice_ref, two_imported_invoices, violated_fields

__all__ = ["gateway"]

# --- seed 002: the JSON:API face ------------------------------------------------------------


async def test_seed_002_list_has_the_documented_shape(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", "/v1/invoices?date_from=2024-07-01&date_to=2024-07-01", key=api.key)
    assert reply.status == 200
    body = reply.json()
    assert body["meta"] == {"total": 1, "limit": 20}
    assert body["included"] == []
    (invoice,) = body["data"]
    ref = await invoice_ref(api, "inv_001")
    assert (invoice["type"], invoice["id"]) == ("invoice", f"invoice_{ref}")
    attributes = invoice["attributes"]
    assert attributes.pop("created_at").endswith("Z")
    assert attributes.pop("updated_at").endswith("Z")
    assert attributes == {
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
    assert first.json()["meta"]["total"] == 2
    cursor = first.json()["meta"]["next_cursor"]
    # Browsers percent-encode the brackets; the shim takes both spellings.
    second = await gateway.request("GET", f"/v1/invoices?page%5Blimit%5D=1&page%5Bcursor%5D={cursor}", key=api.key)
    assert second.status == 200
    assert "next_cursor" not in second.json()["meta"]
    seen = {
        first.json()["data"][0]["attributes"]["reference_number"],
        second.json()["data"][0]["attributes"]["reference_number"],
    }
    assert seen == {"INV-2024-0001", "INV-2024-0002"}


async def test_seed_002_bad_parameters_are_400_naming_each(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request(
        "GET", "/v1/invoices?status=unpaid&date_from=01-01-2025&page[limit]=500&page[cursor]=nope", key=api.key
    )
    assert reply.status == 400
    assert violated_fields(reply) == ["status", "date_from", "page.limit", "page.cursor"]


async def test_seed_002_include_is_refused_until_related_resources_are_served(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", "/v1/invoices?include=company,people", key=api.key)
    assert reply.status == 400
    assert violated_fields(reply) == ["include"]
