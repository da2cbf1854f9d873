"""Seed 000 (`/api/v1/invoice-receipts`) through Envoy, with the document's own examples."""

from __future__ import annotations

import calendar
import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta

import grpc
from sqlalchemy import func, select

from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from tests.conftest import Api, new_api
from tests.factories import line, make_customer, make_invoice, make_invoices_bulk, utc
from tests.gateway_harness import Gateway, Reply, gateway
from tests.rest_fixtures import stripe_with_customers_and_plan, two_imported_invoices, violated_fields

__all__ = ["gateway"]

BASE = "/api/v1/invoice-receipts"
# Seed 000, "List Invoices", Response: the example invoice, and the pagination and filters of
# a list of 12 invoices asked for with no parameter.
DOCUMENTED_LIST_ITEM = {
    "invoice_number": "INV-2026-0042",
    "billing_type": "subscription",
    "status": "paid",
    "total_amount": 99.00,
    "currency": "USD",
    "created_at": "2026-02-01T00:00:00Z",
}
DOCUMENTED_PAGINATION = {"current_page": 1, "per_page": 50, "total": 12, "last_page": 1}
DOCUMENTED_FILTERS_APPLIED = {
    "type": None,
    "status": None,
    "start_date": None,
    "end_date": None,
    "sort": "created_at",
    "dir": "desc",
}
DOCUMENTED_BILLING_TYPES = ("subscription", "token_pack", "marketplace_usage", "free_trial", "demo")


def assert_violations(reply: Reply, fields: list[str]) -> None:
    assert reply.status == 400, reply.body
    assert reply.json()["code"] == 3
    assert violated_fields(reply) == fields


async def documented_list(api: Api) -> None:
    """The document's example invoice INV-2026-0042 (created 2026-02-01, the newest) and 11
    older ones issued in January 2026: the list's 12."""
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 11, issue_date=date(2026, 1, 15), created_from=utc(2026, 1, 15))
        await make_invoice(
            s,
            api.tenant_id,
            invoice_number="INV-2026-0042",
            billing_type="subscription",
            status="paid",
            currency="USD",
            sub_total_minor=9900,
            issue_date=date(2026, 2, 1),
            created_at=utc(2026, 2, 1),
        )


async def invoices_of_each_billing_type(api: Api) -> dict[str, str]:
    """One invoice per documented billing type, each with its own total and creation time
    (in the order of DOCUMENTED_BILLING_TYPES); billing type -> invoice number."""
    numbers = {}
    async with api.db.write() as s:
        for i, billing_type in enumerate(DOCUMENTED_BILLING_TYPES):
            invoice = await make_invoice(
                s,
                api.tenant_id,
                billing_type=billing_type,
                status="paid" if i % 2 else "sent",
                sub_total_minor=1000 * (5 - i),
                created_at=utc(2026, 3, 1 + i),
            )
            numbers[billing_type] = invoice.invoice_number
    return numbers


async def numbers_listed(gateway: Gateway, api: Api, query: str) -> list[str]:
    reply = await gateway.request("GET", f"{BASE}?{query}", key=api.key)
    assert reply.status == 200, reply.body
    return [item["invoice_number"] for item in reply.json()["data"]]


# --- List Invoices: GET /invoice-receipts ---------------------------------------------------


async def test_seed_000_list_answers_the_documented_response(gateway: Gateway, api: Api) -> None:
    await documented_list(api)
    reply = await gateway.request("GET", BASE, key=api.key)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert set(body) == {"data", "pagination", "filters_applied"}
    assert len(body["data"]) == 12
    assert body["data"][0] == DOCUMENTED_LIST_ITEM  # newest first: sort created_at, dir desc
    assert all(set(item) == set(DOCUMENTED_LIST_ITEM) for item in body["data"])
    assert body["pagination"] == DOCUMENTED_PAGINATION
    assert body["filters_applied"] == DOCUMENTED_FILTERS_APPLIED


