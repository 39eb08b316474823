"""Webhook signatures (D18): ``X-Brokkr-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.

The one definition the broker (signing), the agent (forwarding), the docs' receiver and the
tests share. The HMAC covers the request body exactly as sent.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Brokkr-Signature"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``body``'s signature under ``secret`` (constant-time compare)."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())
