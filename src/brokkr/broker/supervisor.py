"""The supervising process of ``brokkr serve --workers N``: N worker processes share one listening
socket (bound here, once), a worker that dies is replaced, SIGTERM/SIGINT drain every worker and
SIGHUP reaches each of them. Workers that keep dying end the supervisor with a non-zero status, so
whatever runs it (Kubernetes, systemd) sees a broken server rather than a quiet restart loop.

It knows nothing of the broker: a worker is ``target(index, sock)`` in a fresh interpreter
(multiprocessing's spawn start method; nothing of this process's state is inherited)."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from prometheus_client import multiprocess

log = logging.getLogger(__name__)

# More worker exits than this within CRASH_WINDOW_SECONDS is a crash loop: the server gives up.
MAX_EXITS = 5
CRASH_WINDOW_SECONDS = 60.0
# A worker replaced again soon after its last start waits this long first, so a worker failing at
# start (database away) does not spin.
RESTART_DELAY_SECONDS = 0.5
# Exit statuses of the supervisor.
EXIT_OK = 0
EXIT_CRASH_LOOP = 1
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CGROUP_ROOT = Path("/sys/fs/cgroup")

# A worker: its index, the shared socket, and its end of a pipe to the supervisor, on which it
# sends READY once it reloads on SIGHUP (before, SIGHUP would end it), and RELOAD_OTHERS after
# reloading its configuration through the API.
Target = Callable[[int, socket.socket, Connection], None]
READY = "ready"
RELOAD_OTHERS = "reload-others"


def usable_cores(cgroup: Path = CGROUP_ROOT) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (a
    container's CPU limit, rounded down), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, else v1 CFS quota); None when unlimited."""
    try:
        fields = (root / "cpu.max").read_text().split()
    except OSError:
        fields = []
    if len(fields) == 2:
        if fields[0] == "max":
            return None
        with contextlib.suppress(ValueError):
            return int(fields[0]) / int(fields[1])
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