async def test_seed_000_list_for_a_period_as_the_use_case_shows(gateway: Gateway, api: Api) -> None:
    await documented_list(api)
    # "List all invoices for a period: GET /invoice-receipts?start_date=2026-01-01&end_date=2026-01-31"
    reply = await gateway.request("GET", f"{BASE}?start_date=2026-01-01&end_date=2026-01-31", key=api.key)
    body = reply.json()
    assert len(body["data"]) == 11
    assert "INV-2026-0042" not in [item["invoice_number"] for item in body["data"]]
    assert body["pagination"] == {"current_page": 1, "per_page": 50, "total": 11, "last_page": 1}
    assert body["filters_applied"] == DOCUMENTED_FILTERS_APPLIED | {
        "start_date": "2026-01-01",
        "end_date": "2026-01-31",
    }


async def test_seed_000_list_filters_by_each_documented_billing_type(gateway: Gateway, api: Api) -> None:
    numbers = await invoices_of_each_billing_type(api)
    for billing_type, number in numbers.items():
        reply = await gateway.request("GET", f"{BASE}?type={billing_type}", key=api.key)
        assert [item["invoice_number"] for item in reply.json()["data"]] == [number]
        assert reply.json()["filters_applied"]["type"] == billing_type


async def test_seed_000_list_filters_by_status(gateway: Gateway, api: Api) -> None:
    numbers = await invoices_of_each_billing_type(api)
    reply = await gateway.request("GET", f"{BASE}?status=paid", key=api.key)
    assert [item["invoice_number"] for item in reply.json()["data"]] == [numbers["free_trial"], numbers["token_pack"]]
    assert {item["status"] for item in reply.json()["data"]} == {"paid"}
    assert reply.json()["filters_applied"] == DOCUMENTED_FILTERS_APPLIED | {"status": "paid"}


async def test_seed_000_list_sorts_by_each_documented_column_and_direction(gateway: Gateway, api: Api) -> None:
    numbers = await invoices_of_each_billing_type(api)
    by_creation = [numbers[t] for t in DOCUMENTED_BILLING_TYPES]  # created in this order
    assert await numbers_listed(gateway, api, "") == by_creation[::-1]
    assert await numbers_listed(gateway, api, "sort=created_at&dir=asc") == by_creation
    # Totals fall in creation order: 50, 40, 30, 20, 10.
    assert await numbers_listed(gateway, api, "sort=total_amount&dir=asc") == by_creation[::-1]
    assert await numbers_listed(gateway, api, "sort=total_amount") == by_creation
    by_name = [numbers[t] for t in sorted(DOCUMENTED_BILLING_TYPES)]
    assert await numbers_listed(gateway, api, "sort=billing_type&dir=asc") == by_name
    assert await numbers_listed(gateway, api, "sort=billing_type&dir=desc") == by_name[::-1]
    reply = await gateway.request("GET", f"{BASE}?sort=total_amount&dir=asc", key=api.key)
    assert reply.json()["filters_applied"] == DOCUMENTED_FILTERS_APPLIED | {"sort": "total_amount", "dir": "asc"}


