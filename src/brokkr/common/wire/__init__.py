"""The v1 wire contract as msgspec Structs, one module per resource. Defined once, used by all."""

from brokkr.common.wire.agents import (
    Agent,
    AgentAnnotation,
    AgentLabel,
    AgentStatus,
    AgentUpdate,
    CreateAgentResponse,
    NewAgent,
    NewAgentAnnotation,
    NewAgentLabel,
    RotateAgentPakResponse,
)
from brokkr.common.wire.audit import AuditLog, AuditLogList
from brokkr.common.wire.auth import AuthResponse
from brokkr.common.wire.errors import ErrorBody
from brokkr.common.wire.generators import (
    CreateGeneratorResponse,
    Generator,
    GeneratorUpdate,
    NewGenerator,
)

__all__ = [
    "Agent",
    "AgentAnnotation",
    "AgentLabel",
    "AgentStatus",
    "AgentUpdate",
    "AuditLog",
    "AuditLogList",
    "AuthResponse",
    "CreateAgentResponse",
    "CreateGeneratorResponse",
    "ErrorBody",
    "Generator",
    "GeneratorUpdate",
    "NewAgent",
    "NewAgentAnnotation",
    "NewAgentLabel",
    "NewGenerator",
    "RotateAgentPakResponse",
]
