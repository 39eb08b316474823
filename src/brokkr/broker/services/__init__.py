"""Use cases. Each function owns its transaction: the change and its audit record commit together
(D11, D15); row-level access is decided here through ``domain.access``. No HTTP, no SQL."""

from brokkr.broker.services import (
    admin,
    agent_events,
    agent_metadata,
    agents,
    audit,
    context,
    deployment_objects,
    generators,
    readiness,
    stack_metadata,
    stacks,
    target_state,
    targets,
)

__all__ = [
    "admin",
    "agent_events",
    "agent_metadata",
    "agents",
    "audit",
    "context",
    "deployment_objects",
    "generators",
    "readiness",
    "stack_metadata",
    "stacks",
    "target_state",
    "targets",
]