@dataclass
class _Slot:
    index: int
    process: BaseProcess
    # What the worker asks of the supervisor; None once the worker closed its end.
    requests: Connection | None
    # SIGHUP is sent once the worker is READY: a reload asked before then is owed to it.
    ready: bool = False
    reload_owed: bool = False
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs ``count`` workers on ``sock`` until told to stop; ``run()`` returns the exit status.

    ``drain_seconds``: how long workers may take to finish after SIGTERM before they are killed.
    """

    def __init__(
        self, target: Target, *, sock: socket.socket, count: int, drain_seconds: float
    ) -> None:
        self._target = target
        self._sock = sock
        self._count = count
        self._drain_seconds = drain_seconds
        self._context = multiprocessing.get_context("spawn")
        self._slots: dict[int, _Slot] = {}
        self._exits: deque[float] = deque()
        self._signals: deque[int] = deque()
        self._metrics_dir: str | None = None
        self._previous_metrics_dir: str | None = None
        # After a reload, a new worker reloads too once ready: it started with the settings
        # read at the server's start.
        self._reloaded = False

    def run(self) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        try:
            self._prepare_metrics_dir()
            for index in range(self._count):
                self._start(index)
            return self._supervise(wake_read)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wake_read.close()
            wake_write.close()
            if self._metrics_dir is not None:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)
                # What this process starts later must not be pointed at the removed directory.
                if self._previous_metrics_dir is None:
                    os.environ.pop(METRICS_DIR_VARIABLE, None)
                else:
                    os.environ[METRICS_DIR_VARIABLE] = self._previous_metrics_dir

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only noted here: the loop acts on it, woken by the wakeup fd.
        self._signals.append(signum)

    def _prepare_metrics_dir(self) -> None:
        # prometheus_client reads the variable when a worker imports it: every worker then keeps
        # its figures in files there, and /metrics (in any worker) adds them all up. A fresh
        # directory per server: files left by an earlier run would be counted again.
        self._metrics_dir = tempfile.mkdtemp(prefix="brokkr-metrics-")
        self._previous_metrics_dir = os.environ.get(METRICS_DIR_VARIABLE)
        os.environ[METRICS_DIR_VARIABLE] = self._metrics_dir

    def _start(self, index: int) -> None:
        requests, worker_end = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._target,
            args=(index, self._sock, worker_end),
            name=f"brokkr-worker-{index}",
        )
        process.start()
        # Only the worker holds the sending end: its death reads as the end of the pipe.
        worker_end.close()
        self._slots[index] = _Slot(index, process, requests, reload_owed=self._reloaded)
        log.info("broker worker started", extra={"fields": {"worker": index, "pid": process.pid}})

    def _supervise(self, wake: socket.socket) -> int:
        while True:
            sentinels = {slot.process.sentinel: slot for slot in self._slots.values()}
            asking = {slot.requests: slot for slot in self._slots.values() if slot.requests}
            ready = wait([wake, *sentinels, *asking], timeout=None)
            if wake in ready:
                _drain(wake)
            for connection, asker in asking.items():
                if connection in ready:
                    self._answer(asker, connection)
            while self._signals:
                signum = self._signals.popleft()
                if signum == signal.SIGHUP:
                    self._reload(self._slots.values())
                    log.info("configuration reload (SIGHUP) sent to every worker")
                else:
                    self._stop()
                    return EXIT_OK
            for sentinel in ready:
                dead = sentinels.get(sentinel) if isinstance(sentinel, int) else None
                if dead is not None and not self._replace(dead):
                    self._stop()
                    return EXIT_CRASH_LOOP

    def _answer(self, slot: _Slot, connection: Connection) -> None:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            connection.close()
            slot.requests = None
            return
        if request == READY:
            slot.ready = True
            if slot.reload_owed:
                self._reload([slot])
        elif request == RELOAD_OTHERS:
            self._reload([other for other in self._slots.values() if other is not slot])
            log.info(
                "configuration reload (API) relayed to the other workers",
                extra={"fields": {"worker": slot.index}},
            )

    def _replace(self, slot: _Slot) -> bool:
        """Start a new worker in a dead one's place; False when workers keep dying."""
        process = slot.process
        process.join()
        if slot.requests is not None:
            slot.requests.close()
        pid = process.pid
        if pid is not None and self._metrics_dir is not None:
            # Its live gauges (connected agents, pools) go; its counters stay counted.
            multiprocess.mark_process_dead(pid, self._metrics_dir)  # type: ignore[no-untyped-call]
        now = time.monotonic()
        self._exits.append(now)
        while self._exits and now - self._exits[0] > CRASH_WINDOW_SECONDS:
            self._exits.popleft()
        fields = {"worker": slot.index, "pid": pid, "exit": _describe_exit(process.exitcode)}
        if len(self._exits) > MAX_EXITS:
            log.error(
                "broker workers keep exiting (%d exits within %gs); stopping the server",
                len(self._exits),
                CRASH_WINDOW_SECONDS,
                extra={"fields": fields},
            )
            del self._slots[slot.index]
            return False
        log.warning("broker worker exited; starting another", extra={"fields": fields})
        if now - slot.started < CRASH_WINDOW_SECONDS / MAX_EXITS:
            time.sleep(RESTART_DELAY_SECONDS)
        self._start(slot.index)
        return True

    def _reload(self, slots: Iterable[_Slot]) -> None:
        self._reloaded = True
        for slot in slots:
            slot.reload_owed = not slot.ready
            if slot.ready and slot.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, signal.SIGHUP)

    def _forward(self, signum: int) -> None:
        for slot in self._slots.values():
            if slot.process.pid is not None and slot.process.is_alive():
                os.kill(slot.process.pid, signum)

    def _stop(self) -> None:
        """SIGTERM every worker and wait for them to drain; kill what is left after the grace
        period, or at once on a second SIGTERM/SIGINT."""
        self._forward(signal.SIGTERM)
        deadline = time.monotonic() + self._drain_seconds
        pending = [slot.process for slot in self._slots.values()]
        self._signals.clear()
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or any(s != signal.SIGHUP for s in self._signals):
                break
            wait([process.sentinel for process in pending], timeout=min(remaining, 0.5))
            pending = [process for process in pending if process.is_alive()]
        for process in pending:
            log.warning(
                "broker worker did not stop in time; killing it",
                extra={"fields": {"pid": process.pid}},
            )
            process.kill()
        for slot in self._slots.values():
            slot.process.join()
        self._slots.clear()


def _drain(wake: socket.socket) -> None:
    try:
        while wake.recv(512):
            pass
    except BlockingIOError:
        pass


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"status {code}"


def watch_parent() -> None:
    """In a worker: stop (as on SIGTERM) when the supervisor is gone, killed without the chance
    to stop its workers; an orphaned worker would otherwise hold the port and the database."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="brokkr-parent-watch", daemon=True).start()
