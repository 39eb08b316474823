"""Template parameters are validated and templates rendered in a separate worker process.

A template is code written by a generator. Fuel and an output limit bound what minijinja counts,
but not everything a template can make it do: lists doubled by ``+`` cost no fuel, and printing
one of 10^8 items took 48 s and 2.4 GB in the broker's own process. The worker has an address
space limit and is killed when one call overruns its time, so such a template costs the broker a
422 and a fresh worker, never its memory or its event loop. Compiled versions are cached in the
worker, per template version id (a version never changes).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import resource
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

import msgspec

from brokkr.broker.domain import errors, parameter_schemas, templating

# A fresh interpreter rather than a fork of the broker: no copy of its sockets, pools or threads.
_SPAWN = multiprocessing.get_context("spawn")


class Version(msgspec.Struct, frozen=True, kw_only=True):
    """What the worker needs of one template version."""

    id: UUID
    content: str
    # The parameter schema as stored (JSON text): decoded in the worker, once per version.
    schema_json: str


def _limit_memory(max_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


@functools.lru_cache(maxsize=512)
def _compiled(
    version_id: UUID, content: str, schema_json: str
) -> tuple[templating.Compiled, parameter_schemas.ParameterSchema]:
    schema = msgspec.json.decode(schema_json)
    return templating.compile(content), parameter_schemas.compile_schema(schema)


def _render(
    version: Version, parameters: Any, context: Mapping[str, Any], limits: templating.RenderLimits
) -> str:
    template, schema = _compiled(version.id, version.content, version.schema_json)
    parameter_schemas.validate(schema, parameters)
    try:
        return templating.render(template, context, limits)
    except MemoryError as exc:
        raise errors.TemplateMemoryExceeded() from exc


def _serve(connection: Connection, memory_bytes: int) -> None:
    """The worker: one request at a time until the broker closes its end."""
    _limit_memory(memory_bytes)
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, _render(*request))
        except errors.BrokerError as exc:
            answer = (False, exc)
        connection.send(answer)


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.connection, theirs = _SPAWN.Pipe()
        self.process = _SPAWN.Process(
            target=_serve, args=(theirs, memory_bytes), name="brokkr-templates", daemon=True
        )
        self.process.start()
        theirs.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()


class Renderer:
    """One worker process, started on first use and replaced after a timeout or a crash."""

    def __init__(self) -> None:
        self._worker: _Worker | None = None
        self._turn = asyncio.Lock()

    async def render(
        self,
        version: Version,
        parameters: Any,
        *,
        limits: templating.RenderLimits,
        timeout_seconds: float,
        memory_bytes: int,
    ) -> str:
        """Parameters validated against the version's schema (400 listing every violation),
        then the version rendered with them (422s for what the template does wrong)."""
        context: Mapping[str, Any] = parameters if isinstance(parameters, dict) else {}
        loop = asyncio.get_running_loop()
        async with self._turn:
            if self._worker is None or self._worker.memory_bytes != memory_bytes:
                self.close()
                self._worker = await loop.run_in_executor(None, _Worker, memory_bytes)
            worker = self._worker
            request = (version, parameters, context, limits)
            await loop.run_in_executor(None, worker.connection.send, request)
            try:
                ok, result = await asyncio.wait_for(
                    loop.run_in_executor(None, worker.connection.recv), timeout_seconds
                )
            except TimeoutError as exc:
                self.close()
                raise errors.TemplateRenderTimedOut(timeout_seconds) from exc
            except (EOFError, OSError) as exc:
                # The worker died: the allocator aborts when the address-space limit is hit.
                self.close()
                raise errors.TemplateMemoryExceeded() from exc
        if not ok:
            raise result
        text: str = result
        return text

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
