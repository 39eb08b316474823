"""Blocking twins of the async resources, derived one line per method and typed by mypy.

    class BlockingAgentEvents(Blocking[AgentEvents]):
        get = blocking(AgentEvents.get)            # (event_id: UUID) -> wire.AgentEvent
        iterate = collecting(AgentEvents.iterate)  # an async iterator: a list of every item

Each call runs the coroutine on the owning ``BrokkrClient``'s event loop and waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from brokkr.client.errors import BrokkrError

R = TypeVar("R")
P = ParamSpec("P")
T = TypeVar("T")


def run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on ``loop`` (running in another thread) and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


class Blocking(Generic[R]):
    """A resource whose methods block on the client's private event loop."""

    def __init__(self, resource: R, loop: asyncio.AbstractEventLoop) -> None:
        self._resource = resource
        self._loop = loop


class BlockingMethod(Generic[R, P, T]):
    """The blocking form of one coroutine method of ``R``: same parameters, returns ``T``."""

    def __init__(self, method: Callable[Concatenate[R, P], Coroutine[Any, Any, T]]) -> None:
        self._method = method

    @overload
    def __get__(self, instance: None, owner: type[object]) -> Self: ...
    @overload
    def __get__(self, instance: Blocking[R], owner: type[object]) -> Callable[P, T]: ...
    def __get__(self, instance: Blocking[R] | None, owner: type[object]) -> Self | Callable[P, T]:
        if instance is None:
            return self
        method, resource, loop = self._method, instance._resource, instance._loop

        @functools.wraps(types.MethodType(method, resource))  # help() shows the bound signature
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            if loop.is_closed():
                raise BrokkrError("the client is closed")
            return run(loop, method(resource, *args, **kwargs))

        return call


def blocking(
    method: Callable[Concatenate[R, P], Coroutine[Any, Any, T]],
) -> BlockingMethod[R, P, T]:
    """A coroutine method whose blocking form returns the coroutine's result."""
    return BlockingMethod(method)


def collecting(
    method: Callable[Concatenate[R, P], AsyncIterator[T]],
) -> BlockingMethod[R, P, list[T]]:
    """An async-iterator method whose blocking form returns every item in a list."""

    @functools.wraps(method)
    async def collect(resource: R, /, *args: P.args, **kwargs: P.kwargs) -> list[T]:
        return [item async for item in method(resource, *args, **kwargs)]

    return BlockingMethod(collect)
