"""invoice-rpc's Python client: the generated stubs (`invoice_rpc.v1`) behind bearer auth,
typed exceptions, retries of idempotent calls, pagers and file exports.

    from invoice_rpc_client import InvoiceRpcClient

    with InvoiceRpcClient("localhost:50051", api_key) as client:
        for invoice in client.iter_invoices():
            print(invoice.invoice_number)
"""

from invoice_rpc_client.aio import AsyncInvoiceRpcClient
from invoice_rpc_client.client import DEFAULT_TARGET, InvoiceRpcClient
from invoice_rpc_client.exceptions import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    InvoiceRpcError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    from_rpc_error,
)
from invoice_rpc_client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "DEFAULT_TARGET",
    "NO_RETRY",
    "Aborted",
    "AlreadyExists",
    "AsyncInvoiceRpcClient",
    "Cancelled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "InvoiceRpcClient",
    "InvoiceRpcError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "RetryPolicy",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "from_rpc_error",
]
