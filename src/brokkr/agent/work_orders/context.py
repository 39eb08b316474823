"""What every executor shares: its context, the failure of a finished-but-failed run, and how
a controller's status conditions are read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from brokkr.agent.kube import KubeCluster
from brokkr.agent.settings import Settings


class WorkFailed(Exception):
    """The order ran and failed (a failed Job or BuildRun, a malformed order): running it again
    as it is would fail again, so it is permanent."""


class Context(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    cluster: KubeCluster

    @property
    def check_interval(self) -> float:
        return self.settings.agent.work_order_check_interval


def condition(live: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind`` (``Complete``, ``Succeeded``...), if reported."""
    for found in (live.get("status") or {}).get("conditions") or []:
        if isinstance(found, Mapping) and found.get("type") == kind:
            return found
    return None


def is_true(found: Mapping[str, Any] | None) -> bool:
    return found is not None and found.get("status") == "True"
