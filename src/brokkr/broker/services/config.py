"""Configuration reload (D20): re-read the file and environment, put the hot settings in force.

Used by ``POST /admin/config/reload`` and by SIGHUP. A configuration that fails validation
changes nothing; keys that only take effect at start are reported and keep their running value.
"""

from __future__ import annotations

from brokkr.broker import settings
from brokkr.broker.domain import access, errors
from brokkr.broker.services.context import Context
from brokkr.common import wire
from brokkr.common.settings import SettingsError


async def reload(ctx: Context, *, caller: access.Caller | None) -> wire.ConfigReloadResponse:
    """``caller`` None: the broker itself (SIGHUP)."""
    if caller is not None:
        access.require_admin(caller)
    try:
        loaded = ctx.settings.reread()
    except SettingsError as exc:
        raise errors.InvalidConfiguration(str(exc), list(exc.keys)) from exc
    changes = settings.compare(ctx.settings.current, loaded)
    applied = [change for change in changes if not change.needs_restart]
    waiting = [change.key for change in changes if change.needs_restart]
    async with ctx.work(caller) as w:
        details = {"changes": [change.key for change in applied], "restart_required": waiting}
        await w.audit("config.reloaded", "config", None, details)
        reloaded_at = w.now
    ctx.settings.swap(loaded)
    if caller is not None:
        # A request reaches one worker of the server; SIGHUP already reaches every one.
        ctx.reload_others()
    return wire.ConfigReloadResponse(
        reloaded_at=reloaded_at,
        changes=[
            wire.ConfigChangeInfo(key=change.key, old_value=change.old, new_value=change.new)
            for change in applied
        ],
        success=True,
        message=_summary(len(applied), waiting),
    )


def _summary(applied: int, waiting: list[str]) -> str:
    text = f"{applied} setting(s) updated" if applied else "No changes detected"
    if waiting:
        text += f"; not applied until a restart: {', '.join(waiting)}"
    return text
