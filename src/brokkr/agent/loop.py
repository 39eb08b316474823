"""The agent's runtime: probes first, then find itself on the broker, then independent tasks.

Each periodic task (heartbeat, incremental poll, full poll, Kubernetes check) runs on its own
schedule, so a slow reconcile never delays heartbeats (flaw 12). A failing tick backs off
(capped exponential, jittered) and the task carries on: a broker outage or a bug in one task
never stops the others, and the agent recovers by itself when the broker returns. A poll hands
each stack to its own reconcile task and returns: a slow stack (a CRD that never settles) holds
up neither the polls nor the other stacks, and one stack's reconciles never overlap. Work orders
have a task of their own (``brokkr.agent.work_queue``), and so do diagnostic requests
(``brokkr.agent.diagnostics_queue``) and webhook deliveries
(``brokkr.agent.webhook_deliveries``). On ``stop`` in-flight reconciles and work orders may
finish within the grace period.

The broker channel (``brokkr.agent.channel``) runs beside them once the agent is found, dialling
while the agent is ACTIVE: a push wakes the incremental poll (or the work-order poll) at once, and
heartbeats, deploy events and health entries go over it when it is up and the broker acknowledges
them, else over REST (an event counts as posted only once the broker has it).

Events report changes, not repetitions (``decisions.worth_posting``): an outcome is posted when
it differs from the last one posted for that deployment object (a new failure reason, a recovery,
an apply, a drift fixed, a prune), or when the broker still awaits its acknowledgement (an
incremental answer, D12/D13).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

import httpx

from brokkr.agent import backoff, decisions
from brokkr.agent.channel import Channel, State
from brokkr.agent.diagnostics_queue import DiagnosticsQueue
from brokkr.agent.health_reports import HealthReports
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import (
    CheckHealth,
    Cluster,
    CollectDiagnostics,
    Outcome,
    Reconcile,
    RunWorkOrder,
    ShipTelemetry,
    StartupError,
)
from brokkr.agent.probes import ChannelProbe, Health, Metrics, ProbeServer
from brokkr.agent.settings import Settings
from brokkr.agent.webhook_deliveries import WebhookDeliveries
from brokkr.agent.work_queue import WorkQueue
from brokkr.client import (
    AsyncBrokkrClient,
    BrokkrAPIError,
    BrokkrCertificateError,
    BrokkrConnectionError,
    BrokkrError,
    Retry,
    ServerError,
    TargetState,
    Unauthorized,
)
from brokkr.common import wire
from brokkr.common.wire import channel as frames

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
    run_work_order: RunWorkOrder | None = None,
    collect_diagnostics: CollectDiagnostics | None = None,
    check_health: CheckHealth | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    ship_telemetry: ShipTelemetry | None = None,
    channel: Channel | None = None,
) -> None:
    """Run until ``stop`` is set. Raises ``StartupError`` when the agent cannot start.

    A ``client`` passed in stays open (its owner closes it); otherwise one is built from the
    settings, without client-side retries: the loop owns backoff. Without ``run_work_order``
    the agent claims no work orders, without ``collect_diagnostics`` no diagnostic requests,
    without ``check_health`` reports no deployment health (tests of the rest of the loop).
    Webhook deliveries are POSTed through ``webhook_transport`` when given (tests), else the
    network, unless ``webhook_delivery_enabled`` is off. The broker channel is built from the
    settings unless ``channel`` is given (tests: short backoff); ``ship_telemetry`` runs beside
    it once the agent is found, unless the channel is force-REST (telemetry has no REST path).
    """
    config = settings.agent
    health = Health(polling_interval=config.polling_interval)
    metrics = Metrics()
    probes = ProbeServer(
        health, metrics, host=probe_host or config.health_host, port=config.health_port
    )
    owned = client is None
    try:
        broker = client or AsyncBrokkrClient(
            config.broker_url, config.pak, verify=config.ca_bundle or True, retry=Retry(attempts=1)
        )
        channel = channel or Channel.of(config)
    except BrokkrError as exc:  # an unreadable BROKKR__AGENT__CA_BUNDLE
        raise StartupError(str(exc)) from exc
    channel.observe(ChannelProbe(health, metrics))
    await probes.start()
    webhooks = (
        WebhookDeliveries(broker, stop=stop, transport=webhook_transport)
        if config.webhook_delivery_enabled
        else None
    )
    try:
        runtime = Runtime(settings, broker, cluster, reconcile, health, metrics, stop, channel)
        runtime.ship_telemetry = ship_telemetry
        if run_work_order is not None:
            runtime.work = WorkQueue(
                broker, run_work_order, limit=config.max_concurrent_work_orders, stop=stop
            )
        if collect_diagnostics is not None:
            runtime.diagnostics = DiagnosticsQueue(
                broker,
                collect_diagnostics,
                runtime.running,
                timeout=config.diagnostics_timeout,
                stop=stop,
            )
        if check_health is not None and config.deployment_health_enabled:
            runtime.health_reports = HealthReports(
                broker,
                check_health,
                resend_after=config.deployment_health_interval,
                send_acked=channel.send_acked,
            )
        runtime.webhooks = webhooks
        await runtime.run()
    finally:
        if webhooks is not None:
            await webhooks.aclose()
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
        channel: Channel,
    ) -> None:
        self.config = settings.agent
        self.client = client
        self.cluster = cluster
        self.reconcile = reconcile
        self.health = health
        self.metrics = metrics
        self.stop = stop
        self.agent: wire.Agent | None = None
        # The broker channel, and its gate: set while the agent is ACTIVE (the broker refuses
        # the channel of an inactive agent, and closes it on deactivation).
        self.channel = channel
        self.dial = asyncio.Event()
        self.etag: str | None = None
        self.retries: backoff.RetryTracker[UUID] = backoff.RetryTracker(
            minimum=self.config.backoff_min, maximum=self.config.backoff_max
        )
        # The reconcile task of each stack being reconciled; a stack never runs twice at once.
        self.in_flight: dict[UUID, Task] = {}
        # The last (status, message) posted per deployment object: repetitions are not posted.
        self.posted: dict[UUID, decisions.Posted] = {}
        # Whether the broker was unreachable, so its return is logged once.
        self.broker_lost = False
        # The last deployment object applied successfully per stack, so drift is corrected from
        # it while the broker is unreachable (a stack whose last outcome failed is left alone).
        self.applied: dict[UUID, wire.DeploymentObject] = {}
        # What each of those left in the cluster, by stack: the objects health checks and
        # diagnostics look at. Superseded, deleted and failed objects drop out with their stack.
        self.placed: dict[UUID, tuple[ObjectRef, ...]] = {}
        # When the last full re-apply started (monotonic); offline ones keep the same pace.
        self.reapplied_at = time.monotonic()
        # Claims and runs work orders when the agent is given a way to run them.
        self.work: WorkQueue | None = None
        # Answers diagnostic requests when the agent is given a way to collect them.
        self.diagnostics: DiagnosticsQueue | None = None
        # Reports deployment health when the agent is given a way to assess it (and enabled).
        self.health_reports: HealthReports | None = None
        # Delivers the webhooks addressed to this agent's labels (unless disabled).
        self.webhooks: WebhookDeliveries | None = None
        # Ships Kubernetes events and pod log lines over the channel when given.
        self.ship_telemetry: ShipTelemetry | None = None

    async def run(self) -> None:
        interval = self.config.polling_interval
        # The Kubernetes check starts with the probes, so /health tells the truth at once.
        tasks = [self.spawn("kubernetes", interval, self.check_cluster)]
        try:
            if await self.find_self():
                tasks += self.start_channel()
                tasks += [
                    self.spawn("heartbeat", interval, self.heartbeat),
                    self.spawn("poll", interval, self.poll, wake=self.channel.poll_wake),
                    # At start-up too: a restarted agent corrects what drifted while it was down,
                    # and learns what it runs (health reports, diagnostics) at once rather than
                    # a reconcile interval later.
                    self.spawn("full-poll", self.config.reconcile_interval, self.full_poll),
                ]
                if self.work is not None:
                    tasks.append(
                        self.spawn(
                            "work-orders",
                            interval,
                            self.poll_work_orders,
                            wake=self.channel.work_orders_wake,
                        )
                    )
                if self.diagnostics is not None:
                    tasks.append(
                        self.spawn(
                            "diagnostics", self.config.diagnostics_interval, self.poll_diagnostics
                        )
                    )
                if self.health_reports is not None:
                    check_every = self.config.deployment_health_check_interval
                    tasks.append(self.spawn("health", check_every, self.report_health))
                if self.webhooks is not None:
                    every = self.config.webhook_delivery_interval
                    tasks.append(self.spawn("webhooks", every, self.deliver_webhooks))
                await self.stop.wait()
        finally:
            # Only a requested stop earns a grace period; a failed start-up ends at once.
            grace = self.config.shutdown_grace_seconds if self.stop.is_set() else 0.0
            await self.shut_down(tasks, grace)

    def spawn(
        self,
        name: str,
        interval: float,
        tick: Tick,
        *,
        first: bool = True,
        wake: asyncio.Event | None = None,
    ) -> Task:
        return asyncio.create_task(
            self.periodic(name, interval, tick, first=first, wake=wake), name=name
        )

    def start_channel(self) -> list[Task]:
        """The channel's connection loop and the telemetry shipper offering to it; neither
        when force-REST."""
        assert self.agent is not None  # noqa: S101 - find_self ran first
        if self.channel.state is State.FORCE_REST_ONLY:
            log.info("broker channel off (ws_force_rest): REST only, no telemetry")
            return []
        tasks = [
            asyncio.create_task(
                self.channel.run(
                    agent_id=self.agent.id,
                    active=self.dial,
                    still_active=self.still_active,
                    stop=self.stop,
                ),
                name="channel",
            )
        ]
        if self.ship_telemetry is not None:
            tasks.append(
                asyncio.create_task(
                    self.ship_telemetry(self.channel, agent_id=self.agent.id, stop=self.stop),
                    name="telemetry",
                )
            )
        return tasks

    async def shut_down(self, tasks: list[Task], grace: float) -> None:
        """Sleeping tasks see ``stop`` and return at once; reconciles in flight get the grace
        period to finish and report, then everything left is cancelled."""
        deadline = time.monotonic() + grace
        await self.finish(tasks, grace)
        # Only now: a poll that was mid-fetch at ``stop`` starts no reconcile after it.
        running = list(self.in_flight.values()) + (self.work.tasks() if self.work else [])
        await self.finish(running, max(0.0, deadline - time.monotonic()))

    async def finish(self, tasks: list[Task], grace: float) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            if grace:
                log.warning("cancelling %s after the %.1f s grace period", task.get_name(), grace)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Sleep unless stopped (or woken by ``wake``) first; True when the agent is stopping.
        A wake is consumed: the pushes that arrived meanwhile come to one early tick."""
        events = [self.stop] if wake is None else [self.stop, wake]
        tasks = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        if wake is not None:
            wake.clear()
        return self.stop.is_set()

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
                # Still retried: the CA or the certificate may be fixed while the agent waits.
                hint = (
                    " (set BROKKR__AGENT__CA_BUNDLE to the CA that signed it)"
                    if isinstance(exc, BrokkrCertificateError)
                    else ""
                )
                log.warning("broker not reachable yet (%s%s); retrying in %.1f s", exc, hint, wait)
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
            self.learn(self.agent)
            log.info(
                "agent %s (%s) found, status %s", self.agent.name, self.agent.id, self.agent.status
            )
            if not self.active:
                log.info("agent is %s: paused until an admin activates it", self.agent.status)
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

    async def periodic(
        self,
        name: str,
        interval: float,
        tick: Tick,
        *,
        first: bool,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Run ``tick`` every ``interval`` until stopped, and at once when ``wake`` is set (a
        broker push); a failing tick backs off instead."""
        failures = 0
        wait = 0.0 if first else interval
        while not await self.sleep(wait, wake):
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
                    self.broker_lost = True
                    log.warning(
                        "%s: broker unreachable (%s); reconnecting in %.1f s", name, exc, wait
                    )
                else:
                    log.warning("%s failed (%s); retrying in %.1f s", name, exc, wait)
            except Exception:  # noqa: BLE001 - a bug in one task must not stop the others
                failures += 1
                wait = self.backoff_delay(failures)
                log.exception("%s failed unexpectedly; retrying in %.1f s", name, wait)
            else:
                failures = 0
                wait = interval
                if self.broker_lost and name != "kubernetes":
                    self.broker_lost = False
                    log.info("broker reachable again")

    async def check_cluster(self) -> None:
        reachable = await self.cluster.ping()
        if reachable != self.health.kubernetes_reachable:
            log.info("Kubernetes API %s", "reachable" if reachable else "unreachable")
        self.health.kubernetes_reachable = reachable

    @property
    def active(self) -> bool:
        return self.agent is not None and self.agent.status == ACTIVE

    def learn(self, agent: wire.Agent) -> None:
        """Take the broker's record of this agent; the channel dials only while it is ACTIVE."""
        known = self.agent
        if known is not None and agent.status != known.status:
            if agent.status == ACTIVE:
                log.info("agent activated (%s -> %s): applying again", known.status, ACTIVE)
            else:
                log.info(
                    "agent deactivated (%s -> %s): paused, nothing is applied until an admin "
                    "activates it",
                    known.status,
                    agent.status,
                )
        self.agent = agent
        if self.active:
            self.dial.set()
        else:
            self.dial.clear()

    async def still_active(self) -> bool:
        """Asked by the channel when the broker refuses it (401/403): whether the agent is
        still ACTIVE, so the refusal is the PAK's. A rejected PAK (or no answer) says yes."""
        try:
            agent = await self.client.agents.search(
                name=self.config.agent_name, cluster_name=self.config.cluster_name
            )
        except BrokkrError:
            return True
        self.learn(agent)
        return self.active

    async def heartbeat(self) -> None:
        assert self.agent is not None  # noqa: S101 - find_self ran first
        beat = frames.Heartbeat(agent_id=self.agent.id, sent_at=datetime.now(UTC))
        # Over the channel when it is up and the broker acknowledges the beat, else REST.
        if not await self.channel.send_acked(frames.HEARTBEAT, beat):
            await self.client.agents.heartbeat(self.agent.id)
        self.health.broker_reached()
        self.metrics.heartbeats.inc()
        self.health.counts["heartbeats"] += 1
        # The status is learnt here (and when the broker refuses the channel): an admin
        # (de)activating the agent takes one beat.
        self.learn(
            await self.client.agents.search(
                name=self.config.agent_name, cluster_name=self.config.cluster_name
            )
        )

    async def poll(self) -> None:
        """Incremental poll: only what changed (304 when nothing did), plus due retries."""
        if not self.active:
            log.debug("agent not %s; not polling", ACTIVE)
            return
        # A failed object stays in the broker's answer (D12), so its ETag does not move:
        # ask afresh once a retry is due, or the 304s would hide it.
        etag = None if self.retries.any_due(now=datetime.now(UTC)) else self.etag
        state = await self.fetch(full=False, etag=etag)
        if state.objects is None:
            return
        # A stack still busy is skipped: without the ETag the next poll asks again for it.
        self.etag = state.etag if self.apply(state.objects, acknowledge=True) else None

    async def full_poll(self) -> None:
        """Everything the agent should run, re-applied to correct drift (D23, flaw 5); with the
        broker unreachable, what was last applied is re-applied instead (never pruned)."""
        if not self.active:
            return
        try:
            state = await self.fetch(full=True, etag=None)
        except (BrokkrConnectionError, ServerError):
            # The failure is still raised: the task backs off and logs the outage as usual.
            if time.monotonic() - self.reapplied_at >= self.config.reconcile_interval:
                self.reapply_last_applied()
            raise
        self.reapplied_at = time.monotonic()
        self.apply(state.objects or [], acknowledge=False)

    def reapply_last_applied(self) -> None:
        self.reapplied_at = time.monotonic()
        idle = [obj for obj in self.applied.values() if obj.stack_id not in self.in_flight]
        if idle:
            log.info("broker unreachable: re-applying the last applied %d stack(s)", len(idle))
        for obj in idle:
            self.dispatch(obj, acknowledge=False)

    async def poll_work_orders(self) -> None:
        if not self.active or self.work is None:
            return
        assert self.agent is not None  # noqa: S101 - active implies found
        await self.work.poll(self.agent.id)

    async def poll_diagnostics(self) -> None:
        if not self.active or self.diagnostics is None:
            return
        assert self.agent is not None  # noqa: S101 - active implies found
        await self.diagnostics.poll(self.agent.id)

    async def deliver_webhooks(self) -> None:
        if not self.active or self.webhooks is None:
            return
        assert self.agent is not None  # noqa: S101 - active implies found
        await self.webhooks.poll(self.agent.id)

    async def report_health(self) -> None:
        if not self.active or self.health_reports is None:
            return
        assert self.agent is not None  # noqa: S101 - active implies found
        sent = await self.health_reports.tick(self.agent.id, self.running())
        self.metrics.health_reports.inc(sent)
        self.metrics.health_tracked.set(self.health_reports.tracked)

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

    def apply(self, objects: list[wire.DeploymentObject], *, acknowledge: bool) -> bool:
        """Start a reconcile for the newest object of each stack that is due and not already
        being reconciled; False when a stack was skipped for that. ``acknowledge``: the objects
        come from an incremental answer, so the broker awaits their outcome (D12)."""
        now = datetime.now(UTC)
        latest = decisions.latest_per_stack(objects)
        served = {obj.id for obj in latest}
        # Objects no longer served (superseded, deleted, or reported) stop being tracked.
        self.retries.retain(served)
        self.posted = {key: last for key, last in self.posted.items() if key in served}
        if self.stop.is_set():
            return True
        dispatched = True
        for obj in latest:
            if not self.retries.is_due(obj.id, now=now):
                continue
            if obj.stack_id in self.in_flight:
                dispatched = False
                continue
            self.dispatch(obj, acknowledge=acknowledge)
        return dispatched

    def dispatch(self, obj: wire.DeploymentObject, *, acknowledge: bool) -> None:
        task = asyncio.create_task(
            self.reconcile_and_report(obj, acknowledge=acknowledge),
            name=f"reconcile-{obj.stack_id}",
        )
        self.in_flight[obj.stack_id] = task
        task.add_done_callback(functools.partial(self.finished, obj.stack_id))

    def finished(self, stack_id: UUID, _: Task) -> None:
        self.in_flight.pop(stack_id, None)

    async def reconcile_and_report(self, obj: wire.DeploymentObject, *, acknowledge: bool) -> None:
        """One stack's reconcile task; nothing escapes it (no one awaits its result)."""
        assert self.agent is not None  # noqa: S101 - only reconciled once active
        started = time.perf_counter()
        try:
            [outcome] = await self.reconcile([obj], agent_id=self.agent.id)
            self.remember(obj, outcome)
            self.metrics.kubernetes_operations.labels(operation="reconcile").inc()
            self.metrics.kubernetes_operation_duration.labels(operation="reconcile").observe(
                time.perf_counter() - started
            )
            self.health.last_reconcile_at = datetime.now(UTC)
            await self.report(outcome, acknowledge=acknowledge)
        except BrokkrError as exc:
            # Not remembered as posted, and the next poll asks afresh (no 304), so the object,
            # still served without its SUCCESS, is reconciled and reported again.
            self.etag = None
            log.warning(
                "reporting the outcome of %s failed (%s); will report it again", obj.id, exc
            )
        except Exception:  # noqa: BLE001 - a bug must not kill the task silently
            log.exception("reconciling stack %s failed unexpectedly", obj.stack_id)

    def remember(self, obj: wire.DeploymentObject, outcome: Outcome) -> None:
        """A deletion marker (stack deleted or unassigned) or a failure forgets the stack."""
        if outcome.success and not obj.is_deletion_marker:
            self.applied[obj.stack_id] = obj
            self.placed[obj.stack_id] = outcome.applied
        else:
            self.applied.pop(obj.stack_id, None)
            self.placed.pop(obj.stack_id, None)

    def running(self) -> dict[UUID, tuple[ObjectRef, ...]]:
        """The objects each deployment object applied by this agent left in the cluster, by
        deployment object id: only the newest successfully applied object of each stack."""
        return {self.applied[stack].id: refs for stack, refs in self.placed.items()}

    async def report(self, outcome: Outcome, *, acknowledge: bool) -> None:
        assert self.agent is not None  # noqa: S101 - only reconciled once active
        key = outcome.deployment_object_id
        posting: decisions.Posted = (
            "SUCCESS" if outcome.success else "FAILURE",
            wire.fit_event_message(outcome.message),
        )
        worth = decisions.worth_posting(
            self.posted.get(key), posting, changed=outcome.changed, acknowledge=acknowledge
        )
        if outcome.success:
            self.retries.succeeded(key)
            self.health.counts["applied"] += 1
        else:
            retry_at = self.retries.failed(key, now=datetime.now(UTC))
            self.health.counts["failed"] += 1
            log.log(
                logging.WARNING if worth else logging.INFO,
                "deployment object %s %s (%s); retrying after %s",
                key,
                "failed" if worth else "still fails",
                outcome.message,
                retry_at.isoformat(),
            )
        if not worth:
            return
        status, message = posting
        # Sent only once the broker has it: acknowledged over the channel, or else over REST.
        event = frames.AgentEventBody(
            agent_id=self.agent.id, deployment_object_id=key, status=status, message=message
        )
        if not await self.channel.send_acked(frames.AGENT_EVENT, event):
            await self.client.agents.report_event(
                self.agent.id, deployment_object_id=key, status=status, message=message
            )
        self.posted[key] = posting
