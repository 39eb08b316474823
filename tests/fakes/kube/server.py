"""``FakeKubeApiServer``: the fake served by uvicorn on 127.0.0.1 in a thread of its own.

A thread (rather than the test's event loop) keeps it answering while a test blocks: a sync
client such as lightkube's ``Client``, ``subprocess.run`` of ``brokkr agent run``, or a
``time.sleep``.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
import yaml

from .app import KubeApiApp, RecordedRequest
from .faults import Fault, Faults
from .resources import ResourceType
from .store import Cluster, WriteOptions, now_rfc3339

Obj = dict[str, Any]
HOST = "127.0.0.1"
START_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server, noticing ``should_exit`` within milliseconds instead of 100 ms."""

    async def main_loop(self) -> None:
        ticks = 0
        # on_tick(0) refreshes the Date header: do that about once a second.
        while not await self.on_tick(0 if ticks % 200 == 0 else 1):
            ticks += 1
            await asyncio.sleep(0.005)


class FakeKubeApiServer:
    """A kube-apiserver imitation over real HTTP; see the package docstring for what it does."""

    def __init__(
        self,
        *,
        token: str = "fake-token",  # noqa: S107 - a test double's token
        require_auth: bool = True,
        crd_establish_delay: float = 0.0,
        namespace_content: bool = True,
        namespace_termination_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.crd_establish_delay = crd_establish_delay
        self.namespace_content = namespace_content
        self.namespace_termination_delay = namespace_termination_delay
        self.cluster = self._new_cluster()
        self.faults = Faults()
        self.app = KubeApiApp(self.cluster, self.faults, token=token if require_auth else None)
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the fake kube-apiserver is not started")
        return f"http://{HOST}:{self.port}"

    def _launch(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listener says so; without it every keep-alive request waits ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self._sock, self.port = sock, sock.getsockname()[1]
        self.app.server_address = f"{HOST}:{self.port}"
        self.app.stopping.clear()
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="fake-kube-apiserver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc

    def _started(self) -> bool:
        assert self._server is not None and self._thread is not None
        if self._server.started:
            return True
        if not self._thread.is_alive():
            raise RuntimeError(f"the fake kube-apiserver did not start: {self._error!r}")
        return False

    def _signal_stop(self) -> threading.Thread | None:
        self.app.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        return self._thread

    def _cleanup(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._server, self._thread = None, None, None

    async def start(self) -> FakeKubeApiServer:
        self._launch()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._started():
            if time.monotonic() > deadline:
                raise RuntimeError("the fake kube-apiserver did not start in time")
            await asyncio.sleep(0.005)
        return self

    async def stop(self) -> None:
        thread = self._signal_stop()
        if thread is not None:
            await asyncio.to_thread(thread.join, 15)
        self._cleanup()

    def start_sync(self) -> FakeKubeApiServer:
        self._launch()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._started():
            if time.monotonic() > deadline:
                raise RuntimeError("the fake kube-apiserver did not start in time")
            time.sleep(0.005)
        return self

    def stop_sync(self) -> None:
        thread = self._signal_stop()
        if thread is not None:
            thread.join(15)
        self._cleanup()

    async def __aenter__(self) -> FakeKubeApiServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> FakeKubeApiServer:
        return self.start_sync()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    def _new_cluster(self) -> Cluster:
        return Cluster(
            crd_establish_delay=self.crd_establish_delay,
            namespace_content=self.namespace_content,
            namespace_termination_delay=self.namespace_termination_delay,
        )

    def reset(self) -> None:
        """Back to a fresh cluster: objects, faults and the request log; same URL and token."""
        self.cluster = self._new_cluster()
        self.app.cluster = self.cluster
        self.faults.clear()
        self.app.clear_requests()

    def kubeconfig(self, namespace: str = "default") -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "fake", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": "fake-admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake-admin", "namespace": namespace},
                }
            ],
            "current-context": "fake",
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (http, bearer token, current-context ``fake``)."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        return path

    # --- inspection and seeding ----------------------------------------------------------------

    def _type(self, kind: str, api_version: str | None) -> ResourceType:
        self.cluster.tick()
        return self.cluster.type_for(api_version, kind)

    def _where(self, kind: str, namespace: str | None) -> tuple[ResourceType, str]:
        """A kind's type, and its namespace: ``default`` unless said, ``""`` if cluster-scoped."""
        rt = self._type(kind, None)
        return rt, (namespace or "default") if rt.namespaced else ""

    def objects(
        self, kind: str, namespace: str | None = None, api_version: str | None = None
    ) -> list[Obj]:
        """All objects of a kind (``"ConfigMap"`` or ``"configmaps"``), as the API renders them."""
        return self.cluster.select(self._type(kind, api_version), namespace, [])

    def names(self, kind: str, namespace: str | None = None) -> list[str]:
        return [o["metadata"]["name"] for o in self.objects(kind, namespace)]

    def get(
        self, kind: str, name: str, namespace: str | None = None, api_version: str | None = None
    ) -> Obj | None:
        """One object as GET renders it, or None; namespaced kinds default to ``default``."""
        rt = self._type(kind, api_version)
        return self.cluster.find(rt, (namespace or "default") if rt.namespaced else "", name)

    def create(self, obj: Obj, manager: str = "fake-seed") -> Obj:
        """Create an object as a client would (POST), e.g. one another tool manages."""
        rt = self._type(obj["kind"], obj.get("apiVersion"))
        namespace = (obj.get("metadata") or {}).get("namespace", "default") if rt.namespaced else ""
        return self.cluster.create(rt, namespace, copy.deepcopy(obj), WriteOptions(manager))

    def apply(self, obj: Obj, manager: str, force: bool = False) -> Obj:
        """Server-side apply as ``manager``, e.g. to simulate another controller."""
        rt = self._type(obj["kind"], obj.get("apiVersion"))
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default") if rt.namespaced else ""
        result, _ = self.cluster.patch(
            rt, namespace, meta["name"], "apply", copy.deepcopy(obj), WriteOptions(manager), force
        )
        return result

    def delete(
        self, kind: str, name: str, namespace: str | None = None, propagation: str = "Background"
    ) -> None:
        rt, namespace = self._where(kind, namespace)
        self.cluster.delete(rt, namespace, name, {"propagationPolicy": propagation})

    def set_status(
        self,
        kind: str,
        name: str,
        status: Obj,
        namespace: str | None = None,
        manager: str = "fake-controller",
    ) -> Obj:
        """Replace an object's status through its status subresource, as a controller would."""
        rt, namespace = self._where(kind, namespace)
        current = self.cluster.get(rt, namespace, name)
        current["status"] = status
        opts = WriteOptions(manager, subresource="status" if rt.has_status_subresource else "")
        return self.cluster.update(rt, namespace, name, current, opts)

    def set_pod_log(
        self,
        namespace: str,
        pod: str,
        text: str,
        container: str | None = None,
        *,
        previous: bool = False,
    ) -> None:
        """What ``pods/log`` answers for a pod's container (default: its first container);
        ``previous``: for its previous instance (``?previous=true``), which until then answers
        400 as for a container that never restarted."""
        if container is None:
            found = self.get("Pod", pod, namespace) or {}
            containers = (found.get("spec") or {}).get("containers") or [{}]
            container = containers[0].get("name", "")
        self.cluster.set_pod_log(namespace, pod, str(container), text, previous=previous)

    def append_pod_log(self, namespace: str, pod: str, container: str, *lines: str) -> None:
        """The container writes ``lines`` (without line ends), each stamped now; follow streams
        deliver them."""
        self.cluster.append_pod_log(namespace, pod, container, list(lines))

    def restart_container(self, namespace: str, pod: str, container: str) -> Obj:
        """The kubelet restarts a container: restartCount + 1, a new containerID, an empty log
        for the new instance (the old one answers ``previous=true``), and follow streams of the
        old instance end. The pod as it is now."""
        return self.cluster.restart_container(namespace, pod, container)

    def record_event(
        self, involved: Obj, reason: str, message: str, event_type: str = "Normal"
    ) -> Obj:
        """A core/v1 Event about ``involved``, as a controller would record it."""
        meta = involved["metadata"]
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta['name']}.",
                "namespace": meta.get("namespace", "default"),
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": "fake-controller"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": "fake-controller",
        }
        return self.create(event, manager="fake-controller")

    @property
    def resource_version(self) -> int:
        return self.cluster.resource_version

    # --- request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.requests

    def requests_matching(
        self, method: str | None = None, path_contains: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.app.requests
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in f"{r.path}?{r.query}")
        ]

    def clear_requests(self) -> None:
        self.app.clear_requests()

    # --- faults ----------------------------------------------------------------------------

    def fail(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        status: int = 500,
        times: int | None = 1,
        retry_after: int = 1,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (500 InternalError, 429
        TooManyRequests with Retry-After, 503, 504, ...) instead of serving them."""
        return self.faults.add(
            Fault(
                "status", method, path_contains, status=status, times=times, retry_after=retry_after
            )
        )

    def delay(
        self,
        seconds: float,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Serve the next ``times`` matching requests only after ``seconds``."""
        return self.faults.add(Fault("delay", method, path_contains, seconds=seconds, times=times))

    def timeout(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = 1,
        seconds: float = 30.0,
    ) -> Fault:
        """Hold matching requests ``seconds`` (the client's timeout should fire first), then
        answer 504; a stopping server lets them go at once."""
        return self.faults.add(
            Fault("timeout", method, path_contains, seconds=seconds, times=times)
        )

    def break_discovery(self, group_version: str) -> None:
        """Make ``/apis/<group_version>`` (or ``/api/v1`` for ``"v1"``) answer 503, as an
        unavailable aggregated API does; the group stays listed in ``/apis``."""
        self.faults.break_discovery(group_version)

    def restore_discovery(self, group_version: str) -> None:
        self.faults.restore_discovery(group_version)

    def clear_faults(self) -> None:
        self.faults.clear()
