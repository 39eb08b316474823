"""Fixtures for the CLI tests: one real broker for the whole session and an in-process runner.

``broker`` is ``brokkr serve`` as a subprocess on SQLite (the client suite covers PostgreSQL)
with a seeded admin PAK (and diagnostic claims failing after 3 s unanswered); ``admin`` is
a sync ``BrokkrClient`` with that PAK for arranging state, ``generator_pak`` and ``stack`` a
new generator's PAK and a stack it owns;
``cli`` runs ``brokkr`` in-process with typer's ``CliRunner``, with ``BROKKR_CONFIG_DIR`` in a
temporary directory (no real user configuration is read or written) and ``BROKKR_URL`` /
``BROKKR_PAK`` pointing at the session broker unless a test says otherwise.

``invoke`` is ``CliRunner.invoke`` on a command tree built once: the runner rebuilds the whole
typer tree on every call, which costs more than the command itself.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from brokkr.broker.domain import paks
from brokkr.cli.main import app
from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.serving import running_broker
from tests.client import telemetry_rows

# Wide enough that rich never folds a UUID inside a table cell.
COLUMNS = "250"
COMMAND = typer.main.get_command(app)


def invoke(
    runner: CliRunner,
    args: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """What ``runner.invoke(app, args, input=input, env=env, catch_exceptions=False)`` does, on
    ``COMMAND``: streams and ``os.environ`` swapped for the call only, SystemExit turned into
    the exit code; any other exception (a crash) propagates with its traceback."""
    exception: BaseException | None = None
    with runner.isolation(input=input, env=env) as (stdout, stderr, output):
        try:
            COMMAND.main(args=list(args), prog_name="brokkr")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            exception = exc if code else None
        else:
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            captured = stdout.getvalue(), stderr.getvalue(), output.getvalue()
    return Result(
        runner=runner,
        stdout_bytes=captured[0],
        stderr_bytes=captured[1],
        output_bytes=captured[2],
        return_value=None,
        exit_code=code,
        exception=exception,
    )


@dataclass(frozen=True)
class Broker:
    url: str
    admin_pak: str
    # Its SQLite database (SQLAlchemy URL), to write what an agent would have streamed.
    database_url: str = ""


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("cli-broker")
    admin_pak = paks.generate().plaintext
    extra = {
        "BROKKR__BROKER__ADMIN_PAK": admin_pak,
        "BROKKR__LOG__LEVEL": "warning",
        # A claimed diagnostic request left unanswered fails within seconds, not minutes.
        "BROKKR__BROKER__DIAGNOSTIC_CLAIM_TIMEOUT_SECONDS": "3",
        "BROKKR__BROKER__DIAGNOSTIC_CLEANUP_INTERVAL_SECONDS": "0.5",
    }
    with running_broker(root / "data", root / "work", extra_env=extra) as server:
        yield Broker(
            url=server.url,
            admin_pak=admin_pak,
            database_url=telemetry_rows.database_url(root / "data"),
        )


@pytest.fixture(scope="session")
def admin(broker: Broker) -> Iterator[BrokkrClient]:
    """The admin's client, to arrange what a CLI test needs without going through the CLI."""
    with BrokkrClient(broker.url, broker.admin_pak) as client:
        yield client


@pytest.fixture
def generator_pak(admin: BrokkrClient) -> str:
    """A new generator's PAK: commands run as a CI pipeline would."""
    return admin.generators.create(name=unique("ci")).pak


@pytest.fixture
def stack(broker: Broker, generator_pak: str) -> wire.Stack:
    """A new stack owned by ``generator_pak``'s generator."""
    with BrokkrClient(broker.url, generator_pak) as ci:
        return ci.stacks.create(name=unique("web"))


class Cli:
    """``brokkr …`` in-process; its environment is exactly what ``runner.invoke(env=…)`` sets.

    ``pak`` defaults to the admin PAK; ``env`` adds or (with None) removes variables, e.g.
    ``env={"BROKKR_URL": None}``.
    """

    def __init__(self, broker: Broker, config_dir: Path) -> None:
        self.broker = broker
        self.config_dir = config_dir
        self.runner = CliRunner()

    def __call__(
        self,
        *args: str,
        pak: str | None = None,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        environment: dict[str, str | None] = {
            "BROKKR_CONFIG_DIR": str(self.config_dir),
            "BROKKR_URL": self.broker.url,
            "BROKKR_PAK": pak or self.broker.admin_pak,
            "BROKKR_PROFILE": None,
            "COLUMNS": COLUMNS,
        }
        environment.update(env or {})
        return invoke(self.runner, args, input=input, env=environment)

    def ok(
        self,
        *args: str,
        pak: str | None = None,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        """Run and require exit code 0."""
        result = self(*args, pak=pak, input=input, env=env)
        assert result.exit_code == 0, describe(result)
        return result

    def fails(
        self,
        *args: str,
        pak: str | None = None,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        """Run and require a non-zero exit (a crash raises instead)."""
        result = self(*args, pak=pak, input=input, env=env)
        assert result.exit_code != 0, describe(result)
        return result


def describe(result: Result) -> str:
    return (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
        f"exception: {result.exception!r}"
    )


@pytest.fixture
def cli(broker: Broker, tmp_path: Path) -> Cli:
    config_dir = tmp_path / "config"
    return Cli(broker, config_dir)


def unique(prefix: str) -> str:
    """A name no other test of the session uses (the broker is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
