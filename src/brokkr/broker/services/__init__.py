"""Use cases. A use case that changes anything opens one unit of work (``ctx.work(caller)``,
``work.py``): the change, its audit record, its change notices and its outgoing events commit
together (D11, D15). Row-level access is decided here through ``domain.access``. No HTTP, no SQL."""

from brokkr.broker.services import (
    admin,
    agent_events,
    agent_metadata,
    agents,
    audit,
    config,
    context,
    deployment_objects,
    generators,
    readiness,
    stack_metadata,
    stacks,
    target_state,
    targets,
    template_metadata,
    templates,
    work_orders,
)

__all__ = [
    "admin",
    "agent_events",
    "agent_metadata",
    "agents",
    "audit",
    "config",
    "context",
    "deployment_objects",
    "generators",
    "readiness",
    "stack_metadata",
    "stacks",
    "target_state",
    "targets",
    "template_metadata",
    "templates",
    "work_orders",
]
