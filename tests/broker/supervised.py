"""Worker targets for tests/broker/test_supervisor.py: imported by each spawned worker, so it
imports nothing heavy."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from brokkr.broker.supervisor import READY, RELOAD_OTHERS


def exit_at_once(_index: int, _sock: socket.socket, _supervisor: Connection) -> None:
    sys.exit(3)


def serve_until_terminated(index: int, sock: socket.socket, supervisor: Connection) -> None:
    """Notes its start, every SIGHUP and its SIGTERM in files named after its index and pid in
    the directory ``SUPERVISED_DIR``, and accepts nothing. With ``SUPERVISED_RELOAD_OTHERS``,
    worker 0 asks for the others' reload once it is ready."""
    directory = Path(os.environ["SUPERVISED_DIR"])
    stem = f"{index}-{os.getpid()}"
    (directory / f"{stem}.started").write_text(sock.getsockname()[0])
    stopping = False

    def on_hup(_signum: int, _frame: object) -> None:
        with (directory / f"{stem}.hup").open("a") as out:
            out.write("hup\n")

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    supervisor.send(READY)
    if index == 0 and os.environ.get("SUPERVISED_RELOAD_OTHERS"):
        # As after a reload through the API: the others reload, this one not again.
        supervisor.send(RELOAD_OTHERS)
    while not stopping:
        time.sleep(0.05)
    (directory / f"{stem}.stopped").write_text("")


def ignore_sigterm(index: int, _sock: socket.socket, _supervisor: Connection) -> None:
    directory = Path(os.environ["SUPERVISED_DIR"])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (directory / f"{index}-{os.getpid()}.started").write_text("")
    while True:
        time.sleep(0.05)
