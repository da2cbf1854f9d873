"""Proto -> domain for the read requests' shared parts: InvoiceFilter, sort and view.

Shape problems (not a UUID, impossible date, unknown or UNSPECIFIED enum value) are added to
the caller's ViolationCollector under the request's field path, so that they are reported
together with the service layer's own checks.
"""

from __future__ import annotations

import uuid

from invoice_rpc.v1 import invoice_service_pb2 as isvc

from invoice_rpc.domain import enums
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.rpc.convert import BILLING_TYPE_FROM_PB, STATUS_FROM_PB, optional_date_from_pb
from invoice_rpc.service.invoice_queries import InvoiceQuery, InvoiceSort

SORT_FIELD_FROM_PB: dict[int, enums.SortField] = {
    isvc.INVOICE_SORT_FIELD_UNSPECIFIED: enums.SortField.CREATED_AT,
    isvc.INVOICE_SORT_FIELD_CREATE_TIME: enums.SortField.CREATED_AT,
    isvc.INVOICE_SORT_FIELD_ISSUE_DATE: enums.SortField.ISSUE_DATE,
    isvc.INVOICE_SORT_FIELD_BILLING_TYPE: enums.SortField.BILLING_TYPE,
    isvc.INVOICE_SORT_FIELD_TOTAL_AMOUNT: enums.SortField.TOTAL_AMOUNT,
    isvc.INVOICE_SORT_FIELD_INVOICE_NUMBER: enums.SortField.INVOICE_NUMBER,
}
SORT_DIRECTION_FROM_PB: dict[int, enums.SortDirection] = {
    isvc.SORT_DIRECTION_UNSPECIFIED: enums.SortDirection.DESC,
    isvc.SORT_DIRECTION_ASC: enums.SortDirection.ASC,
    isvc.SORT_DIRECTION_DESC: enums.SortDirection.DESC,
}
DATE_FIELD_FROM_PB: dict[int, enums.DateField] = {
    isvc.DATE_FIELD_UNSPECIFIED: enums.DateField.ISSUE_DATE,
    isvc.DATE_FIELD_ISSUE_DATE: enums.DateField.ISSUE_DATE,
    isvc.DATE_FIELD_CREATE_TIME: enums.DateField.CREATED_AT,
}


def _uuid(text: str, field: str, violations: ViolationCollector) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        violations.add(field, f"{text!r} is not a UUID")
        return None


def query_from_pb(message: isvc.InvoiceFilter, violations: ViolationCollector, prefix: str = "filter") -> InvoiceQuery:
    """The filter as an InvoiceQuery, its shape problems added to `violations`; the service's
    own rules (`InvoiceQuery.check`) are checked by the caller."""
    billing_types = []
    for i, value in enumerate(message.billing_types):
        if value in BILLING_TYPE_FROM_PB:
            billing_types.append(BILLING_TYPE_FROM_PB[value])
        else:
            violations.add(f"{prefix}.billing_types[{i}]", "must be a known billing type, not UNSPECIFIED")
    statuses = []
    for i, status in enumerate(message.statuses):
        if status in STATUS_FROM_PB:
            statuses.append(STATUS_FROM_PB[status])
        else:
            violations.add(f"{prefix}.statuses[{i}]", "must be a known status, not UNSPECIFIED")
    customer_refs = [_uuid(v, f"{prefix}.customer_refs[{i}]", violations) for i, v in enumerate(message.customer_refs)]
    contract_refs = [_uuid(v, f"{prefix}.contract_refs[{i}]", violations) for i, v in enumerate(message.contract_refs)]
    data_source_id = None
    if message.data_source_id:
        data_source_id = _uuid(message.data_source_id, f"{prefix}.data_source_id", violations)
    date_field = DATE_FIELD_FROM_PB.get(message.date_field)
    if date_field is None:
        violations.add(f"{prefix}.date_field", f"unknown value {message.date_field}")
    return InvoiceQuery(
        billing_types=tuple(billing_types),
        statuses=tuple(statuses),
        customer_refs=tuple(r for r in customer_refs if r is not None),
        contract_refs=tuple(r for r in contract_refs if r is not None),
        issuer_company_id=message.issuer_company_id or None,
        receiver_company_id=message.receiver_company_id or None,
        data_source_id=data_source_id,
        currency=message.currency_code or None,
        date_field=date_field or enums.DateField.ISSUE_DATE,
        start_date=optional_date_from_pb(message, "start_date", f"{prefix}.start_date", violations),
        end_date=optional_date_from_pb(message, "end_date", f"{prefix}.end_date", violations),
    )


def sort_from_pb(sort_field: int, sort_direction: int, violations: ViolationCollector) -> InvoiceSort:
    field = SORT_FIELD_FROM_PB.get(sort_field)
    if field is None:
        violations.add("sort_field", f"unknown value {sort_field}")
    direction = SORT_DIRECTION_FROM_PB.get(sort_direction)
    if direction is None:
        violations.add("sort_direction", f"unknown value {sort_direction}")
    return InvoiceSort(field=field or enums.SortField.CREATED_AT, direction=direction or enums.SortDirection.DESC)


def with_line_items(view: int, violations: ViolationCollector, *, default_full: bool) -> bool:
    """Whether the view asks for line items; UNSPECIFIED takes the rpc's default."""
    if view == isvc.INVOICE_VIEW_UNSPECIFIED:
        return default_full
    if view not in (isvc.INVOICE_VIEW_BASIC, isvc.INVOICE_VIEW_FULL):
        violations.add("view", f"unknown value {view}")
    return view == isvc.INVOICE_VIEW_FULL
