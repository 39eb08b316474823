"""The data layer: the schema, the engine and small named queries. The only broker code that
speaks SQL; it returns wire Structs or internal row Structs, never SQLAlchemy rows."""

from brokkr.broker.db import (  # noqa: I001 - the engine must load before the query modules
    admins,
    agent_events,
    agent_metadata,
    agents,
    audit,
    deployment_objects,
    generators,
    identities,
    labelling,
    locking,
    notify,
    outbox,
    prepared,
    schema_version,
    stack_metadata,
    stacks,
    target_state,
    targeting,
)
from brokkr.broker.db.engine import Database, Timeouts, Tx, create

__all__ = [
    "Database",
    "Timeouts",
    "Tx",
    "admins",
    "agent_events",
    "agent_metadata",
    "agents",
    "audit",
    "create",
    "deployment_objects",
    "generators",
    "identities",
    "labelling",
    "locking",
    "notify",
    "outbox",
    "prepared",
    "schema_version",
    "stack_metadata",
    "stacks",
    "target_state",
    "targeting",
]
