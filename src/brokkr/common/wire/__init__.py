"""The v1 wire contract as msgspec Structs, one module per resource. Defined once, used by all."""

from brokkr.common.wire.agent_events import AgentEvent, EventStatus, NewAgentEvent
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
from brokkr.common.wire.config import ConfigChangeInfo, ConfigReloadResponse
from brokkr.common.wire.deployment_objects import CreateDeploymentObjectRequest, DeploymentObject
from brokkr.common.wire.errors import ErrorBody
from brokkr.common.wire.generators import (
    CreateGeneratorResponse,
    Generator,
    GeneratorUpdate,
    NewGenerator,
)
from brokkr.common.wire.stacks import (
    NewStack,
    NewStackAnnotation,
    NewStackLabel,
    Stack,
    StackAnnotation,
    StackLabel,
    StackUpdate,
)
from brokkr.common.wire.targets import AgentTarget, NewAgentTarget
from brokkr.common.wire.templates import (
    CreateTemplateRequest,
    NewTemplateAnnotation,
    NewTemplateLabel,
    StackTemplate,
    TemplateAnnotation,
    TemplateInstantiationRequest,
    TemplateLabel,
    TemplateProvenance,
    TemplateRenderRequest,
    TemplateRenderResult,
    UpdateTemplateRequest,
)
from brokkr.common.wire.types import fit_event_message
from brokkr.common.wire.work_orders import (
    ClaimWorkOrderRequest,
    CompleteWorkOrderRequest,
    CreateWorkOrderRequest,
    WorkOrder,
    WorkOrderLog,
    WorkOrderRetryScheduled,
    WorkOrderTargeting,
)

__all__ = [
    "Agent",
    "AgentAnnotation",
    "AgentEvent",
    "AgentLabel",
    "AgentStatus",
    "AgentTarget",
    "AgentUpdate",
    "AuditLog",
    "AuditLogList",
    "AuthResponse",
    "ClaimWorkOrderRequest",
    "CompleteWorkOrderRequest",
    "ConfigChangeInfo",
    "ConfigReloadResponse",
    "CreateAgentResponse",
    "CreateDeploymentObjectRequest",
    "CreateGeneratorResponse",
    "CreateTemplateRequest",
    "CreateWorkOrderRequest",
    "DeploymentObject",
    "ErrorBody",
    "EventStatus",
    "Generator",
    "GeneratorUpdate",
    "NewAgent",
    "NewAgentAnnotation",
    "NewAgentEvent",
    "NewAgentLabel",
    "NewAgentTarget",
    "NewGenerator",
    "NewStack",
    "NewStackAnnotation",
    "NewStackLabel",
    "NewTemplateAnnotation",
    "NewTemplateLabel",
    "RotateAgentPakResponse",
    "Stack",
    "StackAnnotation",
    "StackLabel",
    "StackTemplate",
    "StackUpdate",
    "TemplateAnnotation",
    "TemplateInstantiationRequest",
    "TemplateLabel",
    "TemplateProvenance",
    "TemplateRenderRequest",
    "TemplateRenderResult",
    "UpdateTemplateRequest",
    "WorkOrder",
    "WorkOrderLog",
    "WorkOrderRetryScheduled",
    "WorkOrderTargeting",
    "fit_event_message",
]
