"""Templates: GET/POST /api/v1/templates, GET/PUT/DELETE /api/v1/templates/{id}, and their
labels and annotations.

Covers the role matrix of every endpoint (admin, owning generator, other generator, agent, no
key): system templates readable by every generator but changed only by admins, a generator's
template as missing as an unknown one to another generator (404 ``template_not_found``),
agents refused (403 ``templates_not_accessible``), no key 401; versions (re-posting a name and
updating make the next version, labels and annotations carried over, 20 concurrent updates
give 20 consecutive versions); soft delete; bad input refused with nothing stored (content that
does not compile, with line and column; a schema that is not JSON or not a schema; a remote or
file ``$ref``; a 5 MB template); audit records; and that the broker answers /healthz right after.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.api.templating import ROLES, SCHEMA, make_world, template_body
from tests.broker.conftest import Api, assert_error

FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "name",
    "description",
    "generator_id",
    "version",
    "template_content",
    "parameters_schema",
    "checksum",
}


async def live_templates(api: Api) -> int:
    return await api.count(tables.stack_templates, tables.stack_templates.c.deleted_at.is_(None))


async def test_create_sets_the_owner_by_role_and_agents_are_refused(api: Api) -> None:
    w = await make_world(api)
    system = await w.template("admin", name="system")
    own = await w.template("owner", name="own")
    assert set(own) == FIELDS
    assert system["generator_id"] is None
    assert own["generator_id"] == w.owner_id
    assert (own["version"], own["deleted_at"], own["description"]) == (1, None, None)
    assert len(own["checksum"]) == 64
    assert_error(
        await w.send("agent", "POST", "/templates", json=template_body()),
        403,
        "templates_not_accessible",
    )
    assert_error(await w.send("nobody", "POST", "/templates", json=template_body()), 401)
    assert await live_templates(api) == 2
    audited = await api.audit(action="template.created")
    assert {entry["resource_id"] for entry in audited} == {system["id"], own["id"]}


@pytest.mark.parametrize(
    ("who", "sees"),
    [("admin", {"system", "own", "foreign"}), ("owner", {"system", "own"})],
)
async def test_list_shows_system_then_own(api: Api, who: str, sees: set[str]) -> None:
    w = await make_world(api)
    await w.template("owner", name="own")
    await w.template("admin", name="system")
    await w.template("other-generator", name="foreign")
    response = await w.send(who, "GET", "/templates")
    assert response.status_code == 200, response.text
    names = [t["name"] for t in response.json()]
    assert set(names) == sees
    if who == "owner":
        assert names == ["system", "own"]


async def test_list_is_refused_to_agents_and_strangers(api: Api) -> None:
    w = await make_world(api)
    assert_error(await w.send("agent", "GET", "/templates"), 403, "templates_not_accessible")
    assert_error(await w.send("nobody", "GET", "/templates"), 401)


READ = {"admin": 200, "owner": 200, "other-generator": 404, "agent": 403, "nobody": 401}
SYSTEM_READ = {"admin": 200, "owner": 200, "other-generator": 200, "agent": 403, "nobody": 401}


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("suffix", ["", "/labels", "/annotations"])
async def test_read_matrix(api: Api, who: str, suffix: str) -> None:
    w = await make_world(api)
    own = await w.template("owner")
    system = await w.template("admin", name="system")
    for template, expected in ((own, READ[who]), (system, SYSTEM_READ[who])):
        response = await w.send(who, "GET", f"/templates/{template['id']}{suffix}")
        assert response.status_code == expected, response.text
        if expected == 404:
            # Exactly the answer for an unknown id: no existence oracle.
            assert response.json()["code"] == "template_not_found"


WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "", template_body()),
    ("DELETE", "", None),
    ("POST", "/labels", "env:prod"),
    ("POST", "/annotations", {"key": "tier", "value": "web"}),
]
WRITE = {"admin": (200, 201, 204), "owner": (200, 201, 204)}


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
async def test_write_matrix(api: Api, who: str, method: str, suffix: str, body: Any) -> None:
    w = await make_world(api)
    own = await w.template("owner")
    system = await w.template("admin", name="system")
    before = await api.count(tables.stack_templates)
    expected_own = {"other-generator": 404, "agent": 403, "nobody": 401}
    expected_system = {"owner": 403, "other-generator": 403, "agent": 403, "nobody": 401}
    for template, refused in ((own, expected_own), (system, expected_system)):
        response = await w.send(who, method, f"/templates/{template['id']}{suffix}", json=body)
        if who in refused:
            assert response.status_code == refused[who], response.text
            if refused[who] == 403 and who != "agent":
                assert response.json()["code"] == "template_not_owned"
        else:
            assert response.status_code in WRITE[who], response.text
    if who not in WRITE:
        assert await api.count(tables.stack_templates) == before
        assert await live_templates(api) == before
        assert await api.count(tables.template_labels) == 0
        assert await api.count(tables.template_annotations) == 0


async def test_unknown_and_deleted_templates_are_404(api: Api) -> None:
    w = await make_world(api)
    own = await w.template("owner")
    assert (await w.send("owner", "DELETE", f"/templates/{own['id']}")).status_code == 204
    for path in (f"/templates/{own['id']}", "/templates/00000000-0000-0000-0000-000000000000"):
        assert_error(await w.send("admin", "GET", path), 404, "template_not_found")
        assert_error(await w.send("admin", "PUT", path, json=template_body()), 404)
        assert_error(await w.send("admin", "DELETE", path), 404, "template_not_found")
    assert (await api.audit(action="template.deleted"))[0]["resource_id"] == own["id"]


async def test_versions_follow_per_owner_and_name_and_keep_labels(api: Api) -> None:
    w = await make_world(api)
    first = await w.template("owner", description="v1")
    assert (
        await w.send("owner", "POST", f"/templates/{first['id']}/labels", json="env:prod")
    ).status_code == 201
    annotation = {"key": "tier", "value": "web"}
    assert (
        await w.send("owner", "POST", f"/templates/{first['id']}/annotations", json=annotation)
    ).status_code == 201
    updated = await w.send(
        "owner",
        "PUT",
        f"/templates/{first['id']}",
        json={"template_content": "x: {{ name }}\n", "parameters_schema": "{}"},
    )
    assert updated.status_code == 200, updated.text
    second = updated.json()
    assert (second["version"], second["name"], second["description"]) == (2, "web", "v1")
    assert second["id"] != first["id"]
    assert second["template_content"] == "x: {{ name }}\n"
    labels = (await w.send("owner", "GET", f"/templates/{second['id']}/labels")).json()
    assert [label["label"] for label in labels] == ["env:prod"]
    annotations = (await w.send("owner", "GET", f"/templates/{second['id']}/annotations")).json()
    assert [(a["key"], a["value"]) for a in annotations] == [("tier", "web")]
    # The addressed version stays as it was.
    kept = (await w.send("owner", "GET", f"/templates/{first['id']}")).json()
    assert kept == first
    # Re-posting the name is the next version; another owner's family starts at 1.
    assert (await w.template("owner"))["version"] == 3
    assert (await w.template("other-generator"))["version"] == 1
    assert (await w.template("admin"))["version"] == 1
    assert (await api.audit(action="template.updated"))[0]["resource_id"] == second["id"]


async def test_concurrent_updates_make_consecutive_versions(api: Api) -> None:
    w = await make_world(api)
    first = await w.template("owner")
    body = {"template_content": "x: {{ name }}\n", "parameters_schema": "{}"}
    responses = await asyncio.gather(
        *(w.send("owner", "PUT", f"/templates/{first['id']}", json=body) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 22))


@pytest.mark.parametrize("who", ["owner", "admin"])
async def test_concurrent_new_versions_of_a_family_are_consecutive(api: Api, who: str) -> None:
    """Re-posting a name and updating different versions lock no common row: versions are
    assigned under the family's lock."""
    w = await make_world(api)
    first = await w.template(who)
    second = await w.template(who)
    body = {"template_content": "x: {{ name }}\n", "parameters_schema": "{}"}
    calls = [w.send(who, "POST", "/templates", json=template_body()) for _ in range(10)]
    calls += [w.send(who, "PUT", f"/templates/{t['id']}", json=body) for t in (first, second) * 5]
    responses = await asyncio.gather(*calls)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(3, 23))


