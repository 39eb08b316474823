"""``brokkr agent run``: settings, logging, signals, the real cluster, then the runtime loop.

Exit codes: 0 after SIGTERM/SIGINT (handled alike, flaw 17), 1 when the agent cannot start, 2 on
a configuration error (e.g. no PAK). The Kubernetes side comes from ``brokkr.agent.kube`` and
``brokkr.agent.reconcile``, imported only here and only when the agent runs: they carry
lightkube, which the rest of the agent (and its tests) must not need.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
from typing import Any

from brokkr.agent import loop
from brokkr.agent import settings as agent_settings
from brokkr.agent.outcomes import Cluster, Reconcile
from brokkr.common import logging as brokkr_logging
from brokkr.common.settings import SettingsError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main() -> int:
    """Run the agent until a stop signal; return the process exit code."""
    try:
        settings = agent_settings.load()
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    brokkr_logging.configure(level=settings.log.level, as_json=settings.log.format == "json")
    return asyncio.run(_run(settings))


async def _run(settings: agent_settings.Settings) -> int:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        running.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        cluster, reconcile = await _kubernetes(settings)
        await loop.run_agent(settings, cluster=cluster, reconcile=reconcile, stop=stop)
    except loop.StartupError as exc:
        log.error("agent cannot start: %s", exc)
        return 1
    finally:
        for signum in STOP_SIGNALS:
            running.remove_signal_handler(signum)
    log.info("agent stopped")
    return 0


def _request_stop(stop: asyncio.Event, signum: signal.Signals) -> None:
    log.info("received %s; stopping", signum.name)
    stop.set()


async def _kubernetes(settings: agent_settings.Settings) -> tuple[Cluster, Reconcile]:
    """The real cluster connection and reconcile callable.

    Contract with the Kubernetes modules: ``await brokkr.agent.kube.connect(settings)`` returns
    a ``Cluster``; ``brokkr.agent.reconcile.build(settings, cluster)`` returns a ``Reconcile``.
    """
    try:
        kube: Any = importlib.import_module("brokkr.agent.kube")
        reconciling: Any = importlib.import_module("brokkr.agent.reconcile")
    except ImportError as exc:
        raise loop.StartupError(f"the Kubernetes support is not installed: {exc}") from exc
    cluster: Cluster = await kube.connect(settings)
    reconcile: Reconcile = reconciling.build(settings, cluster)
    return cluster, reconcile
