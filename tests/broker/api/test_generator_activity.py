"""A generator's ``last_active_at`` (issue 10 finding 13), on SQLite and PostgreSQL.

Covers: null until the generator first authenticates, then set by any authenticated call;
written at most once a minute per generator (a second call right after leaves it as it was),
and again once the minute has passed; the admin's and agents' calls write nothing; not audited.
"""

from __future__ import annotations

from tests.broker.conftest import Api, auth


async def last_active(api: Api, generator_id: str) -> str | None:
    response = await api.client.get(f"/api/v1/generators/{generator_id}", headers=api.admin)
    assert response.status_code == 200, response.text
    value: str | None = response.json()["last_active_at"]
    return value


async def test_authenticating_records_activity_at_most_once_a_minute(api: Api) -> None:
    generator, pak = await api.create_generator()
    _, agent_pak = await api.create_agent()
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(agent_pak))).status_code == 200
    assert await last_active(api, generator["id"]) is None

    assert (await api.client.get("/api/v1/stacks", headers=auth(pak))).status_code == 200
    first = await last_active(api, generator["id"])
    assert first is not None

    assert (await api.client.post("/api/v1/auth/pak", headers=auth(pak))).status_code == 200
    assert await last_active(api, generator["id"]) == first

    # The minute has passed (the throttle forgets when it last wrote).
    api.broker.app.state.authenticator.activity.clear()
    assert (await api.client.post("/api/v1/auth/pak", headers=auth(pak))).status_code == 200
    later = await last_active(api, generator["id"])
    assert later is not None and later > first
    assert all(e["action"] == "generator.created" for e in await api.audit(action="generator.*"))
