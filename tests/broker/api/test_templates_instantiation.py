"""Instantiation (POST /api/v1/stacks/{id}/deployment-objects/from-template), rendering without
storing (POST /api/v1/templates/{id}/render) and provenance (GET
/api/v1/deployment-objects/{id}/provenance).

Covers the role matrix (admin, owning generator, other generator, agent, no key; a system
template instantiable by every generator, another generator's template as missing as an unknown
one); the reference order of checks (stack, template, label/annotation compatibility 422
``template_stack_mismatch``, parameters 400 ``invalid_parameters`` listing every violation,
render, the output validated as a pushed object), each refusal storing nothing; the sandbox
(``get_env``, Python internals, an endless loop, a 100 MB output: a clear 4xx and /healthz
answers right after); the object byte-identical to the render endpoint's output; provenance
stored in the same transaction and readable; and the agent's target state changing as for a
pushed object.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.api.templating import ROLES, World, make_world
from tests.broker.conftest import Api, assert_error, auth, limits

PARAMS = {"name": "app", "replicas": 3}


def instantiate_path(w: World) -> str:
    return f"/stacks/{w.stack_id}/deployment-objects/from-template"


async def instantiate(w: World, who: str, template_id: str, parameters: Any) -> Any:
    return await w.send(
        who,
        "POST",
        instantiate_path(w),
        json={"template_id": template_id, "parameters": parameters},
    )


async def objects(api: Api) -> int:
    return await api.count(tables.deployment_objects)


async def test_instantiation_stores_the_rendered_object_and_its_provenance(api: Api) -> None:
    w = await make_world(api)
    template = await w.template("owner")
    rendered = await w.send(
        "owner", "POST", f"/templates/{template['id']}/render", json={"parameters": PARAMS}
    )
    assert rendered.status_code == 200, rendered.text
    preview = rendered.json()
    assert preview["valid"] is True and preview["validation_error"] is None
    assert preview["template_version"] == 1
    before = await objects(api)
    response = await instantiate(w, "owner", template["id"], {"replicas": 3, "name": "app"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["stack_id"] == w.stack_id
    assert created["yaml_content"] == preview["yaml_content"]
    assert created["yaml_checksum"] == preview["yaml_checksum"]
    assert "name: app\n" in created["yaml_content"]
    assert '"3"' in created["yaml_content"]
    assert await objects(api) == before + 1
    provenance = await w.send("owner", "GET", f"/deployment-objects/{created['id']}/provenance")
    assert provenance.status_code == 200, provenance.text
    assert provenance.json()["template_id"] == template["id"]
    assert provenance.json()["template_version"] == 1
    assert provenance.json()["parameters"] == PARAMS
    assert (await api.audit(action="deployment.created"))[0]["resource_id"] == created["id"]
    # Rendering stored nothing but the one instantiated object.
    assert await api.count(tables.rendered_deployment_objects) == 1


async def test_a_pushed_object_has_no_provenance(api: Api) -> None:
    w = await make_world(api)
    pushed = await w.send(
        "owner",
        "POST",
        f"/stacks/{w.stack_id}/deployment-objects",
        json={"yaml_content": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"},
    )
    assert pushed.status_code == 201, pushed.text
    path = f"/deployment-objects/{pushed.json()['id']}/provenance"
    assert_error(await w.send("owner", "GET", path), 404, "provenance_not_found")
    assert_error(await w.send("other-generator", "GET", path), 404, "deployment_object_not_found")


INSTANTIATE = {"admin": 201, "owner": 201, "other-generator": 404, "agent": 404, "nobody": 401}


@pytest.mark.parametrize("who", ROLES)
async def test_instantiation_role_matrix(api: Api, who: str) -> None:
    w = await make_world(api)
    template = await w.template("owner")
    response = await instantiate(w, who, template["id"], PARAMS)
    assert response.status_code == INSTANTIATE[who], response.text
    if response.status_code == 404:
        # The stack is checked first: it is not theirs.
        assert response.json()["code"] == "stack_not_found"
    render = await w.send(
        who, "POST", f"/templates/{template['id']}/render", json={"parameters": PARAMS}
    )
    expected_render = {"other-generator": 404, "agent": 403, "nobody": 401}.get(who, 200)
    assert render.status_code == expected_render, render.text


async def test_system_templates_are_instantiable_foreign_ones_are_missing(api: Api) -> None:
    w = await make_world(api)
    system = await w.template("admin", name="system")
    foreign = await w.template("other-generator", name="foreign")
    assert (await instantiate(w, "owner", system["id"], PARAMS)).status_code == 201
    before = await objects(api)
    assert_error(await instantiate(w, "owner", foreign["id"], PARAMS), 404, "template_not_found")
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_error(await instantiate(w, "owner", unknown, PARAMS), 404, "template_not_found")
    assert await objects(api) == before


async def test_labels_and_annotations_must_be_on_the_stack(api: Api) -> None:
    w = await make_world(api)
    template = await w.template("owner")
    path = f"/templates/{template['id']}"
    assert (await w.send("owner", "POST", f"{path}/labels", json="env:prod")).status_code == 201
    pair = {"key": "tier", "value": "web"}
    assert (await w.send("owner", "POST", f"{path}/annotations", json=pair)).status_code == 201
    before = await objects(api)
    # Compatibility is checked before the parameters: these are invalid too.
    body = assert_error(
        await instantiate(w, "owner", template["id"], {}), 422, "template_stack_mismatch"
    )
    assert body["details"] == {
        "missing_labels": ["env:prod"],
        "missing_annotations": [["tier", "web"]],
    }
    assert await objects(api) == before
    await w.send("owner", "POST", f"/stacks/{w.stack_id}/labels", json="env:prod")
    await w.send("owner", "POST", f"/stacks/{w.stack_id}/annotations", json=pair)
    assert (await instantiate(w, "owner", template["id"], PARAMS)).status_code == 201


async def test_parameter_errors_list_every_violation(api: Api) -> None:
    w = await make_world(api)
    template = await w.template("owner")
    before = await objects(api)
    body = assert_error(
        await instantiate(w, "owner", template["id"], {"replicas": 0}), 400, "invalid_parameters"
    )
    text = str(body["details"])
    assert "replicas" in text and "name" in text
    assert await objects(api) == before


LOOP = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% endfor %}{% endfor %}"
BAD_TEMPLATES: list[tuple[str, dict[str, Any], str]] = [
    ('a: {{ get_env(name="HOME") }}\n', {}, "template_render_failed"),
    ("a: {{ name.__class__ }}\n", {"name": "x"}, "template_render_failed"),
    ("a: {{ name.__class__.__mro__ }}\n", {"name": "x"}, "template_render_failed"),
    ("a: {{ name.upper.__globals__ }}\n", {"name": "x"}, "template_render_failed"),
    (LOOP, {}, "template_fuel_exhausted"),
    (
        "{% for i in range(end=100000) %}{{ big }}{% endfor %}\n",
        {"big": "x" * 1024},
        "template_output_too_large",
    ),
    ("a: {{ missing }}\n", {}, "template_render_failed"),
]


@pytest.mark.parametrize(("content", "parameters", "code"), BAD_TEMPLATES)
async def test_the_sandbox_refuses_with_a_4xx_and_the_broker_stays_up(
    api: Api, content: str, parameters: dict[str, Any], code: str
) -> None:
    w = await make_world(api)
    created = await w.template(
        "owner", name="evil", template_content=content, parameters_schema="{}"
    )
    template_id = created["id"]
    before = await objects(api)
    assert_error(await instantiate(w, "owner", template_id, parameters), 422, code)
    render = await w.send(
        "owner", "POST", f"/templates/{template_id}/render", json={"parameters": parameters}
    )
    assert_error(render, 422, code)
    assert await objects(api) == before
    assert (await api.client.get("/healthz")).status_code == 200


async def test_output_that_is_not_a_deployment_object_is_refused_but_previewed(api: Api) -> None:
    w = await make_world(api)
    created = await w.template(
        "owner", name="bad", template_content="just: {{ name }}\n", parameters_schema="{}"
    )
    template_id = created["id"]
    preview = await w.send(
        "owner", "POST", f"/templates/{template_id}/render", json={"parameters": {"name": "x"}}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["valid"] is False
    assert preview.json()["validation_error"]["code"] == "invalid_deployment_object"
    before = await objects(api)
    assert_error(
        await instantiate(w, "owner", template_id, {"name": "x"}), 422, "invalid_deployment_object"
    )
    assert await objects(api) == before


async def test_instantiation_changes_the_target_state(api: Api) -> None:
    w = await make_world(api)
    agent, agent_pak = await api.create_agent("edge", "c2")
    assert (
        await w.send(
            "admin", "POST", f"/agents/{agent['id']}/targets", json={"stack_id": w.stack_id}
        )
    ).status_code == 201
    template = await w.template("owner")
    state = f"/api/v1/agents/{agent['id']}/target-state"
    before = await api.client.get(state, headers=auth(agent_pak))
    assert before.status_code == 200
    created = (await instantiate(w, "owner", template["id"], PARAMS)).json()
    after = await api.client.get(
        state, headers={**auth(agent_pak), "If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert [o["id"] for o in after.json()] == [created["id"]]


# Lists doubled by `+` cost minijinja no fuel; printing 2^27 items took 48 s and 2.4 GB when
# templates rendered inside the broker's own process.
DOUBLING = '{% set s = ["x"] * 1000 %}' + "{% set s = s + s %}" * 17 + "a: {{ s }}\n"


@pytest.mark.parametrize(
    ("changed", "code"),
    [
        ({"template_render_timeout_seconds": 1.0}, "template_render_timeout"),
        ({"template_render_memory_bytes": 256 * 1024 * 1024}, "template_memory_exceeded"),
    ],
)
async def test_a_template_that_runs_away_is_stopped_in_its_worker(
    api: Api, changed: dict[str, Any], code: str
) -> None:
    w = await make_world(api)
    created = await w.template(
        "owner", name="doubling", template_content=DOUBLING, parameters_schema="{}"
    )
    with limits(api, **({"template_render_timeout_seconds": 30.0} | changed)):
        path = f"/templates/{created['id']}/render"
        render = w.send("owner", "POST", path, json={"parameters": {}})
        task = asyncio.create_task(render)
        # The broker answers while the worker struggles.
        assert (await api.client.get("/healthz")).status_code == 200
        assert_error(await task, 422, code)
    # A fresh worker renders the next template.
    template = await w.template("owner")
    assert (await instantiate(w, "owner", template["id"], PARAMS)).status_code == 201
