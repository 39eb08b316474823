"""Names, labels and free text (D14), identical on SQLite and PostgreSQL.

Covers: names, labels and annotation keys/values are stored in NFC, so two spellings of one name
collide (409) and a label is removed by either spelling; names of only zero-width, format or
space characters, or holding control characters, are 422; NUL in a generator description is
the same 422 on both databases; descriptions and event messages are capped; look-alikes of the
protected ``admin-generator`` are refused on create and rename.
"""

from __future__ import annotations

from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error

COMPOSED = "caf\u00e9"  # é as one code point
DECOMPOSED = "cafe\u0301"  # e + combining acute accent


async def _create_generator(api: Api, body: dict[str, Any]) -> Any:
    return await api.client.post("/api/v1/generators", json=body, headers=api.admin)


async def test_names_are_stored_in_nfc_and_spellings_collide(api: Api) -> None:
    first = await _create_generator(api, {"name": DECOMPOSED})
    assert first.status_code == 201, first.text
    assert first.json()["generator"]["name"] == COMPOSED
    again = await _create_generator(api, {"name": COMPOSED})
    assert_error(again, 409, "generator_name_taken")
    stacks = [
        await api.client.post("/api/v1/stacks", json={"name": name}, headers=api.admin)
        for name in (COMPOSED, DECOMPOSED)
    ]
    assert stacks[0].status_code == 201
    assert_error(stacks[1], 409, "stack_name_taken")


async def test_an_agent_is_found_by_any_spelling_of_its_name(api: Api) -> None:
    agent, _ = await api.create_agent(name=DECOMPOSED, cluster_name=COMPOSED)
    for name, cluster in ((COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)):
        found = await api.client.get(
            "/api/v1/agents/", params={"name": name, "cluster_name": cluster}, headers=api.admin
        )
        assert found.status_code == 200, found.text
        assert found.json()["id"] == agent["id"]


async def test_labels_are_nfc_and_removed_by_either_spelling(api: Api) -> None:
    agent, _ = await api.create_agent()
    url = f"/api/v1/agents/{agent['id']}/labels"
    added = await api.client.post(url, json={"label": DECOMPOSED}, headers=api.admin)
    assert added.status_code == 201, added.text
    assert added.json()["label"] == COMPOSED
    duplicate = await api.client.post(url, json={"label": COMPOSED}, headers=api.admin)
    assert_error(duplicate, 409, "agent_label_exists")
    removed = await api.client.delete(f"{url}/{DECOMPOSED}", headers=api.admin)
    assert removed.status_code == 204, removed.text
    assert await api.count(tables.agent_labels) == 0


@pytest.mark.parametrize(
    "name",
    [
        "\u200b\u200b",  # zero-width spaces
        "\u200d\ufeff",  # joiner, byte-order mark
        "\u0301",  # a lone combining mark
        "\u3000\u200b",  # ideographic space, zero-width space
        "\u202e\u2066",  # bidi controls
        "ci\x07bell",
        "ci\npipeline",
        "ci\u0085",  # a C1 control (next line)
        "\ue000ci",  # private use
        "ci\x00",
    ],
)
async def test_invisible_or_control_names_are_refused(api: Api, name: str) -> None:
    response = await _create_generator(api, {"name": name})
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"name"}
    agent = await api.client.post(
        "/api/v1/agents", json={"name": "edge", "cluster_name": name}, headers=api.admin
    )
    assert_error(agent, 422, "validation_failed")
    assert await api.count(tables.agents) == 0
    assert await api.count(tables.generators, tables.generators.c.name != "admin-generator") == 0


async def test_invisible_labels_and_annotations_are_refused(api: Api) -> None:
    agent, _ = await api.create_agent()
    base = f"/api/v1/agents/{agent['id']}"
    label = await api.client.post(f"{base}/labels", json={"label": "\u200b"}, headers=api.admin)
    assert_error(label, 422, "validation_failed")
    annotation = await api.client.post(
        f"{base}/annotations", json={"key": "team", "value": "\u2060"}, headers=api.admin
    )
    assert_error(annotation, 422, "validation_failed")
    assert await api.count(tables.agent_labels) + await api.count(tables.agent_annotations) == 0


async def test_nul_in_a_description_is_the_same_422_on_both_databases(api: Api) -> None:
    response = await _create_generator(api, {"name": "ci", "description": "a\x00b"})
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"description"}
    generator, _ = await api.create_generator("ok")
    update = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"description": "\x00"}, headers=api.admin
    )
    assert_error(update, 422, "validation_failed")


async def test_free_text_is_capped(api: Api) -> None:
    long = "x" * 4097
    assert_error(
        await _create_generator(api, {"name": "ci", "description": long}), 422, "validation_failed"
    )
    stack = await api.client.post(
        "/api/v1/stacks", json={"name": "web", "description": long}, headers=api.admin
    )
    assert_error(stack, 422, "validation_failed")
    fits = await _create_generator(api, {"name": "ci", "description": "x" * 4096})
    assert fits.status_code == 201, fits.text


async def test_event_messages_are_capped(api: Api) -> None:
    agent, pak = await api.create_agent()
    response = await api.client.post(
        f"/api/v1/agents/{agent['id']}/events",
        json={
            "deployment_object_id": "00000000-0000-0000-0000-000000000001",
            "status": "FAILURE",
            "message": "x" * (1536 * 1024),
        },
        headers={"Authorization": f"Bearer {pak}"},
    )
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"message"}
    assert await api.count(tables.agent_events) == 0


@pytest.mark.parametrize(
    "name",
    [
        "Admin-Generator",
        "admin_generator",
        "ADMIN GENERATOR",
        "\u0430dmin-generator",  # Cyrillic а
        "adm\u0456n-generator",  # Cyrillic і
        "admin-generat0r",
        "\uff41dmin-generator",  # full-width a
        "admin\u200b-generator",  # zero-width space inside
        "a\u0301dmin-generator",  # a combining mark
    ],
)
async def test_look_alikes_of_the_admin_generator_are_refused(api: Api, name: str) -> None:
    response = await _create_generator(api, {"name": name})
    body = assert_error(response, 422, "generator_name_reserved")
    assert body["details"] == {"fields": {"name": "reserved"}}
    generator, _ = await api.create_generator("ci")
    rename = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"name": name}, headers=api.admin
    )
    assert_error(rename, 422, "generator_name_reserved")
    assert await api.count(tables.generators) == 2


async def test_names_merely_containing_the_reserved_one_are_fine(api: Api) -> None:
    for name in ("admin-generator-2", "my-admin-generator", "generator-admin"):
        response = await _create_generator(api, {"name": name})
        assert response.status_code == 201, response.text
