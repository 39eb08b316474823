"""Request bodies at the edge, on SQLite and PostgreSQL.

Covers: JSON routes answer 415 ``unsupported_media_type`` to text/plain, form, multipart and
missing content types (after authentication: a bad PAK is still a 401) and change nothing;
``application/json`` with a charset and ``application/*+json`` are accepted; the deployment-object
upload keeps its YAML media types; JSON nested deeper than ``limits.max_json_depth`` is a 422
``nesting_too_deep`` (never a 500), on typed routes and on the upload's JSON envelope; 405
answers carry ``Allow``.
"""

from __future__ import annotations

import httpx
import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"


async def _post_generator(api: Api, content: bytes, content_type: str | None) -> httpx.Response:
    headers = dict(api.admin)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.client.post("/api/v1/generators", content=content, headers=headers)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/yaml",
        None,
    ],
)
async def test_json_route_refuses_other_media_types(api: Api, content_type: str | None) -> None:
    response = await _post_generator(api, b'{"name": "ci"}', content_type)
    body = assert_error(response, 415, "unsupported_media_type")
    assert body["details"] == {"accepted": ["application/json"]}
    assert await api.count(tables.generators, tables.generators.c.name == "ci") == 0


async def test_form_and_multipart_bodies_are_415(api: Api) -> None:
    form = await api.client.post("/api/v1/generators", data={"name": "ci"}, headers=api.admin)
    assert_error(form, 415, "unsupported_media_type")
    files = {"name": ("name.txt", b"ci")}
    multipart = await api.client.post("/api/v1/generators", files=files, headers=api.admin)
    assert_error(multipart, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x+json",
    ],
)
async def test_json_media_types_are_accepted(api: Api, content_type: str) -> None:
    response = await _post_generator(api, b'{"name": "ci"}', content_type)
    assert response.status_code == 201, response.text


async def test_bad_pak_is_401_before_the_media_type(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/generators",
        content=b"name=ci",
        headers={"Authorization": "Bearer nope", "Content-Type": "text/plain"},
    )
    assert_error(response, 401, "unauthorized")


async def test_body_less_routes_need_no_content_type(api: Api) -> None:
    response = await api.client.post("/api/v1/auth/pak", headers=api.admin)
    assert response.status_code == 200, response.text


async def _stack(api: Api) -> str:
    response = await api.client.post("/api/v1/stacks", json={"name": "web"}, headers=api.admin)
    assert response.status_code == 201, response.text
    stack_id: str = response.json()["id"]
    return stack_id


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml", "application/x-yaml"])
async def test_upload_keeps_its_yaml_media_types(api: Api, content_type: str) -> None:
    stack_id = await _stack(api)
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        content=MANIFEST.encode(),
        headers={**api.admin, "Content-Type": content_type},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_upload_refuses_other_media_types(api: Api, content_type: str | None) -> None:
    stack_id = await _stack(api)
    headers = dict(api.admin)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        content=b'{"yaml_content": "' + MANIFEST.replace("\n", "\\n").encode() + b'"}',
        headers=headers,
    )
    body = assert_error(response, 415, "unsupported_media_type")
    assert "application/yaml" in body["details"]["accepted"]
    assert await api.count(tables.deployment_objects) == 0


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [101, 1_000, 100_000])
async def test_deeply_nested_json_is_422_not_500(api: Api, depth: int) -> None:
    response = await _post_generator(
        api, b'{"name": "ci", "extra": ' + _nested(depth - 1) + b"}", "application/json"
    )
    body = assert_error(response, 422, "nesting_too_deep")
    assert body["details"] == {"max_depth": 100}
    assert await api.count(tables.generators, tables.generators.c.name == "ci") == 0


async def test_nesting_up_to_the_limit_is_decoded(api: Api) -> None:
    # 100 levels in all: the object itself and 99 arrays; brackets inside strings do not count.
    content = b'{"name": "[[[[", "extra": ' + _nested(99) + b', "more": "' + b"{" * 200 + b'"}'
    response = await _post_generator(api, content, "application/json")
    assert response.status_code == 201, response.text


async def test_deep_upload_envelope_is_422(api: Api) -> None:
    stack_id = await _stack(api)
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        content=b'{"yaml_content": "a: 1", "x": ' + _nested(5_000) + b"}",
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert_error(response, 422, "nesting_too_deep")


async def test_method_not_allowed_names_the_allowed_methods(api: Api) -> None:
    response = await api.client.put("/api/v1/generators", json={}, headers=api.admin)
    assert_error(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PUT" not in allowed


OUT_OF_RANGE = ["9223372036854775808", "99999999999999999999999999", "-1"]


async def _paged_lists(api: Api) -> list[tuple[str, set[str]]]:
    """Every GET operation taking ``offset`` or ``limit``: its path (ids filled with existing
    rows) and which of the two it takes."""
    agent, _ = await api.create_agent()
    stack_id = await _stack(api)
    document = (await api.client.get("/docs/openapi.json")).json()
    lists = []
    for path, operations in document["paths"].items():
        names = {p["name"] for p in operations.get("get", {}).get("parameters", [])}
        if paging := names & {"offset", "limit"}:
            concrete = path.replace(
                "{id}", stack_id if path.startswith("/api/v1/stacks") else agent["id"]
            )
            lists.append((concrete, paging))
    return lists


async def test_paging_parameters_beyond_64_bits_or_negative_are_400(api: Api) -> None:
    lists = await _paged_lists(api)
    assert len(lists) >= 4, lists
    for path, parameters in lists:
        for parameter in parameters:
            for value in OUT_OF_RANGE:
                response = await api.client.get(path, params={parameter: value}, headers=api.admin)
                body = assert_error(response, 400, "invalid_parameter")
                assert set(body["details"]["fields"]) == {parameter}, (path, value)
