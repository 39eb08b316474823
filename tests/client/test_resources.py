"""Every client method against a real broker process, on SQLite and on PostgreSQL.

Covers ``auth.whoami`` for the admin, an agent and a generator; agents: create, list, search,
get, update, activate, deactivate, delete, heartbeat (with the agent's own PAK), rotate_pak
(the old PAK is then refused), labels, annotations (a key holding '/'), targets, stacks,
target_state (ETag round trip: unchanged → ``objects`` None, a new deployment object → a list;
``full``), events and report_event; generators: create, list, get, update, delete, rotate_pak;
stacks: create (admin and generator), list (and by generator), get, find, update, delete,
labels, annotations, deploy, list_deployment_objects, agents; deployment_objects.get;
agent_events list, get, iterate (pages of 2 over 5 events); audit_logs list (filters, paging)
and iterate. Results are the shared wire Structs, compared field by field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, NotFound, TargetState, Unauthorized
from brokkr.common import wire
from tests.client.conftest import LiveBroker, manifest, unique


async def new_agent(admin: AsyncBrokkrClient) -> wire.CreateAgentResponse:
    return await admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))


async def targeted_agent(
    admin: AsyncBrokkrClient,
) -> tuple[wire.CreateAgentResponse, wire.Stack, wire.DeploymentObject]:
    """An agent with an explicit target on a new stack holding one deployment object."""
    created = await new_agent(admin)
    stack = await admin.stacks.create(name=unique("stack"))
    await admin.agents.add_target(created.agent.id, stack.id)
    deployed = await admin.stacks.deploy(stack.id, manifest(unique("cm")))
    return created, stack, deployed


# --- auth ------------------------------------------------------------------------------------


async def test_whoami_names_the_role_of_each_kind_of_pak(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    assert await admin.auth.whoami() == wire.AuthResponse(admin=True, agent=None, generator=None)

    created = await new_agent(admin)
    async with live_broker.client(created.initial_pak) as agent:
        me = await agent.auth.whoami()
    assert isinstance(me, wire.AuthResponse)
    assert me == wire.AuthResponse(admin=False, agent=created.agent.id, generator=None)

    generator = await admin.generators.create(name=unique("ci"))
    async with live_broker.client(generator.pak) as ci:
        me = await ci.auth.whoami()
    assert me == wire.AuthResponse(admin=False, agent=None, generator=generator.generator.id)


# --- agents ----------------------------------------------------------------------------------


async def test_agent_create_list_search_and_get(admin: AsyncBrokkrClient) -> None:
    name, cluster = unique("agent"), unique("cluster")

    created = await admin.agents.create(name=name, cluster_name=cluster)

    assert isinstance(created, wire.CreateAgentResponse)
    agent = created.agent
    assert isinstance(agent, wire.Agent)
    assert (agent.name, agent.cluster_name, agent.status) == (name, cluster, "INACTIVE")
    assert agent.last_heartbeat is None and agent.deleted_at is None
    assert paks.is_well_formed(created.initial_pak)

    listed = await admin.agents.list()
    assert all(isinstance(item, wire.Agent) for item in listed)
    assert agent in listed
    assert await admin.agents.search(name=name, cluster_name=cluster) == agent
    assert await admin.agents.get(agent.id) == agent


async def test_agent_update_activate_deactivate_and_delete(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created = await new_agent(admin)
    agent_id = created.agent.id
    name, cluster = unique("renamed"), unique("moved")

    updated = await admin.agents.update(agent_id, name=name, cluster_name=cluster)
    assert isinstance(updated, wire.Agent)
    assert (updated.id, updated.name, updated.cluster_name) == (agent_id, name, cluster)
    assert updated.status == "INACTIVE"
    assert updated.updated_at >= created.agent.updated_at

    activated = await admin.agents.activate(agent_id)
    assert activated.status == "ACTIVE" and activated.name == name
    assert (await admin.agents.get(agent_id)).status == "ACTIVE"
    assert (await admin.agents.deactivate(agent_id)).status == "INACTIVE"

    await admin.agents.delete(agent_id)
    await admin.agents.delete(agent_id)  # deleting twice is a no-op
    with pytest.raises(NotFound) as missing:
        await admin.agents.get(agent_id)
    assert missing.value.code == "agent_not_found"
    assert agent_id not in {agent.id for agent in await admin.agents.list()}
    async with live_broker.client(created.initial_pak) as deleted:
        with pytest.raises(Unauthorized):
            await deleted.auth.whoami()


async def test_heartbeat_with_the_agents_own_pak(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created = await new_agent(admin)

    async with live_broker.client(created.initial_pak) as agent:
        await agent.agents.heartbeat(created.agent.id)
        seen_by_itself = await agent.agents.get(created.agent.id)

    after = await admin.agents.get(created.agent.id)
    assert after.last_heartbeat is not None
    assert seen_by_itself.last_heartbeat == after.last_heartbeat


async def test_rotate_pak_returns_a_new_pak_and_the_old_one_is_refused(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created = await new_agent(admin)
    agent_id = created.agent.id

    rotated = await admin.agents.rotate_pak(agent_id)

    assert isinstance(rotated, wire.RotateAgentPakResponse)
    assert rotated.agent.id == agent_id and rotated.agent.name == created.agent.name
    assert paks.is_well_formed(rotated.pak) and rotated.pak != created.initial_pak
    async with live_broker.client(created.initial_pak) as old:
        with pytest.raises(Unauthorized) as refused:
            await old.auth.whoami()
    assert refused.value.status == 401
    async with live_broker.client(rotated.pak) as new:
        assert (await new.auth.whoami()).agent == agent_id
        # An agent may rotate its own PAK too.
        again = await new.agents.rotate_pak(agent_id)
    assert again.pak not in (rotated.pak, created.initial_pak)
    async with live_broker.client(again.pak) as newest:
        assert (await newest.auth.whoami()).agent == agent_id


async def test_agent_labels(admin: AsyncBrokkrClient) -> None:
    agent = (await new_agent(admin)).agent
    first, second = unique("env"), unique("tier")

    added = await admin.agents.add_label(agent.id, first)
    await admin.agents.add_label(agent.id, second)

    assert isinstance(added, wire.AgentLabel)
    assert (added.agent_id, added.label) == (agent.id, first)
    labels = await admin.agents.list_labels(agent.id)
    assert all(isinstance(label, wire.AgentLabel) for label in labels)
    assert sorted(label.label for label in labels) == sorted([first, second])
    assert added in labels

    await admin.agents.remove_label(agent.id, first)
    assert [label.label for label in await admin.agents.list_labels(agent.id)] == [second]


async def test_agent_annotations_including_a_key_with_a_slash(admin: AsyncBrokkrClient) -> None:
    agent = (await new_agent(admin)).agent
    key = f"app.kubernetes.io/{unique('name')}"

    added = await admin.agents.add_annotation(agent.id, key, "web")
    other = await admin.agents.add_annotation(agent.id, "plain", "value")

    assert isinstance(added, wire.AgentAnnotation)
    assert (added.agent_id, added.key, added.value) == (agent.id, key, "web")
    annotations = await admin.agents.list_annotations(agent.id)
    assert sorted(annotations, key=lambda a: a.key) == sorted([added, other], key=lambda a: a.key)

    await admin.agents.remove_annotation(agent.id, key)
    assert await admin.agents.list_annotations(agent.id) == [other]


async def test_agent_targets_and_associated_stacks(admin: AsyncBrokkrClient) -> None:
    agent = (await new_agent(admin)).agent
    stack = await admin.stacks.create(name=unique("stack"))

    target = await admin.agents.add_target(agent.id, stack.id)

    assert isinstance(target, wire.AgentTarget)
    assert (target.agent_id, target.stack_id) == (agent.id, stack.id)
    assert await admin.agents.list_targets(agent.id) == [target]
    assert await admin.agents.stacks(agent.id) == [stack]
    assert [a.id for a in await admin.stacks.agents(stack.id)] == [agent.id]

    await admin.agents.remove_target(agent.id, stack.id)
    assert await admin.agents.list_targets(agent.id) == []
    assert await admin.agents.stacks(agent.id) == []
    assert await admin.stacks.agents(stack.id) == []


async def test_target_state_etag_round_trip(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created, stack, first = await targeted_agent(admin)
    agent_id = created.agent.id

    async with live_broker.client(created.initial_pak) as agent:
        state = await agent.agents.target_state(agent_id)
        assert isinstance(state, TargetState)
        assert state.objects == [first]
        assert state.etag

        unchanged = await agent.agents.target_state(agent_id, etag=state.etag)
        assert unchanged == TargetState(etag=state.etag, objects=None)

        second = await admin.stacks.deploy(stack.id, manifest(unique("cm"), value="2"))
        changed = await agent.agents.target_state(agent_id, etag=state.etag)
        assert changed.objects == [second]  # only the newest object of each stack
        assert changed.etag and changed.etag != state.etag

        full = await agent.agents.target_state(agent_id, full=True)
        assert full.objects == [second]
        full_again = await agent.agents.target_state(agent_id, full=True, etag=full.etag)
        assert full_again.objects is None
    # Admins may read any agent's target state.
    assert (await admin.agents.target_state(agent_id)).objects == [second]


async def test_report_event_and_list_an_agents_events(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created, _, deployed = await targeted_agent(admin)
    agent_id = created.agent.id

    async with live_broker.client(created.initial_pak) as agent:
        failure = await agent.agents.report_event(
            agent_id, deployment_object_id=deployed.id, status="FAILURE", message="boom"
        )
        success = await agent.agents.report_event(
            agent_id, deployment_object_id=deployed.id, status="SUCCESS"
        )
        own = await agent.agents.events(agent_id)
        incremental = await agent.agents.target_state(agent_id)
        full = await agent.agents.target_state(agent_id, full=True)

    assert isinstance(failure, wire.AgentEvent)
    assert (failure.agent_id, failure.deployment_object_id) == (agent_id, deployed.id)
    assert (failure.status, failure.event_type, failure.message) == ("FAILURE", "DEPLOY", "boom")
    assert (success.status, success.message) == ("SUCCESS", None)
    assert await admin.agents.events(agent_id) == [success, failure]  # newest first
    assert own == [success, failure]
    assert await admin.agents.events(agent_id, limit=1, offset=1) == [failure]
    # A SUCCESS takes the object out of the incremental target state, not the full one.
    assert incremental.objects == []
    assert full.objects == [deployed]


# --- generators ------------------------------------------------------------------------------


async def test_generator_create_list_get_update_and_delete(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    name = unique("ci")

    created = await admin.generators.create(name=name, description="the pipeline")

    assert isinstance(created, wire.CreateGeneratorResponse)
    generator = created.generator
    assert isinstance(generator, wire.Generator)
    assert (generator.name, generator.description, generator.is_active) == (
        name,
        "the pipeline",
        True,
    )
    assert paks.is_well_formed(created.pak)
    listed = await admin.generators.list()
    assert all(isinstance(item, wire.Generator) for item in listed)
    assert generator.id in {item.id for item in listed}
    assert await admin.generators.get(generator.id) == generator
    async with live_broker.client(created.pak) as ci:
        assert (await ci.generators.get(generator.id)).name == name  # a generator reads itself

    renamed = unique("ci-renamed")
    updated = await admin.generators.update(generator.id, name=renamed, description=None)
    assert (updated.id, updated.name, updated.description) == (generator.id, renamed, None)
    kept = await admin.generators.update(generator.id, description="kept name")
    assert (kept.name, kept.description) == (renamed, "kept name")
    assert (await admin.generators.update(generator.id, is_active=False)).is_active is False
    assert (await admin.generators.update(generator.id, is_active=True)).is_active is True

    await admin.generators.delete(generator.id)
    with pytest.raises(NotFound) as missing:
        await admin.generators.get(generator.id)
    assert missing.value.code == "generator_not_found"
    assert generator.id not in {item.id for item in await admin.generators.list()}


async def test_generator_rotate_pak(live_broker: LiveBroker, admin: AsyncBrokkrClient) -> None:
    created = await admin.generators.create(name=unique("ci"))

    rotated = await admin.generators.rotate_pak(created.generator.id)

    assert isinstance(rotated, wire.CreateGeneratorResponse)
    assert rotated.generator.id == created.generator.id
    assert paks.is_well_formed(rotated.pak) and rotated.pak != created.pak
    async with live_broker.client(created.pak) as old:
        with pytest.raises(Unauthorized):
            await old.auth.whoami()
    async with live_broker.client(rotated.pak) as new:
        assert (await new.auth.whoami()).generator == created.generator.id


# --- stacks ----------------------------------------------------------------------------------


async def test_stack_create_list_get_find_update_and_delete(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    name = unique("web")

    stack = await admin.stacks.create(name=name, description="the web tier")

    assert isinstance(stack, wire.Stack)
    assert (stack.name, stack.description, stack.deleted_at) == (name, "the web tier", None)
    listed = await admin.stacks.list()
    assert all(isinstance(item, wire.Stack) for item in listed)
    assert stack in listed
    assert await admin.stacks.get(stack.id) == stack
    assert await admin.stacks.find(name) == stack
    assert await admin.stacks.find(unique("missing")) is None

    renamed = unique("web-renamed")
    updated = await admin.stacks.update(stack.id, name=renamed)
    assert (updated.id, updated.name, updated.description) == (stack.id, renamed, "the web tier")
    cleared = await admin.stacks.update(stack.id, description=None)
    assert (cleared.name, cleared.description) == (renamed, None)
    await admin.stacks.find(name)

    await admin.stacks.delete(stack.id)
    with pytest.raises(NotFound) as missing:
        await admin.stacks.get(stack.id)
    assert missing.value.code == "stack_not_found"
    await admin.stacks.find(renamed)


async def test_stacks_of_a_generator(live_broker: LiveBroker, admin: AsyncBrokkrClient) -> None:
    generator = await admin.generators.create(name=unique("ci"))
    generator_id = generator.generator.id
    admin_stack = await admin.stacks.create(name=unique("admin-owned"))

    async with live_broker.client(generator.pak) as ci:
        own = await ci.stacks.create(name=unique("ci-owned"))
        seen_by_generator = await ci.stacks.list()
        found = await ci.stacks.find(own.name)

    assert own.generator_id == generator_id
    assert seen_by_generator == [own]
    assert found == own
    assert await admin.stacks.list(generator_id=generator_id) == [own]
    assert admin_stack.generator_id != generator_id
    assert await admin.stacks.create(name=unique("given"), generator_id=generator_id) in (
        await admin.stacks.list(generator_id=generator_id)
    )


async def test_stack_labels_and_annotations(admin: AsyncBrokkrClient) -> None:
    stack = await admin.stacks.create(name=unique("stack"))
    label = unique("env")
    key = f"example.com/{unique('team')}"

    added_label = await admin.stacks.add_label(stack.id, label)
    added_annotation = await admin.stacks.add_annotation(stack.id, key, "platform")

    assert isinstance(added_label, wire.StackLabel)
    assert (added_label.stack_id, added_label.label) == (stack.id, label)
    assert await admin.stacks.list_labels(stack.id) == [added_label]
    assert isinstance(added_annotation, wire.StackAnnotation)
    assert (added_annotation.stack_id, added_annotation.key, added_annotation.value) == (
        stack.id,
        key,
        "platform",
    )
    assert await admin.stacks.list_annotations(stack.id) == [added_annotation]

    await admin.stacks.remove_label(stack.id, label)
    await admin.stacks.remove_annotation(stack.id, key)
    assert await admin.stacks.list_labels(stack.id) == []
    assert await admin.stacks.list_annotations(stack.id) == []


async def test_stack_agents_by_shared_label_and_annotation(admin: AsyncBrokkrClient) -> None:
    by_label = (await new_agent(admin)).agent
    by_annotation = (await new_agent(admin)).agent
    stack = await admin.stacks.create(name=unique("stack"))
    label, key = unique("env"), f"example.com/{unique('zone')}"
    await admin.agents.add_label(by_label.id, label)
    await admin.stacks.add_label(stack.id, label)
    await admin.agents.add_annotation(by_annotation.id, key, "north")
    await admin.stacks.add_annotation(stack.id, key, "north")

    agents = await admin.stacks.agents(stack.id)

    assert all(isinstance(agent, wire.Agent) for agent in agents)
    assert {agent.id for agent in agents} == {by_label.id, by_annotation.id}
    assert await admin.agents.stacks(by_label.id) == [stack]
    assert await admin.agents.stacks(by_annotation.id) == [stack]


async def test_deploy_list_deployment_objects_and_get_one(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    generator = await admin.generators.create(name=unique("ci"))
    yaml_one, yaml_two = manifest(unique("cm")), manifest(unique("cm"), value="2")

    async with live_broker.client(generator.pak) as ci:
        stack = await ci.stacks.create(name=unique("stack"))
        first = await ci.stacks.deploy(stack.id, yaml_one)
        second = await ci.stacks.deploy(stack.id, yaml_two)
        seen_by_owner = await ci.deployment_objects.get(first.id)

    assert isinstance(first, wire.DeploymentObject)
    assert (first.stack_id, first.yaml_content, first.is_deletion_marker) == (
        stack.id,
        yaml_one,
        False,
    )
    assert first.yaml_checksum and first.yaml_checksum != second.yaml_checksum
    assert second.sequence_id > first.sequence_id
    assert await admin.stacks.list_deployment_objects(stack.id) == [second, first]
    assert await admin.stacks.list_deployment_objects(stack.id, limit=1) == [second]
    assert await admin.deployment_objects.get(first.id) == first
    assert seen_by_owner == first

    marker = await admin.stacks.deploy(stack.id, yaml_two, is_deletion_marker=True)
    assert marker.is_deletion_marker is True
    assert (await admin.stacks.list_deployment_objects(stack.id))[0] == marker


# --- agent events ----------------------------------------------------------------------------


async def test_agent_events_list_get_and_iterate_in_pages(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    created, _, deployed = await targeted_agent(admin)
    agent_id = created.agent.id
    async with live_broker.client(created.initial_pak) as agent:
        reported = [
            await agent.agents.report_event(
                agent_id,
                deployment_object_id=deployed.id,
                status="FAILURE" if attempt < 4 else "SUCCESS",
                message=f"attempt {attempt}",
            )
            for attempt in range(5)
        ]
        own = await agent.agent_events.list()
        own_one = await agent.agent_events.get(reported[0].id)

    newest_first = list(reversed(reported))
    listed = await admin.agent_events.list(agent_id=agent_id)
    assert all(isinstance(event, wire.AgentEvent) for event in listed)
    assert listed == newest_first
    assert await admin.agent_events.list(deployment_object_id=deployed.id) == newest_first
    assert await admin.agent_events.list(agent_id=agent_id, limit=2, offset=4) == [reported[0]]
    assert own == newest_first  # an agent sees its own events only
    assert own_one == reported[0]
    assert await admin.agent_events.get(reported[2].id) == reported[2]

    paged = [event async for event in admin.agent_events.iterate(agent_id=agent_id, page=2)]
    assert paged == newest_first
    by_object = admin.agent_events.iterate(deployment_object_id=deployed.id, page=5)
    assert [event async for event in by_object] == newest_first


# --- audit logs ------------------------------------------------------------------------------


async def test_audit_logs_list_and_iterate(admin: AsyncBrokkrClient) -> None:
    agent_id = (await new_agent(admin)).agent.id
    await admin.agents.activate(agent_id)
    await admin.agents.deactivate(agent_id)
    await admin.agents.rotate_pak(agent_id)

    page = await admin.audit_logs.list(resource_id=agent_id)

    assert isinstance(page, wire.AuditLogList)
    assert (page.total, page.count, page.limit, page.offset) == (4, 4, 100, 0)
    assert all(isinstance(log, wire.AuditLog) for log in page.logs)
    assert [log.action for log in page.logs] == [
        "pak.rotated",
        "agent.updated",
        "agent.updated",
        "agent.created",
    ]
    assert {(log.resource_type, log.resource_id) for log in page.logs} == {("agent", agent_id)}
    assert {log.actor_type for log in page.logs} == {"admin"}

    second = await admin.audit_logs.list(resource_id=agent_id, limit=1, offset=1)
    assert (second.total, second.count, second.limit, second.offset) == (4, 1, 1, 1)
    assert second.logs == [page.logs[1]]
    updates = await admin.audit_logs.list(resource_id=agent_id, action="agent.*")
    assert [log.action for log in updates.logs] == [
        "agent.updated",
        "agent.updated",
        "agent.created",
    ]
    exact = await admin.audit_logs.list(resource_id=agent_id, action="agent.created")
    assert exact.logs == [page.logs[-1]]
    future = datetime.now(UTC) + timedelta(days=1)
    assert (await admin.audit_logs.list(resource_id=agent_id, since=future)).total == 0
    assert (await admin.audit_logs.list(resource_id=agent_id, until=future)).total == 4

    iterated = [log async for log in admin.audit_logs.iterate(page=3, resource_id=agent_id)]
    assert iterated == page.logs
    assert [log async for log in admin.audit_logs.iterate(page=2, resource_id=agent_id)] == (
        page.logs
    )
