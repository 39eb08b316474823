"""Fixtures shared by the agent's tests.

- ``fake``: the fake kube-apiserver over real HTTP, one per test; ``cluster``: the agent's
  ``KubeCluster`` connected to it with the test module's ``settings`` fixture.
- ``broker``: ``brokkr serve`` as a subprocess on SQLite with a seeded admin PAK, one per module,
  as (url, admin PAK); ``admin``: a client on the admin PAK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from brokkr.agent import kube
from brokkr.agent.kube import KubeCluster
from brokkr.agent.settings import Settings
from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, Retry
from tests.agent.controllers import Controllers
from tests.cli.serving import running_broker
from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApiServer]:
    async with FakeKubeApiServer() as server:
        yield server


@pytest.fixture
def play(fake: FakeKubeApiServer) -> Controllers:
    """The test plays the cluster's controllers; a second namespace, ``other``, exists."""
    fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    return Controllers(fake)


@pytest.fixture
async def cluster(settings: Settings) -> AsyncIterator[KubeCluster]:
    connected = await kube.connect(settings)
    yield connected
    await connected.aclose()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("agent-broker")
    admin_pak = paks.generate().plaintext
    extra = {"BROKKR__BROKER__ADMIN_PAK": admin_pak, "BROKKR__LOG__LEVEL": "warning"}
    with running_broker(root / "data", root / "work", extra_env=extra) as server:
        yield server.url, admin_pak


@pytest.fixture
async def admin(broker: tuple[str, str]) -> AsyncIterator[AsyncBrokkrClient]:
    async with AsyncBrokkrClient(broker[0], broker[1], retry=Retry(attempts=2)) as client:
        yield client
