"""Blocking twins of the async resources, derived one line per method and typed by mypy.

    class BlockingAgentEvents(Blocking[AgentEvents]):
        get = blocking(AgentEvents.get)            # (event_id: UUID) -> wire.AgentEvent
        iterate = collecting(AgentEvents.iterate)  # an async iterator: a list of every item

Each call runs the coroutine on the owning ``BrokkrClient``'s event loop and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
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


class StreamingMethod(BlockingMethod[R, P, Generator[T, None, None]]):
    """The blocking form of an async-iterator method that may never end (a live stream): an
    iterator pulling one item at a time from the client's loop. Leaving it (``break``, an
    exception, Ctrl-C) closes the stream."""

    def __init__(self, method: Callable[Concatenate[R, P], AsyncIterator[T]]) -> None:
        self._stream = method

    @overload
    def __get__(self, instance: None, owner: type[object]) -> Self: ...
    @overload
    def __get__(
        self, instance: Blocking[R], owner: type[object]
    ) -> Callable[P, Generator[T, None, None]]: ...
    def __get__(
        self, instance: Blocking[R] | None, owner: type[object]
    ) -> Self | Callable[P, Generator[T, None, None]]:
        if instance is None:
            return self
        method, resource, loop = self._stream, instance._resource, instance._loop

        @functools.wraps(types.MethodType(method, resource))
        def call(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
            if loop.is_closed():
                raise BrokkrError("the client is closed")
            return _pull(loop, method(resource, *args, **kwargs))

        return call


def _pull(loop: asyncio.AbstractEventLoop, stream: AsyncIterator[T]) -> Generator[T, None, None]:
    try:
        while True:
            step = asyncio.run_coroutine_threadsafe(_next(stream), loop)
            try:
                found = step.result()
            except BaseException:
                # Interrupted while waiting (Ctrl-C): stop the pending read before closing.
                step.cancel()
                raise
            if not found:
                return
            yield found[0]
    finally:
        closing = getattr(stream, "aclose", None)
        if closing is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(closing(), loop).result(timeout=5)


async def _next(stream: AsyncIterator[T]) -> list[T]:
    """The next item as a one-item list; empty at the end (an item may itself be None)."""
    try:
        return [await anext(stream)]
    except StopAsyncIteration:
        return []


def streaming(
    method: Callable[Concatenate[R, P], AsyncIterator[T]],
) -> StreamingMethod[R, P, T]:
    """An async-iterator method whose blocking form iterates item by item (for streams that
    do not end by themselves; ``collecting`` waits for the last item)."""
    return StreamingMethod(method)
