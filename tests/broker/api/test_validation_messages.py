"""What a bad request is told (D2, issue 10 finding 9), on SQLite and PostgreSQL.

Covers: validation failures keep ``validation_failed`` / ``invalid_parameter`` and
``details.fields`` but give each field a sentence, not msgspec's raw regex or type code (a bad
label or name, too long, empty, wrong type, missing, an unknown enum value listing the allowed
values); a malformed id in any typed path segment is a 400 ``invalid_parameter`` naming the
segment, for every route with one, while an unknown route stays a 404; nothing is stored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error

_REGEX_NOISE = re.compile(r"regex|\\\\s|Expected `|\^\(\?")


def fields_of(body: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = body["details"]["fields"]
    for reason in fields.values():
        assert not _REGEX_NOISE.search(reason), reason
    return fields


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"label": "bad label"}, "label", "no whitespace or control characters"),
        ({"label": "x" * 65}, "label", "at most 64 characters"),
        ({"label": ""}, "label", "must not be empty"),
        ({"label": 7}, "label", "must be a string, not an integer"),
        ({}, "label", "is required"),
    ],
)
async def test_a_bad_label_is_explained_in_words(
    api: Api, body: dict[str, Any], field: str, reason: str
) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.post(
        f"/api/v1/agents/{agent['id']}/labels", json=body, headers=api.admin
    )
    fields = fields_of(assert_error(response, 422, "validation_failed"))
    assert reason in fields[field], fields
    assert await api.count(tables.agent_labels) == 0


async def test_a_blank_name_is_explained_in_words(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/agents", json={"name": " \u200b ", "cluster_name": "c"}, headers=api.admin
    )
    fields = fields_of(assert_error(response, 422, "validation_failed"))
    assert "not only spaces or zero-width characters" in fields["name"]
    assert await api.count(tables.agents) == 0


async def test_an_unknown_enum_value_lists_the_allowed_values(api: Api) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.put(
        f"/api/v1/agents/{agent['id']}", json={"status": "RUNNING"}, headers=api.admin
    )
    fields = fields_of(assert_error(response, 422, "validation_failed"))
    assert fields == {"status": "'RUNNING' is not an allowed value; allowed: ACTIVE, INACTIVE"}
    stored = await api.client.get(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    assert stored.json()["status"] == "INACTIVE"


async def test_a_bad_query_parameter_is_explained_in_words(api: Api) -> None:
    response = await api.client.get(
        "/api/v1/agent-events", params={"agent_id": "zz"}, headers=api.admin
    )
    fields = fields_of(assert_error(response, 400, "invalid_parameter"))
    assert fields["agent_id"].startswith("must be a UUID")


def typed_paths(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path with every uuid parameter malformed) for every operation that has one."""
    found: list[tuple[str, str]] = []
    for path, operations in document["paths"].items():
        uuid_params = {
            p["name"]
            for operation in operations.values()
            for p in operation.get("parameters", [])
            if p["in"] == "path" and p.get("schema", {}).get("format") == "uuid"
        }
        if not uuid_params:
            continue
        concrete = path
        for name in uuid_params:
            concrete = concrete.replace(f"{{{name}}}", "not-a-uuid")
        concrete = re.sub(r"\{[^}]+\}", "x", concrete)
        found.extend((method.upper(), concrete) for method in operations)
    return found


async def test_a_malformed_path_id_is_400_on_every_route(api: Api) -> None:
    document = (await api.client.get("/docs/openapi.json")).json()
    routes = typed_paths(document)
    assert len(routes) > 20
    for method, path in routes:
        response = await api.client.request(method, path, headers=api.admin)
        body = assert_error(response, 400, "invalid_parameter")
        reasons = body["details"]["fields"]
        assert reasons and all(r == "must be a UUID, not 'not-a-uuid'" for r in reasons.values())


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/agents/x/y/z", "/api/v2/agents"])
async def test_an_unknown_route_stays_404(api: Api, path: str) -> None:
    assert_error(await api.client.get(path, headers=api.admin), 404, "not_found")