async def test_seed_000_list_pages_with_per_page_and_page(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", f"{BASE}?sort=total_amount&dir=asc&per_page=1&page=2", key=api.key)
    body = reply.json()
    assert [i["total_amount"] for i in body["data"]] == [150]
    assert body["pagination"] == {"current_page": 2, "per_page": 1, "total": 2, "last_page": 2}
    beyond = await gateway.request("GET", f"{BASE}?per_page=1&page=3", key=api.key)
    assert beyond.json()["data"] == []
    assert beyond.json()["pagination"] == {"current_page": 3, "per_page": 1, "total": 2, "last_page": 2}
    empty = await gateway.request("GET", f"{BASE}?type=demo", key=api.key)
    assert empty.json()["pagination"] == {"current_page": 1, "per_page": 50, "total": 0, "last_page": 1}


async def test_seed_000_list_per_page_is_at_most_200(gateway: Gateway, api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 201)
    most = await gateway.request("GET", f"{BASE}?per_page=200", key=api.key)
    assert len(most.json()["data"]) == 200
    assert most.json()["pagination"] == {"current_page": 1, "per_page": 200, "total": 201, "last_page": 2}
    default = await gateway.request("GET", BASE, key=api.key)
    assert len(default.json()["data"]) == 50
    assert default.json()["pagination"]["last_page"] == 5
    for per_page in (201, 0, -1):
        assert_violations(await gateway.request("GET", f"{BASE}?per_page={per_page}", key=api.key), ["per_page"])


async def test_seed_000_list_reports_every_bad_parameter(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request(
        "GET",
        f"{BASE}?type=gift&status=lost&start_date=2024-13-01&sort=colour&dir=up&per_page=500&page=0",
        key=api.key,
    )
    assert_violations(reply, ["type", "status", "start_date", "sort", "dir", "per_page", "page"])
    assert "subscription, token_pack, marketplace_usage, free_trial, demo" in reply.json()["message"]


async def test_seed_000_list_end_date_before_start_date_is_400(gateway: Gateway, api: Api) -> None:
    reply = await gateway.request("GET", f"{BASE}?start_date=2026-01-31&end_date=2026-01-01", key=api.key)
    assert_violations(reply, ["end_date"])


async def test_seed_000_list_rejects_unknown_and_mistyped_parameters(gateway: Gateway, api: Api) -> None:
    unknown = await gateway.request("GET", f"{BASE}?colour=red", key=api.key)
    assert unknown.status == 400
    assert unknown.json()["code"] == 3
    mistyped = await gateway.request("GET", f"{BASE}?per_page=fifty", key=api.key)
    assert mistyped.status == 400
    assert "per_page" in mistyped.json()["message"]


async def test_seed_000_every_path_needs_the_bearer_token(gateway: Gateway) -> None:
    for method, path in (
        ("GET", BASE),
        ("GET", f"{BASE}/INV-2026-0042"),
        ("GET", f"{BASE}/summary"),
        ("GET", f"{BASE}/export/csv"),
        ("GET", f"{BASE}/export/json"),
        ("POST", f"{BASE}/generate-marketplace"),
        ("POST", f"{BASE}/backfill"),
    ):
        reply = await gateway.request(method, path, body={} if method == "POST" else None)
        assert reply.status == 401, path
        assert reply.json()["code"] == 16


# --- Get Single Invoice: GET /invoice-receipts/{invoiceNumber} ------------------------------


async def test_seed_000_get_the_documented_invoice_number(gateway: Gateway, api: Api) -> None:
    await documented_list(api)
    reply = await gateway.request("GET", f"{BASE}/INV-2026-0042", key=api.key)
    assert reply.status == 200
    assert reply.json() == {"data": DOCUMENTED_LIST_ITEM}


async def test_seed_000_unknown_or_foreign_invoice_number_is_404(gateway: Gateway, api: Api, other_api: Api) -> None:
    await documented_list(api)
    missing = await gateway.request("GET", f"{BASE}/INV-2026-0999", key=api.key)
    assert missing.status == 404
    assert missing.json()["code"] == 5
    foreign = await gateway.request("GET", f"{BASE}/INV-2026-0042", key=other_api.key)
    assert foreign.status == 404


# --- Invoice Summary: GET /invoice-receipts/summary -----------------------------------------


async def test_seed_000_summary_totals_per_currency_type_and_status(gateway: Gateway, api: Api) -> None:
    await two_imported_invoices(gateway, api)
    reply = await gateway.request("GET", f"{BASE}/summary", key=api.key)
    assert reply.status == 200
    data = reply.json()["data"]
    assert data["invoice_count"] == 2
    assert data["totals"] == [
        {
            "currency": "USD",
            "invoice_count": 2,
            "total_amount": 249,
            "tax_amount": 0,
            "paid_amount": 0,
            "outstanding_amount": 249,
        }
    ]
    assert [(t["billing_type"], t["total_amount"]) for t in data["by_billing_type"]] == [
        ("one-time", 150),
        ("subscription", 99),
    ]
    assert [(t["status"], t["invoice_count"]) for t in data["by_status"]] == [("sent", 2)]
    assert reply.json()["filters_applied"] == {"start_date": None, "end_date": None}


async def test_seed_000_summary_for_a_date_range_never_adds_currencies(gateway: Gateway, api: Api) -> None:
    await documented_list(api)  # 11 × 99.00 USD in January, INV-2026-0042 in February
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, currency="EUR", sub_total_minor=4200, issue_date=date(2026, 1, 20))
    reply = await gateway.request("GET", f"{BASE}/summary?start_date=2026-01-01&end_date=2026-01-31", key=api.key)
    data = reply.json()["data"]
    assert data["invoice_count"] == 12
    assert [(t["currency"], t["invoice_count"], t["total_amount"]) for t in data["totals"]] == [
        ("EUR", 1, 42),
        ("USD", 11, 1089),
    ]
    assert reply.json()["filters_applied"] == {"start_date": "2026-01-01", "end_date": "2026-01-31"}


async def test_seed_000_summary_rejects_bad_dates(gateway: Gateway, api: Api) -> None:
    bad = await gateway.request("GET", f"{BASE}/summary?start_date=2026-02-30", key=api.key)
    assert_violations(bad, ["start_date"])
    backwards = await gateway.request("GET", f"{BASE}/summary?start_date=2026-02-01&end_date=2026-01-01", key=api.key)
    assert_violations(backwards, ["end_date"])


# --- Export CSV / Export JSON: GET /invoice-receipts/export/{csv,json} ----------------------


async def invoices_with_lines(api: Api) -> tuple[str, str]:
    """A paid subscription invoice with two lines (2026-01-10) and a sent one-time invoice with
    none (2026-01-20); their numbers."""
    async with api.db.write() as s:
        with_lines = await make_invoice(
            s,
            api.tenant_id,
            billing_type="subscription",
            status="paid",
            issue_date=date(2026, 1, 10),
            lines=[line("Pro plan", "1", 9900), line("Extra seats", "3", 1000)],
        )
        without_lines = await make_invoice(
            s, api.tenant_id, billing_type="one-time", sub_total_minor=15000, issue_date=date(2026, 1, 20)
        )
    return with_lines.invoice_number, without_lines.invoice_number


def assert_download(reply: Reply, content_type: str, extension: str) -> None:
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == content_type
    disposition = reply.headers["content-disposition"]
    assert re.fullmatch(rf'attachment; filename="invoices-\d{{8}}-\d{{6}}\.{extension}"', disposition), disposition
    assert "grpc-status" not in reply.headers


def csv_rows(reply: Reply) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(reply.body.decode())))


