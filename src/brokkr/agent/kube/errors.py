"""The one place lightkube and httpx errors become agent errors.

Every failure the agent reports carries the API server's own message and reason (what a user
needs to fix a manifest); 429, 5xx-unavailable and timeouts are marked retryable so the
reconcile retries them within an attempt instead of failing the deployment object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx2
from lightkube.core.exceptions import ApiError

# Answers that say "try again" rather than "this request is wrong" (as kube's client-go).
_RETRYABLE_CODES = frozenset({429, 500, 502, 503, 504})
_RETRYABLE_REASONS = frozenset({"ServerTimeout", "ServiceUnavailable", "InternalError", "Timeout"})


class KubeError(Exception):
    """A Kubernetes API call failed; ``str()`` is the text reported to the user."""

    def __init__(
        self, message: str, *, code: int | None = None, reason: str = "", retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.retryable = retryable

    @property
    def not_found(self) -> bool:
        return self.code == 404


def from_status(code: int, status: Mapping[str, Any], *, fallback: str = "") -> KubeError:
    """From a Status body (``reason``, ``message``) and the HTTP status code."""
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or fallback or f"HTTP {code}")
    retryable = code in _RETRYABLE_CODES or reason in _RETRYABLE_REASONS
    text = f"{reason}: {message}" if reason else message
    return KubeError(text, code=code, reason=reason, retryable=retryable)


def translate(exc: Exception) -> KubeError:
    if isinstance(exc, ApiError):
        status = exc.status
        code = status.code or exc.response.status_code
        return from_status(code, {"reason": status.reason, "message": status.message})
    if isinstance(exc, httpx2.HTTPStatusError):
        # A non-JSON error body (a proxy in front of the API server, say).
        code = exc.response.status_code
        return from_status(code, {}, fallback=exc.response.text[:200] or f"HTTP {code}")
    if isinstance(exc, httpx2.TimeoutException):
        return KubeError(f"Kubernetes API timed out: {exc!r}", reason="Timeout", retryable=True)
    # Connection refused or reset: the API server restarting, usually transient.
    return KubeError(f"Kubernetes API unreachable: {exc!r}", retryable=True)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise lightkube/httpx errors of the block as ``KubeError``."""
    try:
        yield
    except (ApiError, httpx2.HTTPError) as exc:
        raise translate(exc) from exc
