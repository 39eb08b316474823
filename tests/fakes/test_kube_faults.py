"""Fault injection, the request log, the kubeconfig, and use from a separate process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.kube_apiserver import FakeKubeApiServer

CMS = "/api/v1/namespaces/default/configmaps"


async def test_fail_with_500_then_recover(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    kube.fail(method="GET", path_contains="/configmaps", status=500, times=2)
    for _ in range(2):
        failed = await api.get(CMS)
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/json"
        assert failed.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Internal error occurred: injected fault",
            "reason": "InternalError",
            "details": {"causes": [{"message": "injected fault"}]},
            "code": 500,
        }
    assert (await api.get(CMS)).status_code == 200
    statuses = [r.status for r in kube.requests_matching("GET", "/configmaps")]
    assert statuses == [500, 500, 200]


async def test_fail_filters_by_method_and_path(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    fault = kube.fail(method="PATCH", path_contains="fieldManager=brokkr", status=500, times=None)
    assert (await api.get(CMS)).status_code == 200
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}'
    headers = {"Content-Type": "application/apply-patch+yaml"}
    other = await api.patch(f"{CMS}/a?fieldManager=someone", content=body, headers=headers)
    assert other.status_code == 201
    for _ in range(3):
        mine = await api.patch(f"{CMS}/a?fieldManager=brokkr", content=body, headers=headers)
        assert mine.status_code == 500
    assert fault.hits == 3
    kube.clear_faults()
    assert (
        await api.patch(f"{CMS}/a?fieldManager=brokkr", content=body, headers=headers)
    ).status_code == 200


async def test_too_many_requests(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    kube.fail(path_contains="/api/v1", status=429, retry_after=2)
    throttled = await api.get("/api/v1")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert throttled.json()["reason"] == "TooManyRequests"
    assert throttled.json()["details"] == {"retryAfterSeconds": 2}
    assert (await api.get("/api/v1")).status_code == 200


async def test_timeout_and_delay(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    kube.timeout(method="GET", path_contains="/namespaces/default/configmaps")
    with pytest.raises(httpx.ReadTimeout):
        await api.get(CMS, timeout=0.2)
    assert (await api.get(CMS)).status_code == 200

    kube.delay(0.3, path_contains="/version")
    started = time.monotonic()
    assert (await api.get("/version")).status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_request_log(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    await api.post(f"{CMS}?fieldManager=x", json={"metadata": {"name": "a"}})
    [request] = kube.requests_matching("POST")
    assert request.path == CMS
    assert request.params == {"fieldManager": "x"}
    assert request.json() == {"metadata": {"name": "a"}}
    assert request.headers["authorization"] == f"Bearer {kube.token}"
    assert request.status == 201
    kube.clear_requests()
    assert kube.requests == []


async def test_helpers(kube: FakeKubeApiServer) -> None:
    seeded = kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "b"}}
    )
    assert seeded["metadata"]["managedFields"][0]["manager"] == "fake-seed"
    assert kube.get("configmaps", "s", "default") == seeded
    assert kube.names("ConfigMap", "default") == ["kube-root-ca.crt", "s"]
    before = kube.resource_version
    kube.delete("ConfigMap", "s", "default")
    assert kube.resource_version > before
    assert kube.get("ConfigMap", "s", "default") is None
    node = kube.set_status(
        "Node", "fake-node", {"conditions": [{"type": "Ready", "status": "True"}]}
    )
    assert node["status"]["conditions"][0]["type"] == "Ready"


def test_kubeconfig_from_another_process(tmp_path: Path) -> None:
    with FakeKubeApiServer() as kube:  # the sync form, for tests that block
        path = kube.write_kubeconfig(tmp_path / "kubeconfig")
        config = yaml.safe_load(path.read_text())
        assert config["current-context"] == "fake"
        assert config["clusters"][0]["cluster"]["server"] == kube.url
        assert kube.url.startswith("http://127.0.0.1:")
        assert config["users"][0]["user"] == {"token": kube.token}
        assert config["contexts"][0]["context"] == {
            "cluster": "fake",
            "user": "fake-admin",
            "namespace": "default",
        }
        script = textwrap.dedent(
            """
            import sys, httpx, yaml
            config = yaml.safe_load(open(sys.argv[1]))
            server = config["clusters"][0]["cluster"]["server"]
            token = config["users"][0]["user"]["token"]
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server, headers=headers) as client:
                items = client.get("/api/v1/namespaces").json()["items"]
            print(" ".join(item["metadata"]["name"] for item in items))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["default", "kube-node-lease", "kube-public", "kube-system"]


def test_served_by_hand(tmp_path: Path) -> None:
    """``python -m tests.fakes.kube_apiserver`` serves until SIGTERM."""
    kubeconfig = tmp_path / "kubeconfig"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.kube_apiserver", "--kubeconfig", str(kubeconfig)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fake kube-apiserver at http://127.0.0.1:")
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert httpx.get(f"{server}/version", timeout=5).status_code == 200
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