async def test_label_and_annotation_errors(api: Api) -> None:
    w = await make_world(api)
    own = await w.template("owner")
    path = f"/templates/{own['id']}"
    assert (await w.send("owner", "POST", f"{path}/labels", json={"label": "a"})).status_code == 201
    assert_error(
        await w.send("owner", "POST", f"{path}/labels", json="a"), 409, "template_label_exists"
    )
    assert_error(await w.send("owner", "POST", f"{path}/labels", json="has space"), 422)
    assert_error(
        await w.send("owner", "DELETE", f"{path}/labels/b"), 404, "template_label_not_found"
    )
    assert (await w.send("owner", "DELETE", f"{path}/labels/a")).status_code == 204
    pair = {"key": "k", "value": "v"}
    assert (await w.send("owner", "POST", f"{path}/annotations", json=pair)).status_code == 201
    assert_error(
        await w.send("owner", "POST", f"{path}/annotations", json=pair),
        409,
        "template_annotation_exists",
    )
    assert_error(
        await w.send("owner", "POST", f"{path}/annotations", json={"key": "k 2", "value": "v"}), 422
    )
    assert_error(
        await w.send("owner", "DELETE", f"{path}/annotations/x"),
        404,
        "template_annotation_not_found",
    )
    assert (await w.send("owner", "DELETE", f"{path}/annotations/k")).status_code == 204
    actions = [e["action"] for e in await api.audit(resource_type="template")]
    for action in ("label_added", "label_removed", "annotation_added", "annotation_removed"):
        assert f"template.{action}" in actions


