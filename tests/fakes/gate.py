"""A TCP relay in front of a server that can be shut and opened again, to play an outage."""

from __future__ import annotations

import asyncio

from tests.cli.serving import HOST, free_port


class Gate:
    """A TCP relay on a fixed port in front of the broker: ``shut`` refuses connections and
    drops open ones, like a broker outage; ``open`` serves again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._shut = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def open(self) -> None:
        self._shut = False
        self._server = await asyncio.start_server(self._relay, HOST, self.port)

    async def shut(self) -> None:
        assert self._server is not None
        self._shut = True
        # Stop accepting, then let the accepts already under way attach before the server
        # closes: CPython 3.11 leaks the socket of a connection accepted as its server closes
        # (the relays of those connections see ``_shut`` and drop them).
        loop = asyncio.get_running_loop()
        for sock in self._server.sockets:
            loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Known before the upstream connection is made: a connection accepted while the gate
        # shuts is dropped too, never left open through the outage.
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self._target)
        except (OSError, asyncio.CancelledError):
            # The upstream refused, the connect failed under load, or the test ended: drop the
            # client too, never leave its transport open.
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        if self._shut:
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.transport.abort()
            return
        try:
            await asyncio.gather(
                _copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True
            )
        finally:
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    sink.close()
