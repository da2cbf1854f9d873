"""Opaque keyset cursors: base64url of a small JSON object, for `next_page_token` fields.

A token is not a secret and not signed: it only says where the previous page ended. Whatever
it claims is checked against the request it comes back with (same sort, same filter hash), and
its values are only ever bound as parameters, so a forged token can at worst skip ahead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from invoice_rpc.domain.errors import InvalidArgument


def encode_page_token(payload: dict[str, Any]) -> str:
    """The payload as a URL-safe token without padding."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, field: str = "page_token") -> dict[str, Any]:
    """The payload of a token made by `encode_page_token`; InvalidArgument naming `field` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument.single(field, "is not a page token this service issued") from exc
    if not isinstance(payload, dict):
        raise InvalidArgument.single(field, "is not a page token this service issued")
    return payload


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-serializable value, to tie a token to its request."""
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
