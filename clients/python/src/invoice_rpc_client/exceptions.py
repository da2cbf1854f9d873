"""Typed exceptions for failed calls, one class per gRPC status code.

`from_rpc_error` turns a `grpc.RpcError` (sync or asyncio) into the matching subclass of
`InvoiceRpcError`, decoding the rich `google.rpc.Status` the server sends: the
`google.rpc.BadRequest` field violations (for `InvalidArgument`) and the `google.rpc.ErrorInfo`
(reason and the server's request id). The original error stays reachable as `__cause__`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its proto path (e.g. `invoice.line_items[1].quantity`) and why."""

    field: str
    description: str


class InvoiceRpcError(Exception):
    """A call that ended with a non-OK status. Subclasses name the status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        field_violations: tuple[FieldViolation, ...] = (),
        reason: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field_violations = field_violations
        # ErrorInfo.reason, e.g. "NOT_FOUND" or "FAILED_PRECONDITION"; empty when not sent.
        self.reason = reason
        # The server's request id, to quote when reporting a problem; empty when not sent.
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.field_violations:
            text += " (" + "; ".join(f"{v.field}: {v.description}" for v in self.field_violations) + ")"
        return text


class Cancelled(InvoiceRpcError):
    code = grpc.StatusCode.CANCELLED


class Unknown(InvoiceRpcError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(InvoiceRpcError):
    """Bad input; `field_violations` names every bad field. Nothing was changed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(InvoiceRpcError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(InvoiceRpcError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(InvoiceRpcError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(InvoiceRpcError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(InvoiceRpcError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(InvoiceRpcError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(InvoiceRpcError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(InvoiceRpcError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(InvoiceRpcError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(InvoiceRpcError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(InvoiceRpcError):
    """The server could not be reached (or is shutting down); safe to retry idempotent calls."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(InvoiceRpcError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(InvoiceRpcError):
    """Missing or unknown API key."""

    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[InvoiceRpcError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def exception_class_for(code: grpc.StatusCode) -> type[InvoiceRpcError]:
    """The exception class raised for a status code (`Unknown` for codes without one)."""
    return _BY_CODE.get(code, Unknown)


def from_rpc_error(error: grpc.RpcError) -> InvoiceRpcError:
    """The typed exception for a failed call, with the details of its rich status decoded."""
    call: Any = error  # sync and asyncio errors both implement grpc.Call / AioRpcError's accessors
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    status = _rich_status(call)
    violations: list[FieldViolation] = []
    reason = request_id = ""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            request_id = info.metadata.get("request_id", "")
    return exception_class_for(code)(message, field_violations=tuple(violations), reason=reason, request_id=request_id)


def _rich_status(call: Any) -> status_pb2.Status | None:
    try:
        return rpc_status.from_call(call)
    except (ValueError, TypeError):
        # A status that disagrees with its own details (e.g. set by a proxy): keep the plain code.
        return None
