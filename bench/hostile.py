"""Replays the hostile load cases of issue #9 against a real ``brokkr serve`` on 127.0.0.1.

Cases, each for ``--seconds`` while /healthz and an agent's target-state are polled alongside:
big uploads (four parallel ~1.9 MiB YAML uploads, again and again), big lists (five parallel
``limit=1000`` lists of a stack holding 40 objects of ~1.8 MiB), an auth flood (50 connections
with 32 KiB User-Agents and a wrong PAK) and, on PostgreSQL, a frozen database (a local TCP
proxy between broker and PostgreSQL stops forwarding: the network partition of the trial).
Prints the broker's peak RSS, p99 of /healthz and of target-state polls, and whether each
target is met (RSS <= 300 MiB; /healthz p99 <= 100 ms while uploads are validated; /readyz
answering 503 within 2 s while the database is frozen). Every loop ends at its deadline.

    .venv/bin/python bench/hostile.py --backend sqlite --seconds 10
    .venv/bin/python bench/hostile.py --backend postgresql   # includes the frozen database
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import _harness

HOST = _harness.HOST
MIB = 1024 * 1024
RSS_TARGET_MIB = 300.0
HEALTHZ_P99_TARGET_MS = 100.0
READYZ_FROZEN_TARGET_S = 2.0
POLL_INTERVAL_S = 0.05
PG_PORT = 5432


def manifests(size: int, tag: str) -> str:
    """Multi-document YAML of about ``size`` bytes: many small ConfigMaps, costly to parse."""
    docs: list[str] = []
    total = 0
    index = 0
    while total < size:
        doc = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{tag}-{index}\n"
            f"  labels:\n    app: bench\ndata:\n  key: value-{index}-{tag}\n  other: '{index}'\n"
        )
        docs.append(doc)
        total += len(doc) + 4
        index += 1
    return "---\n".join(docs)


@dataclass
class Samples:
    healthz: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    poll_errors: int = 0
    rss_peak_mib: float = 0.0

    @staticmethod
    def p99(values: list[float]) -> float:
        return _harness.percentile_ms(values, 0.99)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Fleet:
    url: str
    admin: dict[str, str]
    generator: dict[str, str]
    agent: dict[str, str]
    agent_id: str
    stack_id: str


async def setup(url: str, admin_pak: str) -> Fleet:
    admin = {"Authorization": f"Bearer {admin_pak}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        gen = (
            await client.post("/api/v1/generators", json={"name": "bench"}, headers=admin)
        ).json()
        generator = {"Authorization": f"Bearer {gen['pak']}"}
        made = await client.post(
            "/api/v1/agents", json={"name": "a1", "cluster_name": "c1"}, headers=admin
        )
        agent_id = made.json()["agent"]["id"]
        agent = {"Authorization": f"Bearer {made.json()['initial_pak']}"}
        await client.put(f"/api/v1/agents/{agent_id}", json={"status": "ACTIVE"}, headers=admin)
        stack = (await client.post("/api/v1/stacks", json={"name": "s"}, headers=generator)).json()
        await client.post(
            f"/api/v1/stacks/{stack['id']}/deployment-objects",
            content=manifests(20_000, "seed"),
            headers={**generator, "Content-Type": "application/yaml"},
        )
        await client.post(
            f"/api/v1/agents/{agent_id}/targets",
            json={"agent_id": agent_id, "stack_id": stack["id"]},
            headers=admin,
        )
    return Fleet(url, admin, generator, agent, agent_id, stack["id"])


async def observe(
    fleet: Fleet, pid: int, seconds: float, load: Callable[[float], Awaitable[None]]
) -> Samples:
    """Run ``load`` until the deadline while sampling /healthz, target-state polls and RSS."""
    samples = Samples()
    deadline = time.monotonic() + seconds

    async def healthz() -> None:
        async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    await client.get("/healthz")
                samples.healthz.append(time.perf_counter() - started)
                await asyncio.sleep(POLL_INTERVAL_S)

    async def polls() -> None:
        path = f"/api/v1/agents/{fleet.agent_id}/target-state?mode=full"
        async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(path, headers=fleet.agent)
                    if response.status_code != 200:
                        samples.poll_errors += 1
                except httpx.HTTPError:
                    samples.poll_errors += 1
                samples.polls.append(time.perf_counter() - started)
                await asyncio.sleep(POLL_INTERVAL_S)

    async def memory() -> None:
        while time.monotonic() < deadline:
            samples.rss_peak_mib = max(samples.rss_peak_mib, rss_mib(pid))
            await asyncio.sleep(0.1)

    await asyncio.gather(healthz(), polls(), memory(), load(deadline))
    return samples


async def big_uploads(fleet: Fleet, deadline: float) -> None:
    body = manifests(int(1.9 * MIB), "up").encode()
    headers = {**fleet.generator, "Content-Type": "application/yaml"}
    path = f"/api/v1/stacks/{fleet.stack_id}/deployment-objects"

    async def uploader() -> None:
        async with httpx.AsyncClient(base_url=fleet.url, timeout=60) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(path, content=body, headers=headers)

    await asyncio.gather(*(uploader() for _ in range(4)))


async def fill_big_stack(fleet: Fleet) -> str:
    async with httpx.AsyncClient(base_url=fleet.url, timeout=120) as client:
        made = await client.post("/api/v1/stacks", json={"name": "big"}, headers=fleet.generator)
        stack_id: str = made.json()["id"]
        headers = {**fleet.generator, "Content-Type": "application/yaml"}
        for i in range(40):
            await client.post(
                f"/api/v1/stacks/{stack_id}/deployment-objects",
                content=manifests(int(1.8 * MIB), f"big{i}").encode(),
                headers=headers,
            )
    return stack_id


def big_lists(stack_id: str) -> Callable[[Fleet, float], Awaitable[None]]:
    async def load(fleet: Fleet, deadline: float) -> None:
        path = f"/api/v1/stacks/{stack_id}/deployment-objects?limit=1000"

        async def lister() -> None:
            async with httpx.AsyncClient(base_url=fleet.url, timeout=120) as client:
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        await client.get(path, headers=fleet.generator)

        await asyncio.gather(*(lister() for _ in range(5)))

    return load


async def auth_flood(fleet: Fleet, deadline: float) -> None:
    headers = {"User-Agent": "x" * 32 * 1024, "Authorization": "Bearer brokkr_BRnope00_wrong"}

    async def attacker() -> None:
        async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    await client.get("/api/v1/agents", headers=headers)

    await asyncio.gather(*(attacker() for _ in range(50)))


class FreezableProxy:
    """A TCP proxy to PostgreSQL that can stop forwarding bytes without closing connections."""

    def __init__(self) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, PG_PORT)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.close()


def frozen_database(proxy: FreezableProxy) -> Callable[[Fleet, float], Awaitable[None]]:
    async def load(fleet: Fleet, deadline: float) -> None:
        proxy.flowing.clear()
        worst = 0.0
        statuses: set[int] = set()
        try:
            async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    try:
                        statuses.add((await client.get("/readyz")).status_code)
                    except httpx.HTTPError:
                        statuses.add(0)
                    worst = max(worst, time.perf_counter() - started)
                    await asyncio.sleep(0.2)
        finally:
            proxy.flowing.set()
        met = worst <= READYZ_FROZEN_TARGET_S and statuses <= {503}
        print(
            f"  frozen /readyz: statuses {sorted(statuses)}, slowest {worst:.2f} s "
            f"(target: 503 within {READYZ_FROZEN_TARGET_S:.0f} s) {'MET' if met else 'MISSED'}"
        )

    return load


async def recovery(url: str, limit_s: float = 30.0) -> float | None:
    """Seconds until /readyz answers 200 again after the database thaws; None if it never does."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while time.monotonic() - started < limit_s:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(0.2)
    return None


