"""``brokkr deploy --wait --healthy`` end to end: the CLI as a subprocess against ``brokkr
serve``, ``brokkr agent run`` applying to the fake kube-apiserver, and the test playing the
controllers: the command exits 0 once the cluster reports the new object healthy, and 1 with
the failing reason when its pods cannot pull their image."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.agent import controllers as c
from tests.agent.waiting import eventually
from tests.cli.serving import BROKKR, environment
from tests.e2e.conftest import DEADLINE, World, agent_process
from tests.e2e.test_health import HEALTH, manifest
from tests.fakes.kube_apiserver import FakeKubeApiServer


async def start_deploy(world: World, web: c.Obj, tmp_path: Path) -> asyncio.subprocess.Process:
    app = tmp_path / "app.yaml"
    app.write_text(manifest(web))
    env = environment(
        tmp_path / "cli-data",
        {"BROKKR_URL": world.broker.url, "BROKKR_PAK": world.generator_pak},
    )
    return await asyncio.create_subprocess_exec(
        BROKKR,
        "deploy",
        str(world.stack_id),
        "-f",
        str(app),
        "--wait",
        "--healthy",
        "--timeout",
        str(DEADLINE * 2),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    output, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE * 3)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def deploying(
    world: World, kube: FakeKubeApiServer, web: c.Obj, tmp_path: Path
) -> tuple[asyncio.subprocess.Process, c.Controllers]:
    """``brokkr deploy`` started and ``web`` applied by the agent: the test plays the rest."""
    deploy = await start_deploy(world, web, tmp_path)
    name = web["metadata"]["name"]
    await eventually(lambda: kube.get("Deployment", name), timeout=DEADLINE, what=name)
    return deploy, c.Controllers(kube)


async def test_exits_0_once_the_cluster_reports_the_object_healthy(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    web = c.workload("Deployment", "web", replicas=2)
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path, **HEALTH):
        deploy, play = await deploying(world, kube, web, tmp_path)
        play.pods(play.child(web, "ReplicaSet", "web-7c4d"), 2, c.ready_pod())
        generation = play.live(web)["metadata"]["generation"]
        kube.set_status("Deployment", "web", c.available(2, generation))

        code, output = await finish(deploy)

    assert code == 0, output


async def test_exits_1_with_the_reason_when_the_pods_cannot_pull_their_image(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    web = c.workload("Deployment", "web", replicas=1)
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path, **HEALTH):
        deploy, play = await deploying(world, kube, web, tmp_path)
        play.pods(
            play.child(web, "ReplicaSet", "web-7c4d"),
            1,
            c.waiting_pod("ImagePullBackOff", 'Back-off pulling image "nginx:1"'),
        )
        generation = play.live(web)["metadata"]["generation"]
        kube.set_status(
            "Deployment",
            "web",
            {"observedGeneration": generation, "replicas": 1, "unavailableReplicas": 1},
        )

        code, output = await finish(deploy)

    assert code == 1, output
    assert "failing" in output and "ImagePullBackOff" in output, output
