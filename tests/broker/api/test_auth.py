"""Authentication and the error envelope of the whole /api/v1 surface.

Covers POST /auth/pak for each role (the reference AuthResponse), the accepted Authorization
header forms (D3), every kind of rejected credential (401 JSON `unauthorized` with
`WWW-Authenticate`, plus an `auth.failed` audit record naming the reason, path and — for
well-formed keys — the key id), that a request without valid credentials is rejected before its
body is parsed, and the D2 JSON bodies of unknown routes (404), wrong methods (405), oversized
bodies (413), malformed path ids (4xx, never 500) and NUL characters in text (never 500). Also:
a key revoked by a concurrent rotation cannot rotate again (one of ten parallel self-rotations
wins, the rest are 401), and an anonymous path with CR/LF cannot forge a line in the text log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import quote

import pytest

from brokkr.broker.db import tables
from brokkr.broker.domain import paks
from brokkr.common import logging as brokkr_logging
from tests.broker.conftest import Api, assert_error, auth

USER_AGENT = "brokkr-auth-tests/1.0"


def key_id(pak: str) -> str:
    return pak.split("_")[1]


@pytest.mark.parametrize("who", ["admin", "agent", "generator"])
async def test_verify_pak_tells_the_role_like_the_reference(api: Api, who: str) -> None:
    agent, agent_pak = await api.create_agent()
    generator, generator_pak = await api.create_generator()
    pak = {"admin": api.admin_pak, "agent": agent_pak, "generator": generator_pak}[who]
    response = await api.client.post("/api/v1/auth/pak", headers=auth(pak))
    assert response.status_code == 200
    assert response.json() == {
        "admin": who == "admin",
        "agent": agent["id"] if who == "agent" else None,
        "generator": generator["id"] if who == "generator" else None,
    }


async def test_verify_pak_ignores_any_body(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/auth/pak",
        content=b"{not json",
        headers={**api.admin, "content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["admin"] is True


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "BEARER {}", "{}", "Bearer  {} "])
async def test_accepted_authorization_header_forms(api: Api, template: str) -> None:
    _, pak = await api.create_agent()
    response = await api.client.post(
        "/api/v1/auth/pak", headers={"Authorization": template.format(pak)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["agent"] is not None
    assert await api.audit(action="auth.failed") == []


def _wrong_long_part(pak: str) -> str:
    """Same short token, a different (well-formed) long part."""
    prefix, short, _ = pak.split("_")
    return f"{prefix}_{short}_{paks.generate().plaintext.split('_')[2]}"


# (header builder from the admin PAK, expected audit reason, whether the key id is recorded)
REJECTED: dict[str, tuple[Callable[[str], str | None], str, bool]] = {
    "no-header": (lambda pak: None, "missing", False),
    "empty-header": (lambda pak: "", "missing", False),
    "garbage": (lambda pak: "garbage", "malformed", False),
    "bearer-garbage": (lambda pak: "Bearer garbage", "malformed", False),
    "bearer-only": (lambda pak: "Bearer", "malformed", False),
    "basic-scheme": (lambda pak: f"Basic {pak}", "malformed", False),
    "token-scheme": (lambda pak: f"Token {pak}", "malformed", False),
    "truncated-long-part": (lambda pak: pak[:-3], "malformed", False),
    "wrong-long-part": (lambda pak: _wrong_long_part(pak), "unknown_or_revoked", True),
    "unknown-pak": (lambda pak: paks.generate().plaintext, "unknown_or_revoked", True),
    # Two characters: one more base58 digit can still decode to 24 bytes (1 key in ~80), two never.
    "pak-with-trailing-junk": (lambda pak: f"{pak}xx", "malformed", False),
    "two-paks": (lambda pak: f"Bearer {pak} {pak}", "malformed", False),
}


@pytest.mark.parametrize("case", list(REJECTED))
async def test_rejected_credentials_are_401_json_and_audited(api: Api, case: str) -> None:
    build, reason, records_key = REJECTED[case]
    header = build(api.admin_pak)
    headers = {"User-Agent": USER_AGENT}
    if header is not None:
        headers["Authorization"] = header
    response = await api.client.post("/api/v1/auth/pak", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    [record] = await api.audit(action="auth.failed")
    assert record["actor_type"] == "system" and record["actor_id"] is None
    assert record["resource_type"] == "pak" and record["resource_id"] is None
    assert record["details"] == {"reason": reason, "path": "/api/v1/auth/pak"}
    assert record["ip_address"] == "127.0.0.1" and record["user_agent"] == USER_AGENT
    expected_key = key_id(header.split()[-1]) if records_key and header else None
    assert record["key_id"] == expected_key
    audit_logs = tables.audit_logs
    assert (
        await api.count(
            audit_logs, audit_logs.c.action == "auth.failed", audit_logs.c.outcome == "failure"
        )
        == 1
    )


async def test_deleted_agents_pak_is_401_and_audited_with_its_key_id(api: Api) -> None:
    agent, pak = await api.create_agent()
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(pak))).status_code == 200
    deleted = await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    assert deleted.status_code == 204
    response = await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(pak))
    assert_error(response, 401, "unauthorized")
    assert "www-authenticate" in response.headers
    [record] = await api.audit(action="auth.failed")
    assert record["key_id"] == key_id(pak)
    assert record["details"] == {
        "reason": "unknown_or_revoked",
        "path": f"/api/v1/agents/{agent['id']}",
    }


async def test_deleted_generators_pak_is_401(api: Api) -> None:
    generator, pak = await api.create_generator()
    await api.client.delete(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert_error(await api.client.post("/api/v1/auth/pak", headers=auth(pak)), 401, "unauthorized")


@pytest.mark.parametrize("header", [None, "Bearer garbage"])
async def test_unauthenticated_body_is_not_parsed(api: Api, header: str | None) -> None:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    response = await api.client.post("/api/v1/agents", content=b"{nope", headers=headers)
    assert_error(response, 401, "unauthorized")
    invalid = await api.client.post(
        "/api/v1/agents", json={"name": "", "cluster_name": ""}, headers=headers
    )
    assert_error(invalid, 401, "unauthorized")
    assert await api.count(tables.agents) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nope"),
        ("POST", "/api/v1/agents/extra/deep/path"),
        ("GET", "/api/v2/agents"),
    ],
)
async def test_unknown_route_is_404_json(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=api.admin)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/agents"),
        ("DELETE", "/api/v1/generators"),
        ("GET", "/api/v1/auth/pak"),
        ("PUT", "/api/v1/admin/audit-logs"),
    ],
)
async def test_wrong_method_is_405_json(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=api.admin)
    assert_error(response, 405, "method_not_allowed")


async def test_body_over_2_mib_is_413_json_and_nothing_is_stored(api: Api) -> None:
    padding = "x" * (2 * 1024 * 1024)
    response = await api.client.post(
        "/api/v1/agents",
        content=f'{{"name": "big", "cluster_name": "c", "pad": "{padding}"}}'.encode(),
        headers={**api.admin, "content-type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
    assert await api.count(tables.agents) == 0


async def test_body_just_under_the_limit_is_accepted(api: Api) -> None:
    padding = "x" * (2 * 1024 * 1024 - 100)
    response = await api.client.post(
        "/api/v1/agents",
        content=f'{{"name": "big", "cluster_name": "c", "pad": "{padding}"}}'.encode(),
        headers={**api.admin, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text[:200]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/agents/not-a-uuid"),
        ("PUT", "/api/v1/agents/123"),
        ("DELETE", "/api/v1/agents/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
        ("GET", "/api/v1/agents/not-a-uuid/labels"),
        ("DELETE", "/api/v1/agents/not-a-uuid/annotations/k"),
        ("GET", "/api/v1/generators/not-a-uuid"),
        ("POST", "/api/v1/generators/1/rotate-pak"),
    ],
)
async def test_malformed_path_id_is_a_json_4xx(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, json={}, headers=api.admin)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/generators", {"name": "nul\u0000name"}),
        ("POST", "/api/v1/generators", {"name": "g", "description": "nul\u0000"}),
        ("POST", "/api/v1/agents/{agent}/labels", {"label": "nul\u0000label"}),
        ("DELETE", "/api/v1/agents/{agent}/labels/nul%00label", None),
        ("GET", "/api/v1/admin/audit-logs?action=nul%00*", None),
    ],
)
async def test_nul_characters_in_text_are_never_a_500(
    api: Api, method: str, path: str, body: dict[str, str] | None
) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.request(
        method, path.format(agent=agent["id"]), json=body, headers=api.admin
    )
    # SQLite stores NUL like any character; PostgreSQL text cannot hold it: a 400, not a 500.
    assert response.status_code < 500, response.text
    if response.status_code == 400:
        assert_error(response, 400, "invalid_text")
        assert await api.count(tables.generators) == 1
        assert await api.count(tables.agent_labels) == 0


@pytest.mark.parametrize("who", ["agent", "generator"])
async def test_a_key_revoked_by_a_concurrent_rotation_cannot_rotate_again(
    api: Api, who: str
) -> None:
    if who == "agent":
        record, pak = await api.create_agent()
        path, success = f"/api/v1/agents/{record['id']}/rotate-pak", 200
    else:
        record, pak = await api.create_generator()
        path, success = f"/api/v1/generators/{record['id']}/rotate-pak", 201
    # Verified and cached: every request below is authenticated before the first one commits.
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(pak))).status_code == 200

    responses = await asyncio.gather(*(api.client.post(path, headers=auth(pak)) for _ in range(10)))

    [winner] = [r for r in responses if r.status_code == success]
    for loser in responses:
        if loser is not winner:
            assert_error(loser, 401, "unauthorized")
    new_pak = winner.json()["pak"]
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(new_pak))).status_code == 200
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(pak))).status_code == 401
    assert len(await api.audit(action="pak.rotated")) == 1


async def test_an_anonymous_path_cannot_forge_a_log_line(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = "2030-01-01T00:00:00.000+00:00 INFO    brokkr.access: GET /api/v1/admin 200"
    root = logging.getLogger()
    level = root.level
    brokkr_logging.configure(level="info", as_json=False)
    try:
        response = await api.client.get(f"/api/v1/agents/x%0d%0a{quote(forged)}")
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_brokkr", False):
                root.removeHandler(handler)
        root.setLevel(level)
    assert response.status_code == 404
    lines = capsys.readouterr().err.splitlines()
    [access] = [line for line in lines if line.split()[2] == "brokkr.access:"]
    assert "/api/v1/agents/x\\r\\n2030" in access
    assert not any(line.startswith("2030") for line in lines)
