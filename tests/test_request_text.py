"""The edge's NUL check (rpc/request_text.py): every string that holds U+0000 is named, wherever
it sits, and a request without one passes, whatever zero bytes its numbers put on the wire."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from invoice_rpc.v1 import data_import_face_pb2 as dpb
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as rpb

from invoice_rpc.rpc.request_text import NUL_DESCRIPTION, nul_violations


def _fields(message: Message) -> list[str]:
    violations = nul_violations(message)
    assert all(violation.description == NUL_DESCRIPTION for violation in violations)
    return [violation.field for violation in violations]


def _clean_import(index: int) -> ipb.InvoiceImport:
    # discount=0, an empty plan and quantity 0 put zero bytes on the wire: none is a NUL.
    return ipb.InvoiceImport(
        id=f"inv_{index}",
        customer_id="cus_1",
        data_source="ds",
        type="one-time",
        date="2025-01-01",
        amount_cents=1000,
        currency="USD",
        plan_id="",
        quantity=0,
        discount=0,
    )


def test_a_batch_without_nul_passes_although_its_wire_bytes_hold_zeros() -> None:
    request = ipb.BulkUpsertInvoicesRequest(invoices=[_clean_import(index) for index in range(50)])
    assert b"\x00" in request.SerializeToString()
    assert _fields(request) == []


def test_every_string_of_a_batch_with_nul_is_named_by_its_path() -> None:
    request = ipb.BulkUpsertInvoicesRequest(invoices=[_clean_import(index) for index in range(5)])
    request.invoices[1].plan_id = "plan\x00"
    request.invoices[3].customer_id = "\x00"
    request.invoices[3].end_date = "2025-\x0001"
    assert _fields(request) == ["invoices[1].plan_id", "invoices[3].customer_id", "invoices[3].end_date"]


@pytest.mark.parametrize(
    ("means", "expected"),
    [
        (dpb.DataPaymentMeansImport(id="pm_1", tags=["a", "b\x00"]), ["payment_means[0].tags[1]"]),
        (dpb.DataPaymentMeansImport(id="pm_1", metadata={"k": "v\x00"}), ["payment_means[0].metadata[k]"]),
        (dpb.DataPaymentMeansImport(id="pm_1", metadata={"k\x00": "v"}), ["payment_means[0].metadata[k\x00]"]),
        (
            dpb.DataPaymentMeansImport(id="pm_1", crypto_wallet=rpb.CryptoWallet(tokens=["t", "\x00"])),
            ["payment_means[0].crypto_wallet.tokens[1]"],
        ),
        (
            dpb.DataPaymentMeansImport(id="pm_1", crypto_wallet=rpb.CryptoWallet(address="0x\x00")),
            ["payment_means[0].crypto_wallet.address"],
        ),
        (dpb.DataPaymentMeansImport(id="pm_1", metadata={"k": "v"}, tags=["t"]), []),
    ],
    ids=["repeated-string", "map-value", "map-key", "nested-repeated", "nested-string", "clean-map-and-tags"],
)
def test_repeated_strings_maps_and_nested_messages(means: dpb.DataPaymentMeansImport, expected: list[str]) -> None:
    assert _fields(dpb.UpsertDataPaymentMeansRequest(payment_means=[means])) == expected


def test_json_values_are_named_as_the_json_is() -> None:
    quantity = struct_pb2.Value(string_value="1\x00")
    request = dpb.UpsertDataUsageRequest(
        usage_records=[
            dpb.DataUsageImport(id="u_1", quantity=struct_pb2.Value(number_value=0)),
            dpb.DataUsageImport(id="u_2", quantity=quantity),
        ]
    )
    assert _fields(request) == ["usage_records[1].quantity"]