async def test_seed_000_export_csv_is_a_download_with_line_items_by_default(gateway: Gateway, api: Api) -> None:
    with_lines, without_lines = await invoices_with_lines(api)
    reply = await gateway.request("GET", f"{BASE}/export/csv", key=api.key)
    assert_download(reply, "text/csv; charset=utf-8", "csv")
    header = reply.body.decode().splitlines()[0].split(",")
    assert header[:2] == ["invoice_ref", "invoice_number"]
    assert {"total", "currency", "line_name", "line_quantity", "line_total"} <= set(header)
    rows = csv_rows(reply)
    # Newest first; one row per line, and one row for the invoice without lines.
    assert [(r["invoice_number"], r["line_name"], r["line_total"]) for r in rows] == [
        (without_lines, "", ""),
        (with_lines, "Pro plan", "99.00"),
        (with_lines, "Extra seats", "30.00"),
    ]


async def test_seed_000_export_csv_without_line_items(gateway: Gateway, api: Api) -> None:
    with_lines, without_lines = await invoices_with_lines(api)
    reply = await gateway.request("GET", f"{BASE}/export/csv?line_items=false", key=api.key)
    assert_download(reply, "text/csv; charset=utf-8", "csv")
    header = reply.body.decode().splitlines()[0]
    assert "line_" not in header
    assert [(r["invoice_number"], r["total"]) for r in csv_rows(reply)] == [
        (without_lines, "150.00"),
        (with_lines, "129.00"),
    ]


async def test_seed_000_export_takes_the_list_filters_and_sort(gateway: Gateway, api: Api) -> None:
    numbers = await invoices_of_each_billing_type(api)
    query = "type=token_pack&status=paid&start_date=2026-01-01&end_date=2026-12-31&line_items=false"
    only = await gateway.request("GET", f"{BASE}/export/csv?{query}", key=api.key)
    assert [r["invoice_number"] for r in csv_rows(only)] == [numbers["token_pack"]]
    ordered = await gateway.request("GET", f"{BASE}/export/json?sort=total_amount&dir=asc", key=api.key)
    assert [i["invoice_number"] for i in ordered.json()] == [numbers[t] for t in DOCUMENTED_BILLING_TYPES[::-1]]


