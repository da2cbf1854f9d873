"""The one table from domain errors to gRPC status codes, and the rich status they carry."""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from invoice_rpc.domain import errors

ERROR_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Aborted: grpc.StatusCode.ABORTED,
}

ERROR_DOMAIN = "invoice-rpc"


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return grpc.StatusCode.INTERNAL


def rich_status(error: errors.DomainError, request_id: str) -> status_pb2.Status:
    """A google.rpc.Status for the error: BadRequest field violations for InvalidArgument,
    ErrorInfo (reason = the error class, the request id) for every error."""
    code = status_code_for(error)
    details: list[any_pb2.Any] = []
    if isinstance(error, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    details.append(
        _pack(
            error_details_pb2.ErrorInfo(reason=_reason(error), domain=ERROR_DOMAIN, metadata={"request_id": request_id})
        )
    )
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_status(request_id: str) -> status_pb2.Status:
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; request id {request_id}",
        details=[
            _pack(
                error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id})
            )
        ],
    )


def stream_limit_status(limit: int, tenant_id: uuid.UUID, request_id: str) -> status_pb2.Status:
    """RESOURCE_EXHAUSTED for a stream beyond the tenant's cap of `limit` concurrent ones: a
    QuotaFailure naming the tenant and an ErrorInfo (reason TOO_MANY_CONCURRENT_STREAMS)."""
    description = f"at most {limit} streams or exports of one tenant may run at once"
    return status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED,
        message=f"too many concurrent streams: {description}; retry when one has finished",
        details=[
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(subject=f"tenant:{tenant_id}", description=description)
                    ]
                )
            ),
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="TOO_MANY_CONCURRENT_STREAMS",
                    domain=ERROR_DOMAIN,
                    metadata={"request_id": request_id, "limit": str(limit)},
                )
            ),
        ],
    )


def _reason(error: errors.DomainError) -> str:
    name = type(error).__name__
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed
