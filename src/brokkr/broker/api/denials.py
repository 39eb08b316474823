"""Denied writes reach the audit trail (D11): an ``after_exception`` hook, because a refusal is
raised wherever the rule lives, and the record is written by the audit service."""

from __future__ import annotations

import logging
from typing import Any

from brokkr.broker import services
from brokkr.broker.domain import access, audit, errors

log = logging.getLogger(__name__)

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


async def record(exc: Exception, scope: Any) -> None:
    """Audit ``exc`` when it refused an authenticated caller a write; never fail the request."""
    if not isinstance(exc, errors.BrokerError) or not exc.denial:
        return
    if scope.get("type") != "http" or scope.get("method") not in _WRITES:
        return
    caller = (scope.get("state") or {}).get("caller")
    # No caller: authentication itself failed, which is audited as auth.failed.
    if not isinstance(caller, access.Caller):
        return
    route = str(scope.get("path_template") or scope["path"])
    resource_type, resource_id = audit.resource_of(route, scope.get("path_params") or {})
    try:
        await services.audit.record_denial(
            scope["litestar_app"].state.ctx,
            caller=caller,
            code=exc.code,
            method=scope["method"],
            route=route,
            path=scope["path"],
            resource_type=resource_type,
            resource_id=resource_id,
        )
    except Exception:  # noqa: BLE001 - the caller gets its refusal whatever the audit store does
        log.warning("could not audit a denied %s %s", scope["method"], route, exc_info=True)