async def test_seed_000_export_json_is_a_download_with_line_items_by_default(gateway: Gateway, api: Api) -> None:
    with_lines, without_lines = await invoices_with_lines(api)
    reply = await gateway.request("GET", f"{BASE}/export/json", key=api.key)
    assert_download(reply, "application/json", "json")
    exported = reply.json()
    assert [(i["invoice_number"], i["total"], i["currency"]) for i in exported] == [
        (without_lines, "150.00", "USD"),
        (with_lines, "129.00", "USD"),
    ]
    assert exported[0]["line_items"] == []
    assert [(li["name"], li["quantity"], li["total"]) for li in exported[1]["line_items"]] == [
        ("Pro plan", "1", "99.00"),
        ("Extra seats", "3", "30.00"),
    ]
    plain = await gateway.request("GET", f"{BASE}/export/json?line_items=false", key=api.key)
    assert all("line_items" not in i for i in plain.json())


async def test_seed_000_exports_stream_every_invoice(gateway: Gateway, api: Api) -> None:
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 1500)
    as_csv = await gateway.request("GET", f"{BASE}/export/csv?line_items=false", key=api.key)
    assert len(as_csv.body) > 64 * 1024  # more than one chunk
    assert len(csv_rows(as_csv)) == 1500
    as_json = await gateway.request("GET", f"{BASE}/export/json", key=api.key)
    assert len(as_json.json()) == 1500


async def test_seed_000_export_of_nothing_is_a_header_row_or_an_empty_array(gateway: Gateway, api: Api) -> None:
    as_csv = await gateway.request("GET", f"{BASE}/export/csv", key=api.key)
    assert_download(as_csv, "text/csv; charset=utf-8", "csv")
    assert len(as_csv.body.decode().splitlines()) == 1
    as_json = await gateway.request("GET", f"{BASE}/export/json", key=api.key)
    assert as_json.json() == []


async def test_seed_000_export_bad_parameters_are_400_before_any_byte(gateway: Gateway, api: Api) -> None:
    xml = await gateway.request("GET", f"{BASE}/export/xml", key=api.key)
    assert_violations(xml, ["format"])
    assert "content-disposition" not in xml.headers
    bad = await gateway.request("GET", f"{BASE}/export/csv?type=gift&end_date=31-01-2026&sort=colour", key=api.key)
    assert_violations(bad, ["type", "end_date", "sort"])
    assert "content-disposition" not in bad.headers
    mistyped = await gateway.request("GET", f"{BASE}/export/json?line_items=perhaps", key=api.key)
    assert mistyped.status == 400


# --- Generate Marketplace Invoice: POST /invoice-receipts/generate-marketplace --------------


async def marketplace_seller(db: Database, channel: grpc.aio.Channel, *used_at: datetime) -> Api:
    """A tenant with a marketplace customer id and 1200 api_calls at 0.02 USD at each time."""
    seller = await new_api(db, channel, marketplace_customer_id="aws-cust-1")
    async with db.write() as s:
        for i, when in enumerate(used_at):
            s.add(
                m.UsageRecord(
                    tenant_id=seller.tenant_id,
                    external_id=f"use_{i}",
                    dimension="api_calls",
                    quantity="1200",
                    unit_price_minor=2,
                    currency="USD",
                    used_at=when,
                    fingerprint="arranged",
                )
            )
    return seller


def current_month() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


