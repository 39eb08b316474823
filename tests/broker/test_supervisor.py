"""The supervisor of ``brokkr serve --workers N`` with stand-in workers (tests/broker/supervised.py)
in real spawned processes: replacement, signal forwarding, drain, crash loops; and how many
workers a server runs."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from brokkr.broker import main
from brokkr.broker.settings import Settings, load
from brokkr.broker.supervisor import (
    EXIT_CRASH_LOOP,
    EXIT_OK,
    METRICS_DIR_VARIABLE,
    Supervisor,
    cgroup_cpu_quota,
    usable_cores,
)
from tests.broker import supervised


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPERVISED_DIR", str(tmp_path))
    # The supervisor sets the metrics variable for its workers; the test process keeps its own.
    monkeypatch.delenv(METRICS_DIR_VARIABLE, raising=False)
    return tmp_path


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def started(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.started"))


def pid_of(note: Path) -> int:
    return int(note.stem.split("-")[1])


def run_in_background(supervisor: Supervisor, action: Callable[[], None]) -> int:
    """Run the supervisor in this (main) thread while ``action`` runs in another."""
    failure: list[BaseException] = []

    def act() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=act)
    thread.start()
    status = supervisor.run()
    thread.join()
    if failure:
        raise failure[0]
    return status


def test_workers_share_the_socket_are_replaced_hear_sighup_and_drain_on_sigterm(
    listening: socket.socket, notes: Path
) -> None:
    supervisor = Supervisor(
        supervised.serve_until_terminated, sock=listening, count=2, drain_seconds=10
    )

    def scenario() -> None:
        wait_for(lambda: len(started(notes)) == 2)
        assert {note.read_text() for note in started(notes)} == {"127.0.0.1"}
        first = started(notes)[0]
        os.kill(pid_of(first), signal.SIGKILL)
        # The dead worker's slot gets a new process with the same index.
        wait_for(lambda: len(started(notes)) == 3)
        index = first.stem.split("-")[0]
        assert len(list(notes.glob(f"{index}-*.started"))) == 2
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: len(list(notes.glob("*.hup"))) == 2)
        os.kill(os.getpid(), signal.SIGTERM)

    assert run_in_background(supervisor, scenario) == EXIT_OK
    # The workers' metrics directory is gone, and so is the variable naming it.
    assert METRICS_DIR_VARIABLE not in os.environ
    live = [note for note in started(notes) if Path(f"/proc/{pid_of(note)}").exists()]
    assert live == []
    # Both live workers drained (the killed one had no chance to).
    assert len(list(notes.glob("*.stopped"))) == 2


def test_a_reload_asked_by_one_worker_reaches_every_other_once_ready(
    listening: socket.socket, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERVISED_RELOAD_OTHERS", "1")
    supervisor = Supervisor(
        supervised.serve_until_terminated, sock=listening, count=3, drain_seconds=10
    )

    def scenario() -> None:
        wait_for(lambda: len(list(notes.glob("*.hup"))) == 2)
        # A worker started after a reload reloads too once it is ready: it began with the
        # settings read at the server's start.
        replaced = next(notes.glob("1-*.started"))
        os.kill(pid_of(replaced), signal.SIGKILL)
        wait_for(lambda: len(list(notes.glob("*.hup"))) == 3)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    assert run_in_background(supervisor, scenario) == EXIT_OK
    hups = sorted(note.stem.split("-")[0] for note in notes.glob("*.hup"))
    # Never worker 0, which asked (it had reloaded already); each other worker once.
    assert hups == ["1", "1", "2"]
    assert all(note.read_text() == "hup\n" for note in notes.glob("*.hup"))


def test_workers_that_keep_dying_end_the_server_with_a_failure(
    listening: socket.socket, notes: Path
) -> None:
    supervisor = Supervisor(supervised.exit_at_once, sock=listening, count=2, drain_seconds=5)
    started_at = time.monotonic()
    assert supervisor.run() == EXIT_CRASH_LOOP
    assert time.monotonic() - started_at < 60


def test_a_worker_that_ignores_sigterm_is_killed_after_the_drain_period(
    listening: socket.socket, notes: Path
) -> None:
    supervisor = Supervisor(supervised.ignore_sigterm, sock=listening, count=1, drain_seconds=1)

    def scenario() -> None:
        wait_for(lambda: len(started(notes)) == 1)
        os.kill(os.getpid(), signal.SIGTERM)

    assert run_in_background(supervisor, scenario) == EXIT_OK
    [note] = started(notes)
    assert not Path(f"/proc/{pid_of(note)}").exists()


# --- how many workers ----------------------------------------------------------------------


def settings_with(database_url: str | None = None, workers: int | None = None) -> Settings:
    environ = {}
    if database_url:
        environ["BROKKR__DATABASE__URL"] = database_url
    if workers is not None:
        environ["BROKKR__BROKER__WORKERS"] = str(workers)
    return load(environ=environ)


POSTGRES = "postgresql://brokkr@db.example/brokkr"


def test_the_default_is_one_worker_on_sqlite_and_every_usable_core_on_postgresql() -> None:
    assert main.worker_count(settings_with(), None) == 1
    assert main.worker_count(settings_with(POSTGRES), None) == usable_cores()
    assert main.worker_count(settings_with(POSTGRES, workers=3), None) == 3
    # The flag wins over the setting.
    assert main.worker_count(settings_with(POSTGRES, workers=3), 2) == 2
    assert main.worker_count(settings_with(POSTGRES, workers=3), 0) == usable_cores()


@pytest.mark.parametrize(("setting", "flag"), [(None, 2), (4, None)])
def test_more_than_one_worker_on_sqlite_is_refused_with_the_reason(
    setting: int | None, flag: int | None
) -> None:
    with pytest.raises(main.StartupError, match="SQLite allows one writer at a time"):
        main.worker_count(settings_with(workers=setting), flag)
    assert main.worker_count(settings_with(workers=1), None) == 1


def test_the_worker_setting_is_bounded() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"workers": -1}, type=type(Settings().broker))


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "400000 100000\n"}, 4.0),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_cpu_quota_is_read_from_v2_or_v1_files(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_usable_cores_follow_a_container_cpu_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    # 1.5 CPUs: one worker (a second would be throttled, not faster).
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores(tmp_path) == len(os.sched_getaffinity(0))
