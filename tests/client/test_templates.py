"""The client's template methods against a real broker process, on SQLite and on PostgreSQL.

Covers ``templates``: create (a schema given as a mapping or as JSON text), list, get, find (by
name, newest or a given version; the caller's own template before a system one), update (a
new version and id, the old one kept), delete (one version), labels and annotations, render
(nothing stored; an invalid result says why) and instantiate (the stored YAML is the rendered
YAML byte for byte); ``deployment_objects.provenance`` (template id, version, parameters; a
pushed object has none); a generator reading and instantiating a system template but not
changing it, and not seeing another generator's template; parameter errors listing every
violation; and the blocking client's twins of the same calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from brokkr.client import AsyncBrokkrClient, BadRequest, BrokkrAPIError, BrokkrClient, NotFound
from brokkr.common import wire
from tests.client.conftest import LiveBroker, manifest, unique

CONTENT = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"
    'data:\n  replicas: "{{ replicas }}"\n'
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1}},
    "required": ["name", "replicas"],
}
RENDERED = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  replicas: "3"\n'


async def new_template(client: AsyncBrokkrClient, name: str | None = None) -> wire.StackTemplate:
    return await client.templates.create(
        name=name or unique("tpl"), template_content=CONTENT, parameters_schema=SCHEMA
    )


async def test_create_get_list_find_update_and_delete(admin: AsyncBrokkrClient) -> None:
    name = unique("tpl")
    first = await admin.templates.create(
        name=name,
        template_content=CONTENT,
        parameters_schema=json.dumps(SCHEMA),
        description="a config map",
    )
    assert (first.name, first.version, first.generator_id) == (name, 1, None)
    assert (first.template_content, json.loads(first.parameters_schema)) == (CONTENT, SCHEMA)
    assert await admin.templates.get(first.id) == first
    assert first in await admin.templates.list()

    second = await admin.templates.update(
        first.id, template_content=CONTENT + "# v2\n", parameters_schema=SCHEMA
    )
    assert (second.name, second.version, second.description) == (name, 2, "a config map")
    assert second.id != first.id
    assert await admin.templates.get(first.id) == first
    assert await admin.templates.find(name) == second
    assert await admin.templates.find(name, 1) == first
    assert await admin.templates.find(name, 3) is None
    assert await admin.templates.find(unique("none")) is None

    await admin.templates.delete(second.id)
    with pytest.raises(NotFound) as gone:
        await admin.templates.get(second.id)
    assert gone.value.code == "template_not_found"
    assert await admin.templates.find(name) == first


async def test_labels_and_annotations(admin: AsyncBrokkrClient) -> None:
    template = await new_template(admin)
    label = await admin.templates.add_label(template.id, "env:prod")
    assert (label.template_id, label.label) == (template.id, "env:prod")
    annotation = await admin.templates.add_annotation(template.id, "team/owner", "web")
    assert (annotation.key, annotation.value) == ("team/owner", "web")
    assert await admin.templates.list_labels(template.id) == [label]
    assert await admin.templates.list_annotations(template.id) == [annotation]

    await admin.templates.remove_label(template.id, "env:prod")
    await admin.templates.remove_annotation(template.id, "team/owner")
    assert await admin.templates.list_labels(template.id) == []
    assert await admin.templates.list_annotations(template.id) == []
    with pytest.raises(NotFound) as missing:
        await admin.templates.remove_label(template.id, "env:prod")
    assert missing.value.code == "template_label_not_found"


async def test_render_stores_nothing_and_instantiate_stores_the_same_bytes(
    admin: AsyncBrokkrClient,
) -> None:
    template = await new_template(admin)
    stack = await admin.stacks.create(name=unique("web"))
    parameters = {"name": "web", "replicas": 3}

    rendered = await admin.templates.render(template.id, parameters)
    assert (rendered.template_id, rendered.template_version) == (template.id, 1)
    assert (rendered.yaml_content, rendered.valid, rendered.validation_error) == (
        RENDERED,
        True,
        None,
    )
    assert await admin.stacks.list_deployment_objects(stack.id) == []

    created = await admin.templates.instantiate(stack.id, template.id, parameters)
    assert created.yaml_content == rendered.yaml_content
    assert created.yaml_checksum == rendered.yaml_checksum
    assert await admin.stacks.list_deployment_objects(stack.id) == [created]

    provenance = await admin.deployment_objects.provenance(created.id)
    assert provenance.deployment_object_id == created.id
    assert (provenance.template_id, provenance.template_version) == (template.id, 1)
    assert provenance.parameters == parameters


async def test_a_pushed_object_has_no_provenance(admin: AsyncBrokkrClient) -> None:
    stack = await admin.stacks.create(name=unique("web"))
    pushed = await admin.stacks.deploy(stack.id, manifest(unique("cm")))
    with pytest.raises(NotFound) as none:
        await admin.deployment_objects.provenance(pushed.id)
    assert none.value.code == "provenance_not_found"


async def test_render_of_something_that_is_not_a_deployment_object_says_why(
    admin: AsyncBrokkrClient,
) -> None:
    template = await admin.templates.create(
        name=unique("tpl"), template_content="{{ text }}\n", parameters_schema={}
    )
    rendered = await admin.templates.render(template.id, {"text": "key: [unclosed"})
    assert rendered.valid is False and rendered.validation_error is not None
    assert rendered.yaml_content == "key: [unclosed\n"
    stack = await admin.stacks.create(name=unique("web"))
    with pytest.raises(BrokkrAPIError) as refused:
        await admin.templates.instantiate(stack.id, template.id, {"text": "key: [unclosed"})
    assert refused.value.code == rendered.validation_error.code
    assert await admin.stacks.list_deployment_objects(stack.id) == []


async def test_every_parameter_violation_is_listed(admin: AsyncBrokkrClient) -> None:
    template = await new_template(admin)
    stack = await admin.stacks.create(name=unique("web"))
    with pytest.raises(BadRequest) as invalid:
        await admin.templates.instantiate(stack.id, template.id, {"name": 7, "replicas": 0})
    assert invalid.value.code == "invalid_parameters"
    listed = json.dumps(invalid.value.details)
    assert "/name" in listed and "/replicas" in listed
    assert await admin.stacks.list_deployment_objects(stack.id) == []


async def test_generators_use_system_templates_and_keep_their_own_private(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    system = await new_template(admin)
    owner = await admin.generators.create(name=unique("ci"))
    other = await admin.generators.create(name=unique("ci"))
    async with (
        live_broker.client(owner.pak) as ci,
        live_broker.client(other.pak) as intruder,
    ):
        private = await new_template(ci, name=system.name)
        assert private.generator_id == owner.generator.id
        assert await ci.templates.find(system.name) == private  # its own wins over the system one
        assert await intruder.templates.find(system.name) == system

        stack = await ci.stacks.create(name=unique("web"))
        created = await ci.templates.instantiate(
            stack.id, system.id, {"name": "web", "replicas": 3}
        )
        assert created.yaml_content == RENDERED
        with pytest.raises(BrokkrAPIError) as not_owned:
            await ci.templates.update(system.id, template_content=CONTENT, parameters_schema=SCHEMA)
        assert (not_owned.value.status, not_owned.value.code) == (403, "template_not_owned")

        with pytest.raises(NotFound):
            await intruder.templates.get(private.id)
        with pytest.raises(NotFound):
            await intruder.templates.delete(private.id)
        assert private.id not in {t.id for t in await intruder.templates.list()}
        assert await ci.templates.get(private.id) == private


def test_the_blocking_client_has_the_same_calls(live_broker: LiveBroker) -> None:
    with BrokkrClient(live_broker.url, live_broker.admin_pak) as brokkr:
        template = brokkr.templates.create(
            name=unique("tpl"), template_content=CONTENT, parameters_schema=SCHEMA
        )
        stack = brokkr.stacks.create(name=unique("web"))
        created = brokkr.templates.instantiate(
            stack.id, template.id, {"name": "web", "replicas": 3}
        )
        assert brokkr.templates.find(template.name) == template
        assert brokkr.deployment_objects.provenance(created.id).template_id == template.id
        assert created.yaml_content == RENDERED