BAD_BODIES: list[tuple[dict[str, Any], int]] = [
    (template_body(template_content="{% if x %}\nunclosed"), 422),
    (template_body(parameters_schema="{not json"), 422),
    (template_body(parameters_schema="[1, 2]"), 422),
    (template_body(parameters_schema=json.dumps({"type": "no-such-type"})), 422),
    (template_body(parameters_schema=json.dumps({"$ref": "https://example.com/s.json"})), 422),
    (template_body(parameters_schema=json.dumps({"$ref": "file:///etc/passwd"})), 422),
    # Over limits.template_max_bytes (1 MiB), within the request body limit.
    (template_body(template_content="x" * (1536 * 1024)), 413),
    # Over the request body limit too: refused before it is read in full.
    (template_body(template_content="x" * (5 * 1024 * 1024)), 413),
    ({"name": "web", "template_content": "x"}, 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
async def test_bad_input_is_refused_and_changes_nothing(
    api: Api, body: dict[str, Any], status: int
) -> None:
    w = await make_world(api)
    own = await w.template("owner")
    for method, path in (("POST", "/templates"), ("PUT", f"/templates/{own['id']}")):
        assert_error(await w.send("owner", method, path, json=body), status)
    assert await api.count(tables.stack_templates) == 1
    assert (await api.client.get("/healthz")).status_code == 200


async def test_a_template_over_the_limit_in_force_is_refused(api: Api) -> None:
    w = await make_world(api)
    body = template_body(template_content="x" * (1536 * 1024))
    response = await w.send("owner", "POST", "/templates", json=body)
    details = assert_error(response, 413, "template_too_large")["details"]
    assert details["limit_bytes"] == 1024 * 1024
    assert await api.count(tables.stack_templates) == 0


async def test_a_blank_name_is_refused(api: Api) -> None:
    w = await make_world(api)
    assert_error(await w.send("owner", "POST", "/templates", json=template_body(name="")), 422)
    assert await api.count(tables.stack_templates) == 0


async def test_a_syntax_error_names_line_and_column(api: Api) -> None:
    w = await make_world(api)
    body = template_body(template_content="a: 1\nb: {{ name | }}\n")
    details = assert_error(await w.send("owner", "POST", "/templates", json=body), 422)["details"]
    assert details["line"] == 2
    assert "column" in details


async def test_schema_json_is_a_string_holding_an_object(api: Api) -> None:
    w = await make_world(api)
    created = await w.template("owner", parameters_schema=SCHEMA)
    assert json.loads(created["parameters_schema"]) == json.loads(SCHEMA)
