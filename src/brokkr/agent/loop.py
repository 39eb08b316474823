"""The agent's runtime: probes first, then find itself on the broker, then independent tasks.

Each periodic task (heartbeat, incremental poll, full poll, Kubernetes check) runs on its own
schedule, so a slow reconcile never delays heartbeats (flaw 12). A failing tick backs off
(capped exponential, jittered) and the task carries on: a broker outage or a bug in one task
never stops the others, and the agent recovers by itself when the broker returns. Reconciles
never overlap. On ``stop`` an in-flight reconcile may finish within the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from brokkr.agent import backoff, decisions
from brokkr.agent.outcomes import Cluster, Outcome, Reconcile, StartupError
from brokkr.agent.probes import Health, Metrics, ProbeServer
from brokkr.agent.settings import Settings
from brokkr.client import (
    AsyncBrokkrClient,
    BrokkrAPIError,
    BrokkrConnectionError,
    BrokkrError,
    Retry,
    ServerError,
    TargetState,
    Unauthorized,
)
from brokkr.common import wire

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
Tick = Callable[[], Awaitable[None]]
Task = asyncio.Task[None]


async def run_agent(
    settings: Settings,
    *,
    cluster: Cluster,
    reconcile: Reconcile,
    client: AsyncBrokkrClient | None = None,
    stop: asyncio.Event,
    probe_host: str | None = None,
) -> None:
    """Run until ``stop`` is set. Raises ``StartupError`` when the agent cannot start.

    A ``client`` passed in stays open (its owner closes it); otherwise one is built from the
    settings, without client-side retries: the loop owns backoff.
    """
    config = settings.agent
    health = Health(polling_interval=config.polling_interval)
    metrics = Metrics()
    probes = ProbeServer(
        health, metrics, host=probe_host or config.health_host, port=config.health_port
    )
    owned = client is None
    broker = client or AsyncBrokkrClient(config.broker_url, config.pak, retry=Retry(attempts=1))
    await probes.start()
    try:
        runtime = Runtime(settings, broker, cluster, reconcile, health, metrics, stop)
        await runtime.run()
    finally:
        if owned:
            await broker.aclose()
        await probes.aclose()


class Runtime:
    def __init__(
        self,
        settings: Settings,
        client: AsyncBrokkrClient,
        cluster: Cluster,
        reconcile: Reconcile,
        health: Health,
        metrics: Metrics,
        stop: asyncio.Event,
    ) -> None:
        self.config = settings.agent
        self.client = client
        self.cluster = cluster
        self.reconcile = reconcile
        self.health = health
        self.metrics = metrics
        self.stop = stop
        self.agent: wire.Agent | None = None
        self.etag: str | None = None
        self.retries: backoff.RetryTracker[UUID] = backoff.RetryTracker(
            minimum=self.config.backoff_min, maximum=self.config.backoff_max
        )
        # Deployment objects whose last outcome was a failure (their backoff is in retries).
        self.failed: set[UUID] = set()
        # Reconciles from the incremental and the full poll must not interleave.
        self.reconciling = asyncio.Lock()

    async def run(self) -> None:
        interval = self.config.polling_interval
        # The Kubernetes check starts with the probes, so /health tells the truth at once.
        tasks = [self.spawn("kubernetes", interval, self.check_cluster)]
        try:
            if await self.find_self():
                tasks += [
                    self.spawn("heartbeat", interval, self.heartbeat),
                    self.spawn("poll", interval, self.poll),
                    # The incremental poll covers start-up; drift needs time to appear.
                    self.spawn(
                        "full-poll", self.config.reconcile_interval, self.full_poll, first=False
                    ),
                ]
                await self.stop.wait()
        finally:
            # Only a requested stop earns a grace period; a failed start-up ends at once.
            grace = self.config.shutdown_grace_seconds if self.stop.is_set() else 0.0
            await self.shut_down(tasks, grace)

    def spawn(self, name: str, interval: float, tick: Tick, *, first: bool = True) -> Task:
        return asyncio.create_task(self.periodic(name, interval, tick, first=first), name=name)

    async def shut_down(self, tasks: list[Task], grace: float) -> None:
        """Sleeping tasks see ``stop`` and return at once; a task inside a reconcile gets the
        grace period to finish it and report, then everything left is cancelled."""
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            if grace:
                log.warning("cancelling %s after the %.1f s grace period", task.get_name(), grace)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when the agent is stopping."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def find_self(self) -> bool:
        """Wait for the broker and fetch this agent's record; False when stopped meanwhile.

        Transport errors and 5xx are retried ``max_retries`` times with backoff; a wrong name,
        a foreign or rejected PAK are configuration errors and fail at once.
        """
        for attempt in range(1, self.config.max_retries + 1):
            try:
                self.agent = await self.client.agents.search(
                    name=self.config.agent_name, cluster_name=self.config.cluster_name
                )
            except (BrokkrConnectionError, ServerError) as exc:
                self.health.broker_failed(str(exc))
                wait = self.backoff_delay(attempt)
                log.warning("broker not reachable yet (%s); retrying in %.1f s", exc, wait)
                if await self.sleep(wait):
                    return False
                continue
            except BrokkrAPIError as exc:
                raise StartupError(
                    f"agent {self.config.agent_name!r} in cluster {self.config.cluster_name!r} "
                    f"not usable: {exc} (check BROKKR__AGENT__AGENT_NAME, "
                    "BROKKR__AGENT__CLUSTER_NAME and BROKKR__AGENT__PAK)"
                ) from exc
            self.health.broker_reached()
            self.health.agent_id = self.agent.id
            log.info(
                "agent %s (%s) found, status %s", self.agent.name, self.agent.id, self.agent.status
            )
            return True
        raise StartupError(
            f"broker {self.config.broker_url} not reachable after "
            f"{self.config.max_retries} attempts"
        )

    def backoff_delay(self, attempt: int) -> float:
        # A floor of backoff_min: full jitter alone can draw ~0 and hammer a struggling broker.
        return max(
            self.config.backoff_min,
            backoff.delay(
                attempt, minimum=self.config.backoff_min, maximum=self.config.backoff_max
            ),
        )

    async def periodic(self, name: str, interval: float, tick: Tick, *, first: bool) -> None:
        """Run ``tick`` every ``interval`` until stopped; a failing tick backs off instead."""
        failures = 0
        wait = 0.0 if first else interval
        while not await self.sleep(wait):
            try:
                await tick()
            except Unauthorized as exc:
                failures += 1
                # A revoked or rotated PAK needs an operator; retrying fast would only spam.
                wait = self.config.backoff_max * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
                self.health.broker_failed("PAK rejected (401)")
                log.error(
                    "%s: the broker rejected this agent's PAK (revoked or rotated?): %s; "
                    "set BROKKR__AGENT__PAK; retrying in %.0f s",
                    name,
                    exc,
                    wait,
                )
            except BrokkrError as exc:
                failures += 1
                wait = self.backoff_delay(failures)
                if isinstance(exc, BrokkrConnectionError | ServerError):
                    self.health.broker_failed(str(exc))
                log.warning("%s failed (%s); retrying in %.1f s", name, exc, wait)
            except Exception:  # noqa: BLE001 - a bug in one task must not stop the others
                failures += 1
                wait = self.backoff_delay(failures)
                log.exception("%s failed unexpectedly; retrying in %.1f s", name, wait)
            else:
                failures = 0
                wait = interval

    async def check_cluster(self) -> None:
        reachable = await self.cluster.ping()
        if reachable != self.health.kubernetes_reachable:
            log.info("Kubernetes API %s", "reachable" if reachable else "unreachable")
        self.health.kubernetes_reachable = reachable

    @property
    def active(self) -> bool:
        return self.agent is not None and self.agent.status == ACTIVE

    async def heartbeat(self) -> None:
        assert self.agent is not None  # noqa: S101 - find_self ran first
        await self.client.agents.heartbeat(self.agent.id)
        self.health.broker_reached()
        self.metrics.heartbeats.inc()
        self.health.counts["heartbeats"] += 1
        # The status is only learnt here: an admin (de)activating the agent takes one beat.
        agent = await self.client.agents.search(
            name=self.config.agent_name, cluster_name=self.config.cluster_name
        )
        if agent.status != self.agent.status:
            log.info("agent status changed: %s -> %s", self.agent.status, agent.status)
        self.agent = agent

    async def poll(self) -> None:
        """Incremental poll: only what changed (304 when nothing did), plus due retries."""
        if not self.active:
            log.debug("agent not %s; not polling", ACTIVE)
            return
        # A failed object stays in the broker's answer (D12), so its ETag does not move:
        # ask afresh once a retry is due, or the 304s would hide it.
        etag = None if self.retry_due() else self.etag
        state = await self.fetch(full=False, etag=etag)
        if state.objects is None:
            return
        self.etag = state.etag
        await self.apply(state.objects)

    async def full_poll(self) -> None:
        """Everything the agent should run, re-applied to correct drift (D23, flaw 5)."""
        if not self.active:
            return
        state = await self.fetch(full=True, etag=None)
        await self.apply(state.objects or [])

    def retry_due(self) -> bool:
        now = datetime.now(UTC)
        return any(self.retries.is_due(key, now=now) for key in self.failed)

    async def fetch(self, *, full: bool, etag: str | None) -> TargetState:
        assert self.agent is not None  # noqa: S101 - only polled once active
        started = time.perf_counter()
        try:
            state = await self.client.agents.target_state(self.agent.id, full=full, etag=etag)
        except BrokkrError:
            self.metrics.poll_requests.labels(status="error").inc()
            raise
        finally:
            self.metrics.poll_duration.observe(time.perf_counter() - started)
        self.metrics.poll_requests.labels(status="success").inc()
        self.metrics.last_successful_poll.set_to_current_time()
        self.health.broker_reached()
        self.health.counts["polls"] += 1
        return state

    async def apply(self, objects: list[wire.DeploymentObject]) -> None:
        """Reconcile the newest object per stack that is not backing off; report outcomes."""
        assert self.agent is not None  # noqa: S101 - only polled once active
        now = datetime.now(UTC)
        latest = decisions.latest_per_stack(objects)
        # Objects no longer served (superseded, deleted, or reported) stop being tracked.
        self.retries.retain(obj.id for obj in latest)
        self.failed &= {obj.id for obj in latest}
        due = [obj for obj in latest if self.retries.is_due(obj.id, now=now)]
        if not due:
            return
        async with self.reconciling:
            started = time.perf_counter()
            outcomes = await self.reconcile(due, agent_id=self.agent.id)
            self.metrics.kubernetes_operations.labels(operation="reconcile").inc()
            self.metrics.kubernetes_operation_duration.labels(operation="reconcile").observe(
                time.perf_counter() - started
            )
            self.health.last_reconcile_at = datetime.now(UTC)
            for outcome in outcomes:
                await self.report(outcome)

    async def report(self, outcome: Outcome) -> None:
        assert self.agent is not None  # noqa: S101 - only reconciled once active
        key = outcome.deployment_object_id
        if outcome.success:
            self.retries.succeeded(key)
            self.failed.discard(key)
            self.health.counts["applied"] += 1
        else:
            retry_at = self.retries.failed(key, now=datetime.now(UTC))
            self.failed.add(key)
            self.health.counts["failed"] += 1
            log.warning(
                "deployment object %s failed (%s); retrying after %s",
                key,
                outcome.message,
                retry_at.isoformat(),
            )
        await self.client.agents.report_event(
            self.agent.id,
            deployment_object_id=key,
            status="SUCCESS" if outcome.success else "FAILURE",
            message=wire.fit_event_message(outcome.message),
        )
