"""/metrics of the workers of one `brokkr serve --workers N`, each a real Python process with
PROMETHEUS_MULTIPROC_DIR set as the supervisor sets it (prometheus_client picks where it keeps
values when it is imported, so this cannot run inside the test process).

Covers counters and histograms summed over the workers, the scraping worker's own counts once;
pool use (refreshed in the background, not by a scrape) and connected agents per worker; the
fleet gauges as the latest count wrote them, whichever worker counted, heartbeat quantiles NaN
when that count found none (never an older worker's figures); and a worker marked dead: its pool
and connection series gone, its counts and its fleet counts kept.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

# One worker of a server: records what ``plan`` says, keeps its pool figures fresh as a served
# worker does (Metrics.start), prints its pid and, for a scrape, the text it renders.
WORKER = """
import asyncio, json, os, sys
from brokkr.broker import metrics as broker_metrics
from brokkr.broker.db.instrumentation import PoolUsage
from brokkr.broker.domain.gauges import Snapshot

plan = json.loads(sys.argv[1])
metrics = broker_metrics.Metrics(worker=plan["worker"])
in_use = {"checked_out": 0}
metrics.watch_pools(
    lambda: [PoolUsage(pool="main", size=5, open=4, checked_out=in_use["checked_out"])]
    if plan["pools"] else []
)
for _ in range(plan["requests"]):
    metrics.observe(endpoint="/api/v1/agents", method="GET", status=200, seconds=0.004)
metrics.ws_connections(plan["connected"])
if plan["counted"] is not None:
    metrics.publish(Snapshot(**plan["counted"]))


async def serve():
    broker_metrics.POOL_REFRESH_SECONDS = 0.01
    metrics.start()
    await asyncio.sleep(0.05)
    in_use["checked_out"] = plan["checked_out"]
    await asyncio.sleep(0.1)
    await metrics.stop()

if plan["pools"]:
    asyncio.run(serve())
print(os.getpid())
if plan["scrape"]:
    sys.stdout.write(metrics.render().decode())
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def snapshot(active_agents: int, heartbeat: dict[str, float]) -> dict[str, Any]:
    return {
        "active_agents": active_agents,
        "heartbeat_age_seconds": heartbeat,
        "stacks": active_agents * 10,
        "work_orders": {"PENDING": active_agents, "CLAIMED": 0, "RETRY_PENDING": 0},
        "outbox_depth": active_agents * 100,
    }


def run_worker(
    directory: Path,
    worker: int,
    *,
    requests: int = 0,
    connected: int = 0,
    checked_out: int | None = None,
    counted: dict[str, Any] | None = None,
    scrape: bool = False,
) -> tuple[int, Samples]:
    plan = {
        "worker": worker,
        "requests": requests,
        "connected": connected,
        "pools": checked_out is not None,
        "checked_out": checked_out,
        "counted": counted,
        "scrape": scrape,
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(plan)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pid, _, text = done.stdout.partition("\n")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return int(pid), samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {
        dict(labels)[label]: value for (sample, labels), value in samples.items() if sample == name
    }


def requests(samples: Samples) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == "brokkr_http_requests_total" and ("endpoint", "/api/v1/agents") in labels
    )


def test_a_scrape_reports_every_worker_and_forgets_only_a_dead_workers_live_series(
    tmp_path: Path,
) -> None:
    run_worker(
        tmp_path,
        0,
        requests=3,
        connected=2,
        checked_out=1,
        counted=snapshot(7, {"0.5": 10.0, "0.9": 20.0, "0.99": 30.0, "1": 40.0}),
    )
    # Worker 1 counts the fleet after worker 0: no agent has sent a heartbeat any more.
    dead_pid, _ = run_worker(
        tmp_path, 1, requests=5, connected=3, checked_out=2, counted=snapshot(9, {})
    )
    _, samples = run_worker(tmp_path, 2, requests=1, scrape=True)

    assert requests(samples) == 3 + 5 + 1
    latency_count = by_label(samples, "brokkr_http_request_duration_seconds_count", "endpoint")
    assert latency_count["/api/v1/agents"] == 9
    # Each worker's pool figures, as its background refresh last wrote them.
    assert by_label(samples, "brokkr_database_pool_checked_out", "worker") == {"0": 1, "1": 2}
    assert by_label(samples, "brokkr_database_pool_size", "worker") == {"0": 5, "1": 5}
    assert by_label(samples, "brokkr_ws_connected_agents", "worker") == {"0": 2, "1": 3, "2": 0}
    # The latest count, not a sum over the workers nor worker 0's older figures.
    assert samples[("brokkr_active_agents", frozenset())] == 9
    assert samples[("brokkr_stacks_total", frozenset())] == 90
    assert samples[("brokkr_webhook_outbox_depth", frozenset())] == 900
    assert by_label(samples, "brokkr_work_orders", "status")["PENDING"] == 9
    quantiles = by_label(samples, "brokkr_agent_heartbeat_age_seconds", "quantile")
    assert set(quantiles) == {"0.5", "0.9", "0.99", "1"}
    assert all(math.isnan(age) for age in quantiles.values())

    # What the supervisor does when worker 1 exits.
    multiprocess.mark_process_dead(dead_pid, str(tmp_path))  # type: ignore[no-untyped-call]
    _, after = run_worker(tmp_path, 2, scrape=True)

    assert requests(after) == 3 + 5 + 1
    assert by_label(after, "brokkr_database_pool_checked_out", "worker") == {"0": 1}
    assert by_label(after, "brokkr_ws_connected_agents", "worker") == {"0": 2, "2": 0}
    assert after[("brokkr_active_agents", frozenset())] == 9
    assert all(
        math.isnan(age)
        for age in by_label(after, "brokkr_agent_heartbeat_age_seconds", "quantile").values()
    )
