"""The fake's ``pods/log`` streams: timestamps, since, follow, and container restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer

PODS = "/api/v1/namespaces/default/pods"
POD = {
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "x"}, {"name": "d", "image": "x"}]},
}


@pytest.fixture
async def pod(api: httpx.AsyncClient) -> None:
    assert (await api.post(PODS, json=POD)).status_code == 201


def stamp_of(line: str) -> datetime:
    stamp, _, _ = line.partition(" ")
    assert len(stamp) == len("2024-01-01T00:00:00.000000000Z"), stamp
    return datetime.fromisoformat(stamp[:26] + "+00:00")


@asynccontextmanager
async def follow(
    api: httpx.AsyncClient, **params: str
) -> AsyncIterator[tuple[asyncio.Queue[str | None], httpx.Response]]:
    """Lines of a follow stream as they arrive; None once the server ended it."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    query = {"container": "c", "follow": "true", **params}
    async with api.stream("GET", f"{PODS}/p/log", params=query) as response:

        async def read() -> None:
            async for line in response.aiter_lines():
                await lines.put(line)
            await lines.put(None)

        reader = asyncio.create_task(read())
        try:
            yield lines, response
        finally:
            reader.cancel()


async def next_line(lines: asyncio.Queue[str | None]) -> str | None:
    return await asyncio.wait_for(lines.get(), timeout=5)


@pytest.mark.usefixtures("pod")
async def test_timestamps_and_since(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    before = datetime.now(UTC)
    kube.append_pod_log("default", "p", "c", "one", "two")
    middle = time.time_ns()
    kube.append_pod_log("default", "p", "c", "three")
    after = datetime.now(UTC)

    plain = await api.get(f"{PODS}/p/log", params={"container": "c"})
    assert plain.text == "one\ntwo\nthree\n"
    stamped = await api.get(f"{PODS}/p/log", params={"container": "c", "timestamps": "true"})
    lines = stamped.text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(before <= stamp_of(line) <= after for line in lines)

    seconds, nanos = divmod(middle, 1_000_000_000)
    since = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    since += f".{nanos // 1000:06d}Z"
    later = await api.get(f"{PODS}/p/log", params={"container": "c", "sinceTime": since})
    assert later.text == "three\n"
    recent = await api.get(f"{PODS}/p/log", params={"container": "c", "sinceSeconds": "60"})
    assert recent.text == "one\ntwo\nthree\n"
    # tailLines applies after since, limitBytes to the stamped text.
    tailed = await api.get(
        f"{PODS}/p/log", params={"container": "c", "tailLines": "1", "timestamps": "true"}
    )
    assert tailed.text.endswith(" three\n")
    cut = await api.get(
        f"{PODS}/p/log", params={"container": "c", "timestamps": "true", "limitBytes": "4"}
    )
    assert cut.text == stamps[0][:4]


@pytest.mark.usefixtures("pod")
async def test_bad_since_is_refused(api: httpx.AsyncClient) -> None:
    both = {"sinceTime": "2024-01-01T00:00:00Z", "sinceSeconds": "5"}
    for params, status in (
        (both, 422),
        ({"sinceTime": "yesterday"}, 400),
        ({"sinceSeconds": "0"}, 400),
        ({"sinceSeconds": "-3"}, 400),
    ):
        refused = await api.get(f"{PODS}/p/log", params={"container": "c", **params})
        assert refused.status_code == status, params


@pytest.mark.usefixtures("pod")
async def test_follow_delivers_later_lines_until_the_pod_is_deleted(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    kube.append_pod_log("default", "p", "c", "early")
    async with follow(api, timestamps="true") as (lines, response):
        assert response.status_code == 200
        assert (await next_line(lines) or "").endswith(" early")
        kube.append_pod_log("default", "p", "c", "later", "and later")
        kube.append_pod_log("default", "p", "d", "another container")
        assert (await next_line(lines) or "").endswith(" later")
        assert (await next_line(lines) or "").endswith(" and later")
        kube.delete("Pod", "p")
        assert await next_line(lines) is None


@pytest.mark.usefixtures("pod")
async def test_a_restart_ends_the_stream_and_starts_an_empty_log(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    kube.append_pod_log("default", "p", "c", "first life")
    async with follow(api) as (lines, _):
        assert await next_line(lines) == "first life"
        restarted = kube.restart_container("default", "p", "c")
        assert await next_line(lines) is None
    [status] = restarted["status"]["containerStatuses"]
    assert status["restartCount"] == 1
    assert status["containerID"].startswith("containerd://")
    again = kube.restart_container("default", "p", "c")["status"]["containerStatuses"][0]
    assert again["restartCount"] == 2
    assert again["containerID"] != status["containerID"]

    assert (await api.get(f"{PODS}/p/log", params={"container": "c"})).text == ""
    kube.append_pod_log("default", "p", "c", "third life")
    async with follow(api) as (lines, _):
        assert await next_line(lines) == "third life"
    previous = await api.get(f"{PODS}/p/log", params={"container": "c", "previous": "true"})
    assert previous.status_code == 200
    assert previous.text == ""  # the second life wrote nothing


@pytest.mark.usefixtures("pod")
async def test_follow_with_limit_bytes_ends_after_them(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    kube.append_pod_log("default", "p", "c", "abc")
    async with follow(api, limitBytes="6") as (lines, _):
        assert await next_line(lines) == "abc"
        kube.append_pod_log("default", "p", "c", "defgh")
        assert await next_line(lines) == "de"
        assert await next_line(lines) is None
