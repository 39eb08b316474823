"""Brokkr's Python client: typed, async and sync, on httpx, using the shared wire types.

Imports only ``brokkr.common``; the agent and the CLI talk to the broker through it.
"""

from brokkr.client.client import AsyncBrokkrClient, BrokkrClient
from brokkr.client.errors import (
    BadRequest,
    BrokkrAPIError,
    BrokkrCertificateError,
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
from brokkr.client.http import Retry
from brokkr.client.resources.agents import TargetState

__all__ = [
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
