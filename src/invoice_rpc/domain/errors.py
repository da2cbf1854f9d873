"""Errors the service layer raises; the rpc edge maps each class to one status code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: `field` is its path in the request (e.g. "invoice.line_items[2].quantity")."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error the service layer raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed; every bad field is listed, and nothing was written."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(DomainError):
    """The named thing does not exist for this tenant (another tenant's is also not found)."""


class AlreadyExists(DomainError):
    """Creating the thing would duplicate one that exists."""


class FailedPrecondition(DomainError):
    """The request is well formed but the system's state does not allow it."""


class PermissionDenied(DomainError):
    """The caller's tenant may not do this."""


class Unauthenticated(DomainError):
    """No valid API key."""


class Aborted(DomainError):
    """A concurrent change conflicted; the caller may retry."""


class ViolationCollector:
    """Collects field violations so that a request reports all of them at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)