def report(name: str, samples: Samples, *, healthz_target: bool) -> bool:
    rss_ok = samples.rss_peak_mib <= RSS_TARGET_MIB
    healthz_p99 = samples.p99(samples.healthz)
    healthz_ok = not healthz_target or healthz_p99 <= HEALTHZ_P99_TARGET_MS
    print(
        f"{name:<14} rss peak {samples.rss_peak_mib:7.1f} MiB "
        f"({'MET' if rss_ok else 'MISSED'} <= {RSS_TARGET_MIB:.0f})  "
        f"/healthz p99 {healthz_p99:8.1f} ms"
        + (
            f" ({'MET' if healthz_ok else 'MISSED'} <= {HEALTHZ_P99_TARGET_MS:.0f})"
            if healthz_target
            else ""
        )
        + f"  target-state p99 {samples.p99(samples.polls):8.1f} ms, "
        f"{samples.poll_errors} failed of {len(samples.polls)}"
    )
    return rss_ok and healthz_ok


async def main(args: argparse.Namespace) -> int:
    _harness.cancel_on_sigterm()
    proxy = FreezableProxy()
    async with contextlib.AsyncExitStack() as stack:
        if args.backend == "postgresql":
            dsn = await stack.enter_async_context(_harness.scratch_database())
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            database_url = dsn.replace(f":{PG_PORT}/", f":{proxy.port}/")
        else:
            database_url = ""
        broker = await stack.enter_async_context(
            _harness.running_broker(database_url, name="hostile")
        )
        url, pid = broker.url, broker.pid
        fleet = await setup(url, broker.admin_pak)
        print(f"broker pid {pid} on {url} ({args.backend}), {args.seconds:.0f} s per case")
        met = report(
            "idle", await observe(fleet, pid, 2, lambda _: asyncio.sleep(0)), healthz_target=True
        )

        async def run(name: str, load: Callable[[Fleet, float], Awaitable[None]], hz: bool) -> None:
            nonlocal met
            samples = await observe(fleet, pid, args.seconds, lambda d: load(fleet, d))
            met = report(name, samples, healthz_target=hz) and met

        await run("big uploads", big_uploads, True)
        big_stack = await fill_big_stack(fleet)
        await run("big lists", big_lists(big_stack), False)
        await run("auth flood", auth_flood, False)
        if args.backend == "postgresql":
            await run("frozen db", frozen_database(proxy), False)
            took = await recovery(url)
            print(f"  recovery after thaw: {'never' if took is None else f'{took:.1f} s'}")
            met = met and took is not None
    print("all targets met" if met else "some targets missed")
    return 0 if met else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each case")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
