"""Helpers to run the real ``brokkr`` console script as a subprocess on 127.0.0.1.

Output goes to files (never pipes, which could fill up and block the broker); the process is
always terminated, then killed if needed, when the context exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BROKKR = str(Path(sys.executable).with_name("brokkr"))
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def environment(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment (already free of BROKKR__*), plus the data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKKR__", "BROKKR_CONFIG"))}
    env["BROKKR__DATA_DIR"] = str(data_dir)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BROKKR, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"broker exited with {self.process.returncode}:\n{self.stderr()}"
                    )
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"broker not ready within {timeout}s:\n{self.stderr()}")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait; returns the exit code (raises on timeout)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def running_broker(
    data_dir: Path, workdir: Path, *, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """``brokkr serve --host 127.0.0.1 --port <free>``, ready to serve when yielded."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    stdout_path = workdir / f"serve-{port}.out"
    stderr_path = workdir / f"serve-{port}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [BROKKR, "serve", "--host", HOST, "--port", str(port)],
            env=environment(data_dir, extra_env),
            cwd=workdir,
            stdout=out,
            stderr=err,
        )
    server = Server(process, port, stdout_path, stderr_path)
    try:
        server.wait_ready()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
