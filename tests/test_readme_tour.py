"""README's "A short tour" runs as written, against a real broker (issue 10 finding 11).

Covers: the tour's ``sh`` block, read from README.md (so the two cannot drift apart), runs in
``bash -eu`` from a folder holding ``examples/`` and the broker's ``.brokkr`` data dir, with
only ``localhost:3000`` replaced by the test broker's address; every command succeeds; and the
broker then holds what the tour says: an active, labelled agent that reported SUCCESS for the
object deployed from examples/web/ (both manifests), which has left its incremental target
state but not the full one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from brokkr.client import BrokkrClient
from tests.cli.serving import environment, running_broker

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR_HEADING = "## A short tour"
TOUR_URL = "http://localhost:3000"


def tour_script() -> str:
    """Every ```sh block of the tour section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, "the README tour has no ```sh block"
    script = "\n".join(blocks)
    assert TOUR_URL in script
    return script


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    script = tour_script()
    assert shutil.which("bash") and shutil.which("curl"), "the tour needs bash and curl"
    workdir = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", workdir / "examples")
    data = workdir / ".brokkr"
    with running_broker(data, tmp_path / "logs") as server:
        env = environment(data)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["BROKKR_CONFIG_DIR"] = str(tmp_path / "config")
        for name in ("BROKKR_URL", "BROKKR_PAK", "BROKKR_PROFILE"):
            env.pop(name, None)
        env["COLUMNS"] = "200"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.replace(TOUR_URL, server.url)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert "error" not in result.stderr.lower(), result.stderr

        admin_pak = (data / "admin.pak").read_text(encoding="utf-8").strip()
        with BrokkrClient(server.url, admin_pak) as admin:
            agent = admin.agents.search(name="edge-1", cluster_name="prod-eu")
            assert agent.status == "ACTIVE"
            assert [label.label for label in admin.agents.list_labels(agent.id)] == ["env:prod"]
            stack = admin.stacks.find("web")
            assert stack is not None
            [deployed] = admin.stacks.list_deployment_objects(stack.id, limit=10)
            for manifest in sorted((ROOT / "examples" / "web").glob("*.yaml")):
                assert manifest.read_text(encoding="utf-8").strip() in deployed.yaml_content
            [event] = admin.agent_events.list(deployment_object_id=deployed.id)
            assert (event.agent_id, event.status) == (agent.id, "SUCCESS")
            assert not admin.agents.target_state(agent.id).objects
            full = admin.agents.target_state(agent.id, full=True).objects or []
            assert [item.id for item in full] == [deployed.id]
        assert str(deployed.id) in result.stdout  # the tour printed the events it reported
