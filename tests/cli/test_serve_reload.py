"""``brokkr serve`` reloads its configuration on SIGHUP (D20, issue #9 finding 7), as a real
process on SQLite.

Covers a broker started with ``BROKKR_CONFIG_FILE`` at log level ``info``: after the file says
``debug`` and the process gets SIGHUP, it keeps running and serving, logs the reload, and DEBUG
lines appear for the requests that follow; a file broken afterwards and another SIGHUP leave it
running at the level in force, with the refusal logged naming the key.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cli.serving import Server, running_broker


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def debug_lines(server: Server) -> int:
    return sum(" DEBUG " in line for line in server.stderr().splitlines())


def test_sighup_reloads_the_log_level_of_a_running_broker(tmp_path: Path) -> None:
    config = tmp_path / "brokkr.toml"
    config.write_text('[log]\nlevel = "info"\n', encoding="utf-8")
    env = {"BROKKR_CONFIG_FILE": str(config)}
    with running_broker(tmp_path / "data", tmp_path, extra_env=env) as server:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/readyz").status_code == 200
            assert debug_lines(server) == 0

            config.write_text('[log]\nlevel = "debug"\n', encoding="utf-8")
            server.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded (SIGHUP): 1 setting(s)" in server.stderr())
            assert server.process.poll() is None
            assert client.get("/readyz").status_code == 200
            wait_for(lambda: debug_lines(server) > 0)

            config.write_text('[log]\nlevel = "loud"\n', encoding="utf-8")
            server.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration not reloaded (SIGHUP)" in server.stderr())
            assert "log.level" in server.stderr()
            assert server.process.poll() is None
            before = debug_lines(server)
            assert client.get("/readyz").status_code == 200
            wait_for(lambda: debug_lines(server) > before)
        assert server.terminate() == 0
