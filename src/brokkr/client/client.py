"""The Brokkr client: one object per broker, one attribute per resource.

    async with AsyncBrokkrClient("https://brokkr.example", pak) as brokkr:
        stack = await brokkr.stacks.create(name="web")
        await brokkr.stacks.deploy(stack.id, open("web.yaml").read())

``BrokkrClient`` is the same API for synchronous code (scripts, the CLI): every method blocks.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import TypedDict, Unpack

import httpx

from brokkr.client import tls
from brokkr.client.blocking import run
from brokkr.client.http import Http, Retry
from brokkr.client.resources.agent_events import AgentEvents, BlockingAgentEvents
from brokkr.client.resources.agents import Agents, BlockingAgents
from brokkr.client.resources.audit_logs import AuditLogs, BlockingAuditLogs
from brokkr.client.resources.auth import Auth, BlockingAuth
from brokkr.client.resources.deployment_objects import BlockingDeploymentObjects, DeploymentObjects
from brokkr.client.resources.diagnostics import BlockingDiagnostics, Diagnostics
from brokkr.client.resources.generators import BlockingGenerators, Generators
from brokkr.client.resources.health import BlockingHealth, Health
from brokkr.client.resources.stacks import BlockingStacks, Stacks
from brokkr.client.resources.templates import BlockingTemplates, Templates
from brokkr.client.resources.webhooks import BlockingWebhooks, Webhooks
from brokkr.client.resources.work_orders import BlockingWorkOrders, WorkOrders

DEFAULT_TIMEOUT = 30.0


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``AsyncBrokkrClient``, also taken by ``BrokkrClient``."""

    timeout: float
    verify: tls.Verify
    cert: tls.Cert
    retry: Retry | None
    transport: httpx.AsyncBaseTransport | None


class AsyncBrokkrClient:
    """Talks to one broker with one PAK.

    ``verify`` decides which server certificates are trusted, for REST calls and live streams
    alike: True (the system's CAs), a CA bundle path (PEM file, or a directory of hashed
    certificates: a broker whose certificate a private CA signed), an ``ssl.SSLContext``, or
    False (no verification, testing only). A certificate that fails raises
    ``BrokkrCertificateError`` at once. ``cert`` is a client certificate (path, or (cert, key)
    paths). ``transport`` replaces the network (tests pass an ASGI app).
    """

    def __init__(
        self,
        base_url: str,
        pak: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: tls.Verify = True,
        cert: tls.Cert = None,
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
        self.templates = Templates(self._http)
        self.deployment_objects = DeploymentObjects(self._http)
        self.agent_events = AgentEvents(self._http)
        self.audit_logs = AuditLogs(self._http)
        self.work_orders = WorkOrders(self._http)
        self.health = Health(self._http)
        self.diagnostics = Diagnostics(self._http)
        self.webhooks = Webhooks(self._http)

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


class BrokkrClient:
    """The synchronous client: same resources and methods as ``AsyncBrokkrClient``, blocking.

    It takes the same options, and runs its own event loop in a daemon thread, so it also works
    inside programs that have a running loop of their own. Paging iterators return lists.
    """

    def __init__(
        self, base_url: str, pak: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self._loop = loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="brokkr-client", daemon=True)
        self._thread.start()
        try:
            # httpx binds its connection pool to the loop that creates it: build it on that loop.
            client = self._client = run(loop, _build(base_url, pak, options))
        except BaseException:
            self._stop_loop()
            raise
        self.auth = BlockingAuth(client.auth, loop)
        self.agents = BlockingAgents(client.agents, loop)
        self.generators = BlockingGenerators(client.generators, loop)
        self.stacks = BlockingStacks(client.stacks, loop)
        self.templates = BlockingTemplates(client.templates, loop)
        self.deployment_objects = BlockingDeploymentObjects(client.deployment_objects, loop)
        self.agent_events = BlockingAgentEvents(client.agent_events, loop)
        self.audit_logs = BlockingAuditLogs(client.audit_logs, loop)
        self.work_orders = BlockingWorkOrders(client.work_orders, loop)
        self.health = BlockingHealth(client.health, loop)
        self.diagnostics = BlockingDiagnostics(client.diagnostics, loop)
        self.webhooks = BlockingWebhooks(client.webhooks, loop)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            run(self._loop, self._client.aclose())
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


async def _build(base_url: str, pak: str | None, options: ClientOptions) -> AsyncBrokkrClient:
    return AsyncBrokkrClient(base_url, pak, **options)
