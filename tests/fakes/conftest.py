"""Fixtures for the fake kube-apiserver's own tests: one server for the session, reset to a
fresh cluster for every test, and an httpx client authenticated to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture(scope="session")
async def kube_server() -> AsyncIterator[FakeKubeApiServer]:
    async with FakeKubeApiServer() as server:
        yield server


@pytest.fixture
def kube(kube_server: FakeKubeApiServer) -> FakeKubeApiServer:
    kube_server.reset()
    return kube_server


@pytest.fixture
async def api(kube: FakeKubeApiServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {kube.token}", "User-Agent": "fake-tests/1.0"}
    async with httpx.AsyncClient(base_url=kube.url, headers=headers, timeout=10) as client:
        yield client