async def test_seed_000_generate_marketplace_is_201_with_location(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    seller = await marketplace_seller(db, channel, utc(2026, 2, 10))
    reply = await gateway.request(
        "POST",
        f"{BASE}/generate-marketplace",
        key=seller.key,
        body={"period_start": "2026-02-01", "period_end": "2026-02-28"},
    )
    assert reply.status == 201
    assert "x-http-status" not in reply.headers
    assert "grpc-status" not in reply.headers
    body = reply.json()
    (number,) = body["invoice_numbers"]
    assert reply.headers["location"] == f"{BASE}/{number}"
    assert body["message"] == "1 marketplace invoice(s) generated for 2026-02-01 to 2026-02-28"
    assert (body["count"], body["period_start"], body["period_end"]) == (1, "2026-02-01", "2026-02-28")
    (invoice,) = body["data"]
    assert (invoice["invoice_number"], invoice["billing_type"], invoice["status"]) == (
        number,
        "marketplace_usage",
        "sent",
    )
    assert (invoice["total_amount"], invoice["currency"]) == (24, "USD")
    located = await gateway.request("GET", reply.headers["location"], key=seller.key)
    assert located.json() == {"data": invoice}


async def test_seed_000_generate_marketplace_period_defaults_to_the_current_month(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    month_start, month_end = current_month()
    seller = await marketplace_seller(db, channel, datetime.combine(month_start, time(), tzinfo=UTC))
    reply = await gateway.request("POST", f"{BASE}/generate-marketplace", key=seller.key)
    assert reply.status == 201, reply.body
    period = (month_start.isoformat(), month_end.isoformat())
    assert (reply.json()["period_start"], reply.json()["period_end"]) == period
    assert reply.json()["count"] == 1
    # An empty JSON body means the same period, now billed: nothing is left to bill in it.
    again = await gateway.request("POST", f"{BASE}/generate-marketplace", key=seller.key, body={})
    assert again.status == 400
    assert again.json()["code"] == 9  # FAILED_PRECONDITION
    assert f"from {period[0]} to {period[1]}" in again.json()["message"]


async def test_seed_000_generate_marketplace_period_end_defaults_to_the_end_of_the_current_month(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    month_start, month_end = current_month()
    last_month_start = (month_start - timedelta(days=1)).replace(day=1)
    seller = await marketplace_seller(
        db,
        channel,
        datetime.combine(last_month_start, time(), tzinfo=UTC),
        datetime.combine(month_start, time(), tzinfo=UTC),
    )
    reply = await gateway.request(
        "POST", f"{BASE}/generate-marketplace", key=seller.key, body={"period_start": last_month_start.isoformat()}
    )
    assert reply.status == 201, reply.body
    body = reply.json()
    assert (body["period_start"], body["period_end"]) == (last_month_start.isoformat(), month_end.isoformat())
    assert body["data"][0]["total_amount"] == 48  # both months' usage


async def test_seed_000_generate_marketplace_takes_query_parameters_too(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    seller = await marketplace_seller(db, channel, utc(2026, 2, 10))
    path = f"{BASE}/generate-marketplace?period_start=2026-02-01&period_end=2026-02-28"
    reply = await gateway.request("POST", path, key=seller.key)
    assert reply.status == 201, reply.body
    assert reply.json()["count"] == 1


async def test_seed_000_generate_marketplace_without_marketplace_id_is_403(gateway: Gateway, api: Api) -> None:
    async with api.db.write() as s:
        s.add(
            m.UsageRecord(
                tenant_id=api.tenant_id,
                external_id="use_1",
                dimension="api_calls",
                quantity="1",
                unit_price_minor=2,
                currency="USD",
                used_at=datetime.now(UTC),
                fingerprint="arranged",
            )
        )
    for body in ({}, {"period_start": "not a date"}):
        reply = await gateway.request("POST", f"{BASE}/generate-marketplace", key=api.key, body=body)
        assert reply.status == 403
        assert reply.json()["code"] == 7
        assert "marketplace customer id" in reply.json()["message"]
    async with api.db.read() as s:
        assert await s.scalar(select(func.count()).where(m.Invoice.tenant_id == api.tenant_id)) == 0


async def test_seed_000_generate_marketplace_rejects_bad_periods(
    gateway: Gateway, db: Database, channel: grpc.aio.Channel
) -> None:
    seller = await marketplace_seller(db, channel)
    bad = await gateway.request(
        "POST", f"{BASE}/generate-marketplace", key=seller.key, body={"period_start": "2026-02-30"}
    )
    assert_violations(bad, ["period_start"])
    backwards = await gateway.request(
        "POST",
        f"{BASE}/generate-marketplace",
        key=seller.key,
        body={"period_start": "2026-03-01", "period_end": "2026-02-01"},
    )
    assert_violations(backwards, ["period_end"])


# --- Backfill Invoices: POST /invoice-receipts/backfill --------------------------------------


async def orders_without_invoices(api: Api, count: int, first_day: date = date(2026, 1, 1)) -> None:
    """`count` subscription orders of 99.00 USD, one a day from `first_day`, none invoiced."""
    async with api.db.write() as s:
        customer = await make_customer(s, api.tenant_id)
        s.add_all(
            m.Order(
                tenant_id=api.tenant_id,
                data_source_id=customer.data_source_id,
                external_id=f"ord_{i}",
                customer_id=customer.id,
                billing_type="subscription",
                ordered_at=datetime.combine(first_day + timedelta(days=i), time(9), tzinfo=UTC),
                amount_minor=9900,
                currency="USD",
                fingerprint="arranged",
            )
            for i in range(count)
        )


async def test_seed_000_backfill_answers_the_documented_response(gateway: Gateway, api: Api) -> None:
    # 34 invoices of 2026 exist, so the 8 backfilled ones are numbered from INV-2026-0035.
    async with api.db.write() as s:
        await make_invoices_bulk(s, api.tenant_id, 34, issue_date=date(2026, 1, 1))
    await orders_without_invoices(api, 8)
    # "Run backfill: POST /invoice-receipts/backfill with limit: 200"
    reply = await gateway.request("POST", f"{BASE}/backfill", key=api.key, body={"limit": 200})
    assert reply.status == 200
    assert reply.json() == {
        "message": "8 invoice(s) backfilled from existing orders",
        "count": 8,
        "invoice_numbers": [f"INV-2026-{n:04d}" for n in range(35, 43)],
    }
    # "Review the generated invoice numbers", then "Export the complete history".
    listed = await gateway.request("GET", f"{BASE}/INV-2026-0042", key=api.key)
    assert listed.json()["data"] | {"created_at": ""} == {
        "invoice_number": "INV-2026-0042",
        "billing_type": "subscription",
        "status": "paid",
        "total_amount": 99,
        "currency": "USD",
        "created_at": "",
    }
    history = await gateway.request("GET", f"{BASE}/export/csv", key=api.key)
    assert len({row["invoice_number"] for row in csv_rows(history)}) == 42


async def test_seed_000_backfill_limit_defaults_to_50(gateway: Gateway, api: Api) -> None:
    await orders_without_invoices(api, 51)
    first = await gateway.request("POST", f"{BASE}/backfill", key=api.key)
    assert (first.status, first.json()["count"], len(first.json()["invoice_numbers"])) == (200, 50, 50)
    rest = await gateway.request("POST", f"{BASE}/backfill", key=api.key, body={})
    assert rest.json()["count"] == 1
    done = await gateway.request("POST", f"{BASE}/backfill", key=api.key, body={})
    assert done.json() == {"message": "0 invoice(s) backfilled from existing orders", "count": 0, "invoice_numbers": []}


async def test_seed_000_backfill_takes_the_limit_as_a_query_parameter_too(gateway: Gateway, api: Api) -> None:
    await orders_without_invoices(api, 3)
    reply = await gateway.request("POST", f"{BASE}/backfill?limit=2", key=api.key)
    assert reply.json()["invoice_numbers"] == ["INV-2026-0001", "INV-2026-0002"]
    clash = await gateway.request("POST", f"{BASE}/backfill?limit=2", key=api.key, body={"limit": 1})
    assert clash.status == 400


async def test_seed_000_backfill_limit_is_1_to_200(gateway: Gateway, api: Api) -> None:
    await orders_without_invoices(api, 1)
    for limit in (0, 201, 500, -1):
        reply = await gateway.request("POST", f"{BASE}/backfill", key=api.key, body={"limit": limit})
        assert_violations(reply, ["limit"])
    async with api.db.read() as s:
        assert await s.scalar(select(func.count()).where(m.Invoice.tenant_id == api.tenant_id)) == 0


async def test_seed_000_backfill_invoices_only_this_tenants_orders(gateway: Gateway, api: Api, other_api: Api) -> None:
    await stripe_with_customers_and_plan(gateway, api)
    await orders_without_invoices(other_api, 2)
    reply = await gateway.request("POST", f"{BASE}/backfill", key=api.key, body={"limit": 200})
    assert reply.json()["count"] == 0
    theirs = await gateway.request("POST", f"{BASE}/backfill", key=other_api.key, body={"limit": 200})
    assert theirs.json()["count"] == 2
