"""Stack telemetry history (S15 ``GET /stacks/{id}/events``, S16 ``GET /stacks/{id}/logs``) and
its writer and retention, on SQLite and PostgreSQL.

Covers: rows accepted through ``ctx.telemetry`` are written by a flush and read back newest
first with the reference shapes and RetentionInfo; roles (admin, owning generator; another
generator and agents get the stack routes' 404; no PAK 401); bad ``since``/``limit`` (400);
``since`` and ``limit`` clamping (a ``limit`` below 1 is a 400, as on every list); over-long
text is cut, not refused; a full buffer drops and counts; the retention job deletes rows older
than the telemetry window from both tables and counts them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from brokkr.broker.db import tables
from brokkr.broker.services import retention
from brokkr.broker.services.context import Context
from brokkr.common.wire import channel
from tests.broker.api.test_target_state import create_stack, target
from tests.broker.conftest import Api, assert_error, auth, limits


def context(api: Api) -> Context:
    ctx: Context = api.broker.app.state.ctx
    return ctx


def event(agent_id: str, stack_id: str, *, reason: str = "Pulled", **extra: Any) -> Any:
    return channel.K8sEventBody(
        agent_id=uuid.UUID(agent_id),
        stack_id=uuid.UUID(stack_id),
        observed_at=datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
        reason=reason,
        message=extra.pop("message", f"{reason} happened"),
        event_type="Normal",
        source="kubelet",
        involved_object=channel.InvolvedObject(
            api_version="v1", kind="Pod", namespace="web", name="web-1", uid="u-1"
        ),
    )


def line(agent_id: str, stack_id: str, text: str, **extra: Any) -> channel.PodLogLineBody:
    return channel.PodLogLineBody(
        agent_id=uuid.UUID(agent_id),
        stack_id=uuid.UUID(stack_id),
        namespace="web",
        pod=extra.get("pod", "web-1"),
        container="app",
        ts=datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
        line=text,
    )


class World:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def build(self) -> World:
        generator, self.generator_pak = await self.api.create_generator("owner")
        _, self.other_pak = await self.api.create_generator("other")
        self.agent, self.agent_pak = await self.api.create_agent()
        self.stack = await create_stack(self.api, self.generator_pak)
        await target(self.api, self.agent["id"], self.stack["id"])
        return self

    async def log(self, *texts: str) -> None:
        ctx = context(self.api)
        for text in texts:
            assert ctx.telemetry.accept_log_line(
                uuid.UUID(self.agent["id"]), line(self.agent["id"], self.stack["id"], text)
            )
        await ctx.telemetry.flush()

    async def events(self, *reasons: str) -> None:
        ctx = context(self.api)
        for reason in reasons:
            assert ctx.telemetry.accept_event(
                uuid.UUID(self.agent["id"]),
                event(self.agent["id"], self.stack["id"], reason=reason),
            )
        await ctx.telemetry.flush()

    def url(self, kind: str) -> str:
        return f"/api/v1/stacks/{self.stack['id']}/{kind}"


@pytest.fixture
async def world(api: Api) -> World:
    return await World(api).build()


async def test_events_read_back_newest_first_with_retention_info(api: Api, world: World) -> None:
    await world.events("Scheduled", "Pulled", "Started")

    response = await api.client.get(world.url("events"), headers=auth(world.generator_pak))

    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["reason"] for e in body["events"]] == ["Started", "Pulled", "Scheduled"]
    first = body["events"][0]
    assert first["agent_id"] == world.agent["id"] and first["stack_id"] == world.stack["id"]
    assert first["involved_object"] == {
        "api_version": "v1",
        "kind": "Pod",
        "namespace": "web",
        "name": "web-1",
        "uid": "u-1",
    }
    assert (first["event_type"], first["source"]) == ("Normal", "kubelet")
    assert first["observed_at"] == "2025-01-02T10:00:00Z"
    retention_info = body["retention"]
    assert retention_info["retention_ceiling_seconds"] == 21600
    assert retention_info["effective_retention_seconds"] == 21600
    assert retention_info["oldest_available_ts"] == body["events"][-1]["created_at"]
    assert "log" in retention_info["long_term_sink_hint"]


async def test_logs_read_back_newest_first(api: Api, world: World) -> None:
    await world.log("one", "two", "three")

    response = await api.client.get(world.url("logs"), headers=api.admin)

    assert response.status_code == 200, response.text
    lines = response.json()["lines"]
    assert [entry["line"] for entry in lines] == ["three", "two", "one"]
    assert {(e["namespace"], e["pod"], e["container"]) for e in lines} == {("web", "web-1", "app")}


async def test_no_rows_means_no_oldest_timestamp(api: Api, world: World) -> None:
    response = await api.client.get(world.url("logs"), headers=api.admin)

    assert response.json() == {
        "retention": {
            "retention_ceiling_seconds": 21600,
            "effective_retention_seconds": 21600,
            "oldest_available_ts": None,
            "long_term_sink_hint": response.json()["retention"]["long_term_sink_hint"],
        },
        "lines": [],
    }


@pytest.mark.parametrize("kind", ["events", "logs"])
@pytest.mark.parametrize("who", ["other_generator", "agent"])
async def test_foreign_callers_get_the_stack_routes_404(
    api: Api, world: World, kind: str, who: str
) -> None:
    pak = world.other_pak if who == "other_generator" else world.agent_pak

    response = await api.client.get(world.url(kind), headers=auth(pak))

    assert_error(response, 404, "stack_not_found")


@pytest.mark.parametrize("kind", ["events", "logs"])
async def test_no_pak_is_401_and_unknown_stack_404(api: Api, world: World, kind: str) -> None:
    assert_error(await api.client.get(world.url(kind)), 401)
    unknown = f"/api/v1/stacks/{uuid.uuid4()}/{kind}"
    assert_error(await api.client.get(unknown, headers=api.admin), 404, "stack_not_found")


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"limit": "many"},
        {"limit": "1.5"},
        {"limit": "0"},
        {"limit": "-5"},
        {"since": "2025-13-01"},
    ],
)
async def test_bad_query_parameters_are_400(api: Api, world: World, params: dict[str, str]) -> None:
    response = await api.client.get(world.url("logs"), params=params, headers=api.admin)

    assert_error(response, 400)


async def test_limit_is_clamped(api: Api, world: World) -> None:
    await world.log("a", "b", "c")

    for limit, expected in (
        ("1", ["c"]),
        ("2", ["c", "b"]),
        ("99999", ["c", "b", "a"]),
    ):
        response = await api.client.get(
            world.url("logs"), params={"limit": limit}, headers=api.admin
        )
        assert response.status_code == 200, response.text
        assert [e["line"] for e in response.json()["lines"]] == expected, limit


async def test_since_filters_and_is_clamped_to_the_window(api: Api, world: World) -> None:
    await world.log("before")
    middle = datetime.now(UTC)
    await world.log("after")

    newer = await api.client.get(
        world.url("logs"), params={"since": middle.isoformat()}, headers=api.admin
    )
    ancient = await api.client.get(
        world.url("logs"), params={"since": "1970-01-01T00:00:00Z"}, headers=api.admin
    )
    naive = await api.client.get(
        world.url("logs"),
        params={"since": middle.replace(tzinfo=None).isoformat()},
        headers=api.admin,
    )

    assert [e["line"] for e in newer.json()["lines"]] == ["after"]
    assert [e["line"] for e in ancient.json()["lines"]] == ["after", "before"]
    assert [e["line"] for e in naive.json()["lines"]] == ["after"]


async def test_rows_older_than_the_window_are_not_served(api: Api, world: World) -> None:
    await insert_logs(api, world, ages_seconds=[30, 7200])
    live = context(api).settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, telemetry_retention_seconds=3600)
    )
    try:
        response = await api.client.get(world.url("logs"), headers=api.admin)
    finally:
        live.current = before

    assert [e["line"] for e in response.json()["lines"]] == ["30"]
    assert response.json()["retention"]["effective_retention_seconds"] == 3600


async def test_over_long_text_is_cut_not_refused(api: Api, world: World) -> None:
    await world.log("x" * 100_000)
    await world.events("R" * 1000)

    logs = (await api.client.get(world.url("logs"), headers=api.admin)).json()["lines"]
    events = (await api.client.get(world.url("events"), headers=api.admin)).json()["events"]

    assert len(logs[0]["line"]) == 16 * 1024
    assert len(events[0]["reason"]) == 253


async def test_a_full_buffer_drops_and_counts(api: Api, world: World) -> None:
    ctx = context(api)
    agent_id = uuid.UUID(world.agent["id"])
    before = metric(api, "brokkr_ws_telemetry_dropped_total", table="agent_pod_logs")
    with limits(api, telemetry_buffer_rows=100):
        accepted = [
            ctx.telemetry.accept_log_line(
                agent_id, line(world.agent["id"], world.stack["id"], str(i))
            )
            for i in range(105)
        ]
    await ctx.telemetry.flush()

    assert accepted.count(False) == 5 and all(accepted[:100])
    assert await api.count(tables.agent_pod_logs) == 100
    assert metric(api, "brokkr_ws_telemetry_dropped_total", table="agent_pod_logs") == before + 5


# --- retention -----------------------------------------------------------------------------------


async def insert_logs(api: Api, world: World, *, ages_seconds: list[int]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "agent_id": uuid.UUID(world.agent["id"]),
            "stack_id": uuid.UUID(world.stack["id"]),
            "namespace": "web",
            "pod": "web-1",
            "container": "app",
            "ts": now,
            "line": str(age),
            "created_at": now - timedelta(seconds=age),
        }
        for age in ages_seconds
    ]
    async with api.broker.database.transaction() as tx:
        await tx.execute(tables.agent_pod_logs.insert(), rows)


async def insert_events(api: Api, world: World, *, ages_seconds: list[int]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "agent_id": uuid.UUID(world.agent["id"]),
            "stack_id": uuid.UUID(world.stack["id"]),
            "observed_at": now,
            "reason": str(age),
            "message": "",
            "event_type": "Normal",
            "source": None,
            "involved_object": {"kind": "Pod"},
            "created_at": now - timedelta(seconds=age),
        }
        for age in ages_seconds
    ]
    async with api.broker.database.transaction() as tx:
        await tx.execute(tables.agent_k8s_events.insert(), rows)


def metric(api: Api, name: str, **labels: str) -> float:
    value = api.broker.app.state.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


@contextmanager
def retention_seconds(api: Api, seconds: int) -> Iterator[None]:
    live = context(api).settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, telemetry_retention_seconds=seconds)
    )
    try:
        yield
    finally:
        live.current = before


async def test_retention_deletes_telemetry_older_than_the_window(api: Api, world: World) -> None:
    await insert_logs(api, world, ages_seconds=[10, 500, 4000, 30_000])
    await insert_events(api, world, ages_seconds=[10, 4000])
    runs = metric(api, "brokkr_ws_log_eviction_runs_total")
    evicted_logs = metric(api, "brokkr_ws_telemetry_evicted_total", table="agent_pod_logs")
    evicted_events = metric(api, "brokkr_ws_telemetry_evicted_total", table="agent_k8s_events")

    with retention_seconds(api, 3600):
        deleted = await retention.purge_all(context(api), batch=1)

    assert deleted["pod log lines"] == 2 and deleted["kubernetes events"] == 1
    assert await api.count(tables.agent_pod_logs) == 2
    assert await api.count(tables.agent_k8s_events) == 1
    assert metric(api, "brokkr_ws_log_eviction_runs_total") == runs + 1
    assert metric(api, "brokkr_ws_telemetry_evicted_total", table="agent_pod_logs") == (
        evicted_logs + 2
    )
    assert metric(api, "brokkr_ws_telemetry_evicted_total", table="agent_k8s_events") == (
        evicted_events + 1
    )
