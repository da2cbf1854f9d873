"""`invoice-rpc-client`: a first call to try, from a shell.

    invoice-rpc-client --key KEY list --page-size 20 --status sent
    invoice-rpc-client get INV-2026-0001
    invoice-rpc-client export --format csv --out invoices.csv
    invoice-rpc-client summary

The key comes from `--key` or INVOICE_RPC_API_KEY. Errors print `CODE: message` (and each bad
field) on stderr and exit with status 1; a missing key exits with status 2.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from google.protobuf import json_format
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2

from invoice_rpc_client.client import DEFAULT_TARGET, InvoiceRpcClient
from invoice_rpc_client.exceptions import InvoiceRpcError

API_KEY_ENV = "INVOICE_RPC_API_KEY"

STATUSES = {name.removeprefix("INVOICE_STATUS_").lower(): value for name, value in resources_pb2.InvoiceStatus.items()}
STATUSES.pop("unspecified")

# ISO 4217 currencies whose minor unit is not the cent; every other code has two decimals.
_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV"), 0
    ),
    **dict.fromkeys(("XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def format_money(amount_minor: int, currency_code: str) -> str:
    """`12345, "EUR"` → `123.45 EUR`, exactly (no floats)."""
    exponent = _EXPONENTS.get(currency_code, 2)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10**exponent)
    text = f"{sign}{units}" + (f".{minor:0{exponent}d}" if exponent else "")
    return f"{text} {currency_code}".strip()


def _enum_name(enum: object, value: int, prefix: str) -> str:
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def _date(value: object) -> str:
    year, month, day = (getattr(value, f) for f in ("year", "month", "day"))
    return f"{year:04d}-{month:02d}-{day:02d}" if year else ""


def write_table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def invoice_row(invoice: resources_pb2.Invoice) -> list[str]:
    return [
        invoice.invoice_number,
        _enum_name(resources_pb2.InvoiceStatus, invoice.status, "INVOICE_STATUS_"),
        _enum_name(resources_pb2.BillingType, invoice.billing_type, "BILLING_TYPE_"),
        _date(invoice.issue_date),
        invoice.customer.name,
        format_money(invoice.total_minor, invoice.currency_code),
        format_money(invoice.amount_remaining_minor, invoice.currency_code),
    ]


INVOICE_HEADER = ["NUMBER", "STATUS", "BILLING TYPE", "ISSUED", "CUSTOMER", "TOTAL", "REMAINING"]


def _list(client: InvoiceRpcClient, args: argparse.Namespace, out: TextIO) -> None:
    invoice_filter = isvc.InvoiceFilter(statuses=[STATUSES[s] for s in args.status or ()])
    invoices = client.iter_invoices(invoice_filter, page_size=args.page_size)
    # --limit 0 lists everything, page after page.
    shown = itertools.islice(invoices, args.limit) if args.limit else invoices
    rows = [invoice_row(invoice) for invoice in shown]
    write_table([INVOICE_HEADER, *rows], out)


def _get(client: InvoiceRpcClient, args: argparse.Namespace, out: TextIO) -> None:
    invoice = client.get_invoice(args.number)
    out.write(json_format.MessageToJson(invoice, indent=2) + "\n")


def _export(client: InvoiceRpcClient, args: argparse.Namespace, out: TextIO) -> None:
    written = client.export_to_file(args.out, args.format, progress=not args.no_progress)
    out.write(f"{written} bytes written to {args.out}\n")


def _summary(client: InvoiceRpcClient, args: argparse.Namespace, out: TextIO) -> None:
    summary = client.summarize_invoices()
    out.write(f"{summary.invoice_count} invoices\n")
    if not summary.currencies:
        return
    rows = [["CURRENCY", "INVOICES", "TOTAL", "TAX", "PAID", "OUTSTANDING"]]
    for totals in summary.currencies:
        code = totals.currency_code
        rows.append(
            [
                code,
                str(totals.invoice_count),
                *(
                    format_money(amount, code)
                    for amount in (totals.total_minor, totals.tax_minor, totals.paid_minor, totals.outstanding_minor)
                ),
            ]
        )
    write_table(rows, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invoice-rpc-client", description="Call an invoice-rpc server.")
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"host:port of the server (default {DEFAULT_TARGET})")
    parser.add_argument("--key", default=os.environ.get(API_KEY_ENV, ""), help=f"API key (default ${API_KEY_ENV})")
    parser.add_argument("--secure", action="store_true", help="use TLS")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call attempt (default 30)")
    commands = parser.add_subparsers(dest="command", required=True)

    list_cmd = commands.add_parser("list", help="list invoices, newest first")
    list_cmd.add_argument("--page-size", type=int, default=50, help="invoices fetched per page (1-200, default 50)")
    list_cmd.add_argument("--limit", type=int, default=50, help="invoices shown (default 50; 0 = all)")
    list_cmd.add_argument("--status", action="append", choices=sorted(STATUSES), help="only this status (repeatable)")
    list_cmd.set_defaults(run=_list)

    get_cmd = commands.add_parser("get", help="one invoice with its lines, as JSON")
    get_cmd.add_argument("number", help="invoice number, e.g. INV-2026-0001")
    get_cmd.set_defaults(run=_get)

    export_cmd = commands.add_parser("export", help="export invoices to a file")
    export_cmd.add_argument("--format", choices=["csv", "json"], default="csv")
    export_cmd.add_argument("--out", required=True, help="file to write (replaced only when complete)")
    export_cmd.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    export_cmd.set_defaults(run=_export)

    summary_cmd = commands.add_parser("summary", help="counts and totals per currency")
    summary_cmd.set_defaults(run=_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.key:
        sys.stderr.write(f"invoice-rpc-client: no API key: pass --key or set {API_KEY_ENV}\n")
        return 2
    with InvoiceRpcClient(args.target, args.key, secure=args.secure, timeout=args.timeout) as client:
        try:
            args.run(client, args, sys.stdout)
        except InvoiceRpcError as error:
            sys.stderr.write(f"invoice-rpc-client: {error}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
