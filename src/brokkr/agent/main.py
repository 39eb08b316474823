"""``brokkr agent run``: settings, logging, signals, the real cluster, then the runtime loop.

Exit codes: 0 after SIGTERM/SIGINT (handled alike, flaw 17), 1 when the agent cannot start, 2 on
a configuration error (e.g. no PAK). The Kubernetes side (``brokkr.agent.kube``,
``brokkr.agent.reconcile`` and ``brokkr.agent.work_orders``) is imported only when the agent
runs: it carries lightkube, which ``brokkr --help`` and the rest of the CLI do not need.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from brokkr.agent import loop
from brokkr.agent import settings as agent_settings
from brokkr.agent.outcomes import StartupError
from brokkr.common import logging as brokkr_logging
from brokkr.common.settings import SettingsError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HTTP_LOGGERS = ("httpx", "httpx2")


def main() -> int:
    """Run the agent until a stop signal; return the process exit code."""
    try:
        settings = agent_settings.load()
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    brokkr_logging.configure(level=settings.log.level, as_json=settings.log.format == "json")
    quiet_http_requests(settings.log.level)
    return asyncio.run(_run(settings))


def quiet_http_requests(level: str) -> None:
    """httpx (broker) and httpx2 (lightkube) log every request at INFO, about 120 lines a minute
    that drown what the agent did; they show only when the agent logs at debug."""
    if level != "debug":
        for name in HTTP_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


async def _run(settings: agent_settings.Settings) -> int:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        running.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        await _run_with_cluster(settings, stop)
    except StartupError as exc:
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


async def _run_with_cluster(settings: agent_settings.Settings, stop: asyncio.Event) -> None:
    from brokkr.agent import kube, reconcile, work_orders
    from brokkr.agent.kube import diagnosing

    cluster = await kube.connect(settings)
    try:
        await loop.run_agent(
            settings,
            cluster=cluster,
            reconcile=reconcile.Reconciler(settings, cluster),
            stop=stop,
            run_work_order=work_orders.Executor(settings, cluster),
            collect_diagnostics=diagnosing.Collector(
                cluster.client, diagnosing.Limits.of(settings.agent)
            ),
            check_health=kube.HealthChecker(cluster.client),
            ship_telemetry=(
                kube.TelemetryShipper(cluster.client, settings.agent)
                if settings.agent.kube_events_enabled or settings.agent.pod_logs_enabled
                else None
            ),
        )
    finally:
        await cluster.aclose()
