"""ListAuditEvents: an invoice's trail, oldest first, in keyset pages."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import grpc
import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc

from invoice_rpc.storage import models as m
from tests.conftest import Api
from tests.factories import make_invoice, utc, violated_fields


async def add_events(api: Api, invoice_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` events one second apart, returned oldest first."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with api.db.write() as s:
        for i, event_id in enumerate(ids):
            s.add(
                m.AuditEvent(
                    id=event_id,
                    tenant_id=api.tenant_id,
                    invoice_id=invoice_id,
                    action=f"invoice.step_{i}",
                    api_key_id=api.api_key_id,
                    request_id=f"req-{i}",
                    before={"status": "draft"},
                    after={"status": "sent", "step": i},
                    created_at=utc(2026, 1, 1) + timedelta(seconds=i),
                )
            )
    return ids


async def new_invoice(api: Api) -> uuid.UUID:
    async with api.db.write() as s:
        return (await make_invoice(s, api.tenant_id)).id


async def test_events_come_oldest_first_with_their_details(api: Api) -> None:
    invoice_id = await new_invoice(api)
    ids = await add_events(api, invoice_id, 3)

    reply = await api.invoices.ListAuditEvents(
        isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id)), metadata=api.metadata
    )

    assert [e.id for e in reply.audit_events] == [str(i) for i in ids]
    first = reply.audit_events[0]
    assert (first.invoice_ref, first.action, first.request_id) == (str(invoice_id), "invoice.step_0", "req-0")
    assert first.api_key_id == str(api.api_key_id)
    assert json.loads(first.before_json) == {"status": "draft"}
    assert json.loads(first.after_json) == {"status": "sent", "step": 0}
    assert first.create_time.ToJsonString() == "2026-01-01T00:00:00Z"
    assert reply.next_page_token == ""


async def test_pages_follow_each_other_without_gaps(api: Api) -> None:
    invoice_id = await new_invoice(api)
    ids = await add_events(api, invoice_id, 5)
    seen: list[str] = []
    token = ""

    for _ in range(3):
        reply = await api.invoices.ListAuditEvents(
            isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id), page_size=2, page_token=token),
            metadata=api.metadata,
        )
        seen += [e.id for e in reply.audit_events]
        token = reply.next_page_token

    assert seen == [str(i) for i in ids]
    assert token == ""


async def test_events_with_the_same_time_are_ordered_by_id_across_pages(api: Api) -> None:
    invoice_id = await new_invoice(api)
    ids = [uuid.uuid4() for _ in range(4)]
    async with api.db.write() as s:
        for event_id in ids:
            s.add(
                m.AuditEvent(
                    id=event_id, tenant_id=api.tenant_id, invoice_id=invoice_id, action="x", created_at=utc(2026, 1, 1)
                )
            )
    first = await api.invoices.ListAuditEvents(
        isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id), page_size=2), metadata=api.metadata
    )
    second = await api.invoices.ListAuditEvents(
        isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id), page_size=2, page_token=first.next_page_token),
        metadata=api.metadata,
    )

    assert [e.id for e in [*first.audit_events, *second.audit_events]] == [str(i) for i in sorted(ids)]


async def test_other_invoices_events_are_not_listed(api: Api) -> None:
    invoice_id = await new_invoice(api)
    other_id = await new_invoice(api)
    await add_events(api, other_id, 2)

    reply = await api.invoices.ListAuditEvents(
        isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id)), metadata=api.metadata
    )

    assert list(reply.audit_events) == []


async def test_unknown_invoice_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListAuditEvents(
            isvc.ListAuditEventsRequest(invoice_ref=str(uuid.uuid4())), metadata=api.metadata
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_tenants_invoice_is_not_found(api: Api, other_api: Api) -> None:
    invoice_id = await new_invoice(other_api)
    await add_events(other_api, invoice_id, 1)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListAuditEvents(
            isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id)), metadata=api.metadata
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_fields", "fields"),
    [
        ({"invoice_ref": ""}, ["invoice_ref"]),
        ({"invoice_ref": "nope"}, ["invoice_ref"]),
        ({"invoice_ref": str(uuid.uuid4()), "page_size": 201}, ["page_size"]),
        ({"invoice_ref": str(uuid.uuid4()), "page_token": "%%%"}, ["page_token"]),
    ],
)
async def test_bad_request_is_invalid_argument(api: Api, request_fields: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListAuditEvents(isvc.ListAuditEventsRequest(**request_fields), metadata=api.metadata)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == fields


async def test_token_of_another_invoice_is_invalid(api: Api) -> None:
    invoice_id = await new_invoice(api)
    other_id = await new_invoice(api)
    await add_events(api, invoice_id, 2)
    first = await api.invoices.ListAuditEvents(
        isvc.ListAuditEventsRequest(invoice_ref=str(invoice_id), page_size=1), metadata=api.metadata
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.invoices.ListAuditEvents(
            isvc.ListAuditEventsRequest(invoice_ref=str(other_id), page_token=first.next_page_token),
            metadata=api.metadata,
        )

    assert violated_fields(caught.value) == ["page_token"]
