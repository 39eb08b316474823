"""Benchmark: webhook deliveries from commit to a local receiver, one broker and two brokers on
one PostgreSQL database.

Each run uses a fresh database (dropped afterwards) and ``brokkr serve`` subprocesses sharing
one webhook encryption key. ``--subscriptions`` subscriptions (default 10) all match
``workorder.*``; ``--events`` work orders (default 500) are created through the API, spread
over the brokers, each committing one delivery per subscription. A fast receiver (uvicorn, this
process, own thread) answers 204 and records when each delivery arrived.

Prints per phase: deliveries, deliveries/s from the first commit to the last delivery, and
p50/p99 commit-to-delivery latency (receiver's clock minus the envelope ``timestamp``, the
broker's time in the committing transaction; one host, one clock). Target: >= 1,000
deliveries/s with p99 under 1 s. Also checks that every delivery arrived exactly once.

Run:  .venv/bin/python bench/webhooks.py --help
      .venv/bin/python bench/webhooks.py --brokers 1,2 --events 500 --subscriptions 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn

from _harness import (
    HOST,
    build_request,
    cancel_on_sigterm,
    free_port,
    percentile_ms,
    scratch_database,
    stop_process,
    wait_ready,
)

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: bench\n"
CREATE_CONCURRENCY = 32


@dataclass
class Receiver:
    """Records (delivery id, envelope timestamp, arrival wall time) for every POST."""

    port: int = field(default_factory=free_port)
    arrivals: list[tuple[str, datetime, float]] = field(default_factory=list)
    _server: uvicorn.Server | None = None

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        headers = dict(scope["headers"])
        envelope = msgspec.json.decode(body)
        self.arrivals.append(
            (
                headers[b"x-brokkr-delivery-id"].decode(),
                datetime.fromisoformat(envelope["timestamp"]),
                arrived,
            )
        )
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host=HOST,
            port=self.port,
            log_level="warning",
            access_log=False,
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        while not self._server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def start_broker(
    port: int, dsn: str, data_dir: str, env_extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR")}
    env |= {
        "BROKKR__DATABASE__URL": dsn,
        "BROKKR__DATA_DIR": data_dir,
        "BROKKR__LOG__LEVEL": "warning",
        **env_extra,
    }
    brokkr = Path(sys.executable).parent / "brokkr"
    return subprocess.Popen([str(brokkr), "serve", "--host", HOST, "--port", str(port)], env=env)


@contextlib.asynccontextmanager
async def brokers(
    count: int, dsn: str, admin_pak: str, settings: dict[str, str]
) -> AsyncIterator[list[str]]:
    shared = {
        **settings,
        "BROKKR__BROKER__ADMIN_PAK": admin_pak,
        "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY": secrets.token_hex(32),
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    with contextlib.ExitStack() as dirs:
        try:
            for n in range(count):
                data_dir = dirs.enter_context(tempfile.TemporaryDirectory(prefix=f"brokkr-wh{n}-"))
                port = free_port()
                proc = start_broker(port, dsn, data_dir, shared)
                procs.append(proc)
                # One at a time: the first migrates the fresh database.
                await wait_ready(proc, port, build_request("GET", "/readyz", admin_pak), "broker")
                urls.append(f"http://{HOST}:{port}")
            yield urls
        finally:
            for proc in procs:
                stop_process(proc)


async def run_phase(
    count: int, *, events: int, subscriptions: int, settings: dict[str, str]
) -> dict[str, float]:
    from brokkr.broker.domain import paks

    admin_pak = paks.generate().plaintext
    receiver = Receiver()
    receiver.start()
    try:
        async with scratch_database() as dsn, brokers(count, dsn, admin_pak, settings) as urls:
            headers = {"Authorization": f"Bearer {admin_pak}"}
            clients = [
                httpx.AsyncClient(base_url=f"{url}/api/v1", headers=headers, timeout=30)
                for url in urls
            ]
            try:
                first = clients[0]
                agent = (
                    await first.post("/agents", json={"name": "bench", "cluster_name": "bench"})
                ).json()["agent"]
                for n in range(subscriptions):
                    created = await first.post(
                        "/webhooks",
                        json={
                            "name": f"bench-{n}",
                            "url": f"http://{HOST}:{receiver.port}/hook",
                            "event_types": ["workorder.*"],
                            "secret": "bench-signing-secret-0123456789",
                        },
                    )
                    _created(created)
                body = {
                    "work_type": "custom",
                    "yaml_content": JOB,
                    "target_agent_ids": [agent["id"]],
                }
                queue: asyncio.Queue[int] = asyncio.Queue()
                for n in range(events):
                    queue.put_nowait(n)

                async def create(client: httpx.AsyncClient) -> None:
                    while not queue.empty():
                        queue.get_nowait()
                        _created(await client.post("/work-orders", json=body))

                started = time.time()
                await asyncio.gather(
                    *(create(clients[n % len(clients)]) for n in range(CREATE_CONCURRENCY))
                )
                committed = time.time() - started
                expected = events * subscriptions
                deadline = time.monotonic() + 120
                while len(receiver.arrivals) < expected and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                # Anything late would be a duplicate: give it a moment to show up.
                await asyncio.sleep(1.0)
            finally:
                for client in clients:
                    await client.aclose()
    finally:
        receiver.stop()
    arrivals = list(receiver.arrivals)
    ids = Counter(delivery_id for delivery_id, _, _ in arrivals)
    latencies = [arrived - stamped.timestamp() for _, stamped, arrived in arrivals]
    last = max(arrived for _, _, arrived in arrivals)
    return {
        "deliveries": len(arrivals),
        "expected": expected,
        "duplicates": sum(seen - 1 for seen in ids.values()),
        "commit_seconds": committed,
        "per_second": len(arrivals) / (last - started),
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
    }


def _created(response: httpx.Response) -> None:
    if response.status_code != 201:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="1,2", help="broker counts to run (default 1,2)")
    parser.add_argument("--events", type=int, default=500, help="work orders created")
    parser.add_argument("--subscriptions", type=int, default=10, help="deliveries per event")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a broker setting for every broker, e.g. broker.webhook_delivery_concurrency=64",
    )
    args = parser.parse_args()
    settings = {}
    for item in args.setting:
        key, _, value = item.partition("=")
        settings["BROKKR__" + key.upper().replace(".", "__")] = value
    cancel_on_sigterm()
    for count in [int(n) for n in args.brokers.split(",")]:
        result = await run_phase(
            count, events=args.events, subscriptions=args.subscriptions, settings=settings
        )
        print(
            f"brokers={count} deliveries={result['deliveries']}/{result['expected']} "
            f"duplicates={result['duplicates']} "
            f"events_committed_in={result['commit_seconds']:.2f}s "
            f"deliveries/s={result['per_second']:.0f} "
            f"p50={result['p50_ms']:.0f}ms p99={result['p99_ms']:.0f}ms",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
