"""The Brokkr client: one object per broker, one attribute per resource.

    async with AsyncBrokkrClient("https://brokkr.example", pak) as brokkr:
        stack = await brokkr.stacks.create(name="web")
        await brokkr.stacks.deploy(stack.id, open("web.yaml").read())

``BrokkrClient`` is the same API for synchronous code (scripts, the CLI): every method blocks.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import httpx

from brokkr.client.errors import BrokkrError
from brokkr.client.http import Http, Retry
from brokkr.client.resources.agent_events import AgentEvents
from brokkr.client.resources.agents import Agents
from brokkr.client.resources.audit_logs import AuditLogs
from brokkr.client.resources.auth import Auth
from brokkr.client.resources.deployment_objects import DeploymentObjects
from brokkr.client.resources.generators import Generators
from brokkr.client.resources.stacks import Stacks

DEFAULT_TIMEOUT = 30.0


class AsyncBrokkrClient:
    """Talks to one broker with one PAK.

    ``verify`` is True (system CAs), False, or a CA bundle path; ``cert`` a client certificate
    (path, or (cert, key) paths). ``transport`` replaces the network (tests pass an ASGI app).
    """

    def __init__(
        self,
        base_url: str,
        pak: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = Http(
            base_url,
            pak,
            timeout=timeout,
            verify=verify,
            cert=cert,
            retry=retry or Retry(),
            transport=transport,
        )
        self.auth = Auth(self._http)
        self.agents = Agents(self._http)
        self.generators = Generators(self._http)
        self.stacks = Stacks(self._http)
        self.deployment_objects = DeploymentObjects(self._http)
        self.agent_events = AgentEvents(self._http)
        self.audit_logs = AuditLogs(self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBrokkrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Blocking:
    """A resource whose coroutine methods block on the client's private event loop."""

    def __init__(
        self,
        resource: object,
        run: Callable[[Coroutine[Any, Any, Any]], Any],
        closed: Callable[[], bool],
    ) -> None:
        self._resource = resource
        self._run = run
        self._closed = closed

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._resource, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            if self._closed():
                raise BrokkrError("the client is closed")
            outcome = attribute(*args, **kwargs)
            if asyncio.iscoroutine(outcome):
                return self._run(outcome)
            if hasattr(outcome, "__anext__"):
                return self._run(_collect(outcome))
            return outcome

        return blocking


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


class BrokkrClient:
    """The synchronous client: same resources and methods as ``AsyncBrokkrClient``, blocking.

    It runs its own event loop in a daemon thread, so it also works inside programs that have
    a running loop of their own. Paging iterators return lists.
    """

    # Blocking twins of the AsyncBrokkrClient resources (same methods, results not awaitables).
    auth: Any
    agents: Any
    generators: Any
    stacks: Any
    deployment_objects: Any
    agent_events: Any
    audit_logs: Any

    def __init__(self, base_url: str, pak: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="brokkr-client", daemon=True
        )
        self._thread.start()
        try:
            self._client: AsyncBrokkrClient = self._run(_build(base_url, pak, options))
        except BaseException:
            self._stop_loop()
            raise
        for name in (
            "auth",
            "agents",
            "generators",
            "stacks",
            "deployment_objects",
            "agent_events",
            "audit_logs",
        ):
            setattr(
                self, name, _Blocking(getattr(self._client, name), self._run, self._loop.is_closed)
            )

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> BrokkrClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _build(base_url: str, pak: str | None, options: dict[str, Any]) -> AsyncBrokkrClient:
    # httpx binds its connection pool to the loop that creates it: build it on the client's loop.
    return AsyncBrokkrClient(base_url, pak, **options)
