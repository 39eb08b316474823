"""Hostile deployment objects (issue #9, findings 1, 4 and 6): refused with a clear code, with
nothing stored, and validated off the event loop.

Covers: content over ``limits.max_deployment_object_bytes`` is a 413 (JSON envelope, raw YAML,
and a declared Content-Length refused unread); billion laughs, self-referencing aliases, nesting
past ``limits.max_yaml_depth`` and oversized scalars are 422 ``yaml_limit_exceeded`` naming the
limit and the document; integers of more than 4,300 digits and ``!!timestamp 2020-13-45`` are
422 ``invalid_yaml`` (an unquoted 2020-13-45 is a string); none of them logs a traceback; the
limits in force are read per upload (a reload applies to the next one); while a big upload is
validated in a worker thread the loop serves /healthz and other writes; a validation that
outlives ``limits.manifest_validation_timeout_seconds`` is a 503 storing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from pathlib import Path
from textwrap import indent
from types import FrameType
from typing import Any

import pytest

from brokkr.broker.db import tables
from brokkr.common import yaml_guard
from tests.broker.api.test_deployment_objects import CONFIGMAP, create_stack, objects_path
from tests.broker.conftest import Api, assert_error, auth, limits
from tests.common.test_yaml_guard import laughs, nested

YAML = "application/yaml"


def configmap_with(data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hostile\ndata:\n{data}"


def big_configmaps(size: int) -> str:
    """Many small ConfigMaps, about ``size`` characters of YAML: slow to parse for their size."""
    one = "".join(f"  key{j}: value-{j}-{'x' * 20}\n" for j in range(40))
    documents: list[str] = []
    total = 0
    while total < size:
        document = f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{len(documents)}\n"
        documents.append(document + "data:\n" + one)
        total += len(documents[-1])
    return "".join(documents)


async def upload(api: Api, pak: str, stack_id: str, content: str, *, raw: bool = False) -> Any:
    if raw:
        return await api.client.post(
            objects_path(stack_id),
            content=content.encode(),
            headers={**auth(pak), "content-type": YAML},
        )
    return await api.client.post(
        objects_path(stack_id), json={"yaml_content": content}, headers=auth(pak)
    )


async def generator_stack(api: Api) -> tuple[str, str]:
    _, pak = await api.create_generator()
    stack = await create_stack(api, pak)
    return pak, str(stack["id"])


HOSTILE = [
    pytest.param(
        configmap_with("  lol: 1\n") + "---\n" + laughs(9), "alias_expansion", 1, id="laughs"
    ),
    pytest.param(configmap_with("  a: &a [*a]\n"), "recursive_alias", 0, id="recursive"),
    pytest.param(configmap_with(f"  a: {nested(101)}\n"), "depth", 0, id="depth-101"),
    pytest.param(configmap_with(f"  a: {nested(479)}\n"), "depth", 0, id="depth-479"),
    pytest.param(
        configmap_with(f"  a: {'x' * (1024 * 1024 + 1)}\n"), "scalar_size", 0, id="scalar"
    ),
]


@pytest.mark.parametrize("raw", [False, True], ids=["json", "yaml"])
@pytest.mark.parametrize(("content", "limit", "document"), HOSTILE)
async def test_hostile_yaml_is_422_naming_the_limit_and_stores_nothing(
    api: Api, caplog: pytest.LogCaptureFixture, raw: bool, content: str, limit: str, document: int
) -> None:
    pak, stack_id = await generator_stack(api)
    with caplog.at_level(logging.INFO):
        response = await upload(api, pak, stack_id, content, raw=raw)
    error = assert_error(response, 422, "yaml_limit_exceeded")
    assert error["details"] == {"field": "yaml_content", "document": document, "limit": limit}
    assert await api.count(tables.deployment_objects) == 0
    # Before the fix a deep document logged ~200 KB of traceback per request.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (f"  a: {'1' * 4301}\n", "4300 digits"),
        ("  a: !!timestamp 2020-13-45\n", "month must be in 1..12"),
        ("  a: !!bool maybe\n", "does not match its tag"),
    ],
)
async def test_values_their_tag_cannot_hold_are_invalid_yaml(
    api: Api, caplog: pytest.LogCaptureFixture, data: str, reason: str
) -> None:
    pak, stack_id = await generator_stack(api)
    with caplog.at_level(logging.INFO):
        response = await upload(api, pak, stack_id, configmap_with(data))
    error = assert_error(response, 422, "invalid_yaml")
    assert reason in error["message"]
    assert await api.count(tables.deployment_objects) == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_an_impossible_date_left_unquoted_is_a_string(api: Api) -> None:
    pak, stack_id = await generator_stack(api)
    response = await upload(api, pak, stack_id, configmap_with("  a: 2020-13-45\n"))
    assert response.status_code == 201, response.text


async def test_documents_at_the_limits_are_accepted(api: Api) -> None:
    pak, stack_id = await generator_stack(api)
    content = configmap_with(f"  a: {nested(98)}\n  b: {'x' * 1024 * 1024}\n") + laughs(3)
    response = await upload(api, pak, stack_id, content)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("raw", [False, True], ids=["json", "yaml"])
async def test_content_over_the_size_limit_is_413_before_parsing(api: Api, raw: bool) -> None:
    pak, stack_id = await generator_stack(api)
    with limits(api, max_deployment_object_bytes=64 * 1024):
        # Not even YAML: the size is refused before any parse.
        response = await upload(api, pak, stack_id, "[" * (64 * 1024 + 1), raw=raw)
        error = assert_error(response, 413, "deployment_object_too_large")
        assert error["details"] == {"field": "yaml_content", "limit_bytes": 64 * 1024}
        # Multi-byte characters count as bytes.
        response = await upload(api, pak, stack_id, configmap_with(f"  a: {'é' * 33_000}\n"))
        assert_error(response, 413, "deployment_object_too_large")
        accepted = await upload(api, pak, stack_id, configmap_with(f"  a: {'x' * 60_000}\n"))
        assert accepted.status_code == 201, accepted.text
    assert await api.count(tables.deployment_objects) == 1


async def test_a_declared_length_over_the_limit_is_refused_unread(api: Api) -> None:
    pak, stack_id = await generator_stack(api)

    async def endless() -> Any:
        while True:  # never sent: the answer comes from the header alone
            yield b"x" * 65536

    response = await api.client.post(
        objects_path(stack_id),
        content=endless(),
        headers={**auth(pak), "content-type": YAML, "content-length": str(64 * 1024 * 1024)},
    )
    assert_error(response, 413, "deployment_object_too_large")


async def test_the_default_size_limit_admits_2_mib_and_a_reload_raises_it(api: Api) -> None:
    pak, stack_id = await generator_stack(api)
    two_mib = big_configmaps(2 * 1024 * 1024 - 4096)
    assert (await upload(api, pak, stack_id, two_mib, raw=True)).status_code == 201
    bigger = big_configmaps(3 * 1024 * 1024)
    assert_error(await upload(api, pak, stack_id, bigger, raw=True), 413)
    with limits(api, max_deployment_object_bytes=4 * 1024 * 1024):
        response = await upload(api, pak, stack_id, bigger, raw=True)
        assert response.status_code == 201, response.text


async def test_yaml_limits_in_force_are_read_per_upload(api: Api) -> None:
    pak, stack_id = await generator_stack(api)
    content = configmap_with(f"  a: {nested(10)}\n")
    with limits(api, max_yaml_depth=5):
        error = assert_error(await upload(api, pak, stack_id, content), 422)
        assert error["details"]["limit"] == "depth"
    assert (await upload(api, pak, stack_id, content)).status_code == 201
    with limits(api, max_yaml_scalar_chars=4):
        assert_error(await upload(api, pak, stack_id, CONFIGMAP), 422, "yaml_limit_exceeded")
    with limits(api, max_yaml_expansion=1_000_000):
        response = await upload(api, pak, stack_id, configmap_with(indent(laughs(6), "  ")))
        assert response.status_code == 201, response.text


def validating() -> bool:
    """Whether some thread other than this one is inside the YAML guard right now."""
    guard = str(Path(yaml_guard.__file__))
    for thread_id, frame in sys._current_frames().items():
        if thread_id == threading.get_ident():
            continue
        walking: FrameType | None = frame
        while walking is not None:
            if walking.f_code.co_filename == guard:
                return True
            walking = walking.f_back
    return False


async def test_the_loop_serves_health_and_writes_while_a_big_upload_is_validated(
    api: Api,
) -> None:
    pak, stack_id = await generator_stack(api)
    upload_task = asyncio.create_task(
        upload(api, pak, stack_id, big_configmaps(1900 * 1024), raw=True)
    )
    # The loop runs (so the validation is not on it) and sees it under way in another thread.
    while not validating():
        assert not upload_task.done(), (await upload_task).text
        await asyncio.sleep(0)
    health = await api.client.get("/healthz")
    assert health.status_code == 200
    # No write waits on the parse: no transaction is open while it runs.
    other = await api.client.post("/api/v1/stacks", json={"name": "other"}, headers=auth(pak))
    assert other.status_code == 201, other.text
    assert (await upload_task).status_code == 201


async def test_a_validation_that_takes_too_long_is_503_and_stores_nothing(api: Api) -> None:
    pak, stack_id = await generator_stack(api)
    with limits(api, manifest_validation_timeout_seconds=0.001):
        response = await upload(api, pak, stack_id, big_configmaps(1024 * 1024), raw=True)
    assert_error(response, 503, "validation_timeout")
    assert await api.count(tables.deployment_objects) == 0
