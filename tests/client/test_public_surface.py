"""The public surface of ``brokkr.client``: the exact ``__all__``, every name importable, the
error hierarchy, and that importing the client loads nothing from ``brokkr.broker`` (it reaches
the broker only over HTTP)."""

from __future__ import annotations

import subprocess
import sys

import brokkr.client
from brokkr.client import (
    BadRequest,
    BrokkrAPIError,
    BrokkrConnectionError,
    BrokkrError,
    BrokkrTimeout,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    Unauthorized,
    ValidationFailed,
)

PUBLIC = [
    "AsyncBrokkrClient",
    "BadRequest",
    "BrokkrAPIError",
    "BrokkrCertificateError",
    "BrokkrClient",
    "BrokkrConnectionError",
    "BrokkrError",
    "BrokkrTimeout",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Retry",
    "ServerError",
    "TargetState",
    "Unauthorized",
    "ValidationFailed",
]


def test_all_is_pinned() -> None:
    assert brokkr.client.__all__ == PUBLIC


def test_every_public_name_is_importable() -> None:
    for name in PUBLIC:
        assert getattr(brokkr.client, name) is not None, name


def test_error_hierarchy() -> None:
    assert issubclass(BrokkrConnectionError, BrokkrError)
    assert issubclass(BrokkrTimeout, BrokkrConnectionError)
    assert issubclass(BrokkrAPIError, BrokkrError)
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        ValidationFailed,
        ServerError,
    ):
        assert issubclass(error, BrokkrAPIError), error
        assert not issubclass(error, BrokkrConnectionError), error


def test_importing_the_client_loads_nothing_from_the_broker() -> None:
    code = (
        "import brokkr.client, sys; print(any(m.startswith('brokkr.broker') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
