"""The error catalogue: one class per stable ``code``, each with its HTTP status (D2).

A class takes only the facts its body reports and builds the message and details itself, so a
code reads the same wherever it is raised; the API renders every one the same way. The status
classes group the codes and are never raised themselves.

BrokerError
├── BadRequest (400)          ├── Forbidden (403)     ├── Conflict (409)
├── Unauthorized (401)        ├── NotFound (404)      ├── Unprocessable (422)
├── UnsupportedMediaType (415)                        └── Unavailable (503)
├── PayloadTooLarge (413)
├── RequestTimeout (408)
└── MethodNotAllowed (405), InternalError (500)
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID


class BrokerError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str]
    text: ClassVar[str] = ""
    # A refusal of who is asking rather than of what was asked: audited on write calls (D11).
    denial: ClassVar[bool] = False

    def __init__(
        self, *, message: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        self.message = self.text if message is None else message
        self.details = details
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in the template worker process and re-raised here: rebuilt from what it says,
        # not by calling a constructor that takes other arguments.
        return (_restore, (type(self), self.message, self.details))


def _restore(kind: type[BrokerError], message: str, details: dict[str, Any] | None) -> BrokerError:
    error = kind.__new__(kind)
    BrokerError.__init__(error, message=message, details=details)
    return error


class BadRequest(BrokerError):
    status = 400


class Unauthorized(BrokerError):
    status = 401
    denial = True


class Forbidden(BrokerError):
    status = 403
    denial = True


class NotFound(BrokerError):
    status = 404


class Conflict(BrokerError):
    status = 409


class RequestTimeout(BrokerError):
    status = 408


class PayloadTooLarge(BrokerError):
    status = 413


class UnsupportedMediaType(BrokerError):
    status = 415


class Unprocessable(BrokerError):
    status = 422


class Unavailable(BrokerError):
    status = 503


class UpgradeRequired(BrokerError):
    status = 426
    code = "upgrade_required"
    text = "this endpoint speaks WebSocket only: send an Upgrade: websocket request"


class InternalError(BrokerError):
    code = "internal_error"
    text = "internal server error"


class MethodNotAllowed(BrokerError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(message=f"{method} is not allowed on {path}")


# 400


class InvalidParameter(BadRequest):
    code = "invalid_parameter"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(message="invalid request parameter", details={"fields": fields})


class InvalidJson(BadRequest):
    code = "invalid_json"

    def __init__(self, reason: object) -> None:
        super().__init__(message=f"the request body is not valid JSON: {reason}")


class InvalidEncoding(BadRequest):
    code = "invalid_encoding"
    text = "the YAML body is not UTF-8"


class InvalidText(BadRequest):
    code = "invalid_text"
    text = "text may not contain NUL characters"


class MalformedRequest(BadRequest):
    """What the HTTP parser answers to bytes that are not an HTTP/1.1 request."""

    code = "malformed_request"
    text = "the request is not valid HTTP/1.1"


class CorsPreflightRefused(BadRequest):
    code = "cors_preflight_refused"

    def __init__(self, refused: list[str]) -> None:
        message = f"CORS pre-flight refused: {', '.join(refused) or 'not allowed'}"
        super().__init__(message=message, details={"refused": refused})


class NameAndClusterRequired(BadRequest):
    code = "name_and_cluster_required"
    text = "query parameters name and cluster_name are both required"


class InvalidParameters(BadRequest):
    """Template parameters that break the template's schema: every violation, each as
    ``"<JSON pointer>: <message>"`` (just the message at the root), as the reference lists them."""

    code = "invalid_parameters"

    def __init__(self, violations: list[str]) -> None:
        details = {"validation_errors": violations}
        super().__init__(message="invalid parameters", details=details)


class NoTargetingSpecified(BadRequest):
    code = "no_targeting_specified"
    text = "at least one targeting method must be specified (agent_ids, labels, or annotations)"


class InvalidWorkOrder(BadRequest):
    code = "invalid_work_order"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message=message, details={"field": field})


class InvalidDiagnosticRequest(BadRequest):
    code = "invalid_diagnostic_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message=message, details={"field": field})


class InvalidDiagnosticResult(BadRequest):
    code = "invalid_diagnostic_result"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message=message, details={"field": field})


class WebhookTestFailed(BadRequest):
    """The test delivery did not get a 2xx: ``status_code`` and the start of the answer's body
    when the endpoint answered, none when the request itself failed."""

    code = "webhook_test_failed"

    def __init__(self, problem: str, *, status_code: int | None = None, body: str = "") -> None:
        details = None if status_code is None else {"status_code": status_code, "body": body}
        super().__init__(message=problem, details=details)


# 401


class PakRequired(Unauthorized):
    code = "unauthorized"
    text = "a valid PAK is required"


# 403


class AdminRequired(Forbidden):
    code = "admin_required"
    text = "admin access required"


class AgentPakMismatch(Forbidden):
    code = "agent_pak_mismatch"

    def __init__(self, *, itself_only: bool = False) -> None:
        if itself_only:
            super().__init__(message="only the agent itself may do this")
        else:
            super().__init__(message="access to this agent is not allowed")


class AgentUpdateForbidden(Forbidden):
    code = "agent_update_forbidden"

    def __init__(self, fields: list[str]) -> None:
        message = "only an admin may change an agent's name, cluster or status"
        super().__init__(message=message, details={"fields": fields})


class GeneratorNotOwned(Forbidden):
    code = "generator_not_owned"
    text = "access to this generator is not allowed"


class GeneratorUpdateForbidden(Forbidden):
    code = "generator_update_forbidden"

    def __init__(self) -> None:
        message = "only an admin may activate or deactivate a generator"
        super().__init__(message=message, details={"fields": ["is_active"]})


class AdminGeneratorProtected(Forbidden):
    code = "admin_generator_protected"

    def __init__(self, action: str) -> None:
        super().__init__(message=f"the admin-generator cannot be {action}")


class IdMismatch(Forbidden):
    """D8: an id sent in the body must equal the id in the path."""

    code = "id_mismatch"
    field: ClassVar[str] = "id"

    def __init__(self) -> None:
        message = f"{self.field} in the body does not match the path"
        super().__init__(message=message, details={"field": self.field})


class AgentIdMismatch(IdMismatch):
    code = "agent_id_mismatch"
    field = "agent_id"


class StackIdMismatch(IdMismatch):
    code = "stack_id_mismatch"
    field = "stack_id"


class TargetCreateDenied(Forbidden):
    code = "target_create_denied"
    text = "agents cannot change targets"


class StackGeneratorMismatch(Forbidden):
    code = "stack_generator_mismatch"
    text = "a generator may only create stacks for itself"


class StackCreateDenied(Forbidden):
    code = "stack_create_denied"
    text = "only admins and generators create stacks"


class StackOwnerImmutable(Forbidden):
    code = "stack_owner_immutable"
    text = "a stack's owner (generator_id) cannot be changed"


class StacksListDenied(Forbidden):
    code = "stacks_list_denied"

    def __init__(self, *, agent: bool) -> None:
        if agent:
            super().__init__(message="agents cannot list stacks")
        else:
            super().__init__(message="a generator lists only its own stacks")


class TemplatesNotAccessible(Forbidden):
    code = "templates_not_accessible"
    text = "only admins and generators may list or create templates"


class TemplateNotOwned(Forbidden):
    """A generator may read and instantiate a system template but never change it (D8)."""

    code = "template_not_owned"

    def __init__(self, template_id: UUID) -> None:
        message = "only an admin may change a system template"
        super().__init__(message=message, details={"id": str(template_id)})


class WorkOrderNotClaimedByAgent(Forbidden):
    code = "work_order_not_claimed_by_agent"
    text = "work order is not claimed by this agent"


class HealthReadDenied(Forbidden):
    """Deployment health is read by admins and the owning generator; an agent reports it."""

    code = "health_read_denied"
    text = "only admins and the owning generator read deployment health"


class AgentPakRequired(Forbidden):
    """Only the agent that delivered a webhook reports its outcome: admins included, nobody
    reports on an agent's behalf."""

    code = "agent_pak_required"
    text = "agent authentication required"


class AgentNotActive(Forbidden):
    """Only an ACTIVE agent opens the channel (an inactive agent pauses until activated)."""

    code = "agent_not_active"
    text = "the agent is not active"


class DeliveryNotAcquiredByAgent(Forbidden):
    """The delivery is not (or no longer: its claim expired) held by the calling agent."""

    code = "delivery_not_acquired_by_agent"
    text = "the webhook delivery is not acquired by this agent"


class DiagnosticSubmitDenied(Forbidden):
    """A result is the agent's own observation: an admin may claim for it, never answer."""

    code = "diagnostic_not_owned"
    text = "only the agent the diagnostic request is for may submit its result"


# 404


class RouteNotFound(NotFound):
    code = "not_found"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(message=f"no route for {method} {path}")


class AgentNotFound(NotFound):
    code = "agent_not_found"

    def __init__(self, agent_id: UUID | None = None) -> None:
        details = None if agent_id is None else {"id": str(agent_id)}
        super().__init__(message="agent not found", details=details)


class GeneratorNotFound(NotFound):
    code = "generator_not_found"

    def __init__(self, generator_id: UUID) -> None:
        super().__init__(message="generator not found", details={"id": str(generator_id)})


class StackNotFound(NotFound):
    code = "stack_not_found"

    def __init__(self, stack_id: UUID) -> None:
        super().__init__(message="stack not found", details={"id": str(stack_id)})


class StackNotOwned(StackNotFound):
    """A stack the caller may not see answers exactly like a missing one, so stack ids are no
    existence oracle (D8); it is still a denial for the audit trail."""

    denial = True


class TemplateNotFound(NotFound):
    code = "template_not_found"

    def __init__(self, template_id: UUID) -> None:
        super().__init__(message="template not found", details={"id": str(template_id)})


class TemplateNotAccessible(TemplateNotFound):
    """Another generator's template answers exactly like a missing one (D8, D9); still a
    denial for the audit trail."""

    denial = True


class DeploymentObjectNotFound(NotFound):
    code = "deployment_object_not_found"

    def __init__(self, object_id: UUID) -> None:
        super().__init__(message="deployment object not found", details={"id": str(object_id)})


class AgentEventNotFound(NotFound):
    code = "agent_event_not_found"

    def __init__(self, event_id: UUID) -> None:
        super().__init__(message="agent event not found", details={"id": str(event_id)})


class AgentLabelNotFound(NotFound):
    code = "agent_label_not_found"

    def __init__(self, label: str) -> None:
        super().__init__(message="the agent has no such label", details={"label": label})


class AgentAnnotationNotFound(NotFound):
    code = "agent_annotation_not_found"

    def __init__(self, key: str) -> None:
        message = "the agent has no annotation with this key"
        super().__init__(message=message, details={"key": key})


class StackLabelNotFound(NotFound):
    code = "stack_label_not_found"

    def __init__(self, label: str) -> None:
        super().__init__(message="the stack has no such label", details={"label": label})


class StackAnnotationNotFound(NotFound):
    code = "stack_annotation_not_found"

    def __init__(self, key: str) -> None:
        message = "the stack has no annotation with this key"
        super().__init__(message=message, details={"key": key})


class TemplateLabelNotFound(NotFound):
    code = "template_label_not_found"

    def __init__(self, label: str) -> None:
        super().__init__(message="the template has no such label", details={"label": label})


class TemplateAnnotationNotFound(NotFound):
    code = "template_annotation_not_found"

    def __init__(self, key: str) -> None:
        message = "the template has no annotation with this key"
        super().__init__(message=message, details={"key": key})


class ProvenanceNotFound(NotFound):
    code = "provenance_not_found"

    def __init__(self, object_id: UUID) -> None:
        message = "the deployment object was not rendered from a template"
        super().__init__(message=message, details={"id": str(object_id)})


class AgentTargetNotFound(NotFound):
    code = "agent_target_not_found"

    def __init__(self, stack_id: UUID) -> None:
        message = "the agent does not target this stack"
        super().__init__(message=message, details={"stack_id": str(stack_id)})


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"

    def __init__(self, delivery_id: UUID) -> None:
        super().__init__(message="webhook delivery not found", details={"id": str(delivery_id)})


class WebhookNotFound(NotFound):
    code = "webhook_not_found"

    def __init__(self, subscription_id: UUID) -> None:
        message = "webhook subscription not found"
        super().__init__(message=message, details={"id": str(subscription_id)})


class WorkOrderNotFound(NotFound):
    code = "work_order_not_found"

    def __init__(self, work_order_id: UUID) -> None:
        super().__init__(message="work order not found", details={"id": str(work_order_id)})


class WorkOrderNotClaimable(NotFound):
    """Unknown, not PENDING, not meant for this agent, or claimed by another one first."""

    code = "work_order_not_claimable"

    def __init__(self, work_order_id: UUID) -> None:
        message = "work order not found or not claimable"
        super().__init__(message=message, details={"id": str(work_order_id)})


class WorkOrderLogEntryNotFound(NotFound):
    code = "work_order_log_entry_not_found"

    def __init__(self, entry_id: UUID) -> None:
        message = "work order log entry not found"
        super().__init__(message=message, details={"id": str(entry_id)})


class DiagnosticNotFound(NotFound):
    code = "diagnostic_not_found"

    def __init__(self, request_id: UUID) -> None:
        message = "diagnostic request not found"
        super().__init__(message=message, details={"id": str(request_id)})


class DiagnosticNotOwned(DiagnosticNotFound):
    """Another agent's (or any generator's) request answers exactly like a missing one, so
    request ids are no existence oracle (flaw 16); still a denial for the audit trail."""

    denial = True


# 409


class AgentNameTaken(Conflict):
    code = "agent_name_taken"

    def __init__(self) -> None:
        message = "an agent with this name already exists in this cluster"
        super().__init__(message=message, details={"constraint": "unique_agent_cluster"})


class GeneratorNameTaken(Conflict):
    code = "generator_name_taken"

    def __init__(self) -> None:
        message = "a generator with this name already exists"
        super().__init__(message=message, details={"constraint": "unique_generator_name"})


class StackNameTaken(Conflict):
    code = "stack_name_taken"

    def __init__(self) -> None:
        message = "a stack with this name already exists"
        super().__init__(message=message, details={"constraint": "unique_stack_name"})


class AgentLabelExists(Conflict):
    code = "agent_label_exists"

    def __init__(self, label: str) -> None:
        super().__init__(message="the agent already has this label", details={"label": label})


class StackLabelExists(Conflict):
    code = "stack_label_exists"

    def __init__(self, label: str) -> None:
        super().__init__(message="the stack already has this label", details={"label": label})


class AgentAnnotationExists(Conflict):
    code = "agent_annotation_exists"

    def __init__(self, key: str) -> None:
        message = "the agent already has an annotation with this key"
        super().__init__(message=message, details={"key": key})


class StackAnnotationExists(Conflict):
    code = "stack_annotation_exists"

    def __init__(self, key: str) -> None:
        message = "the stack already has an annotation with this key"
        super().__init__(message=message, details={"key": key})


class TemplateLabelExists(Conflict):
    code = "template_label_exists"

    def __init__(self, label: str) -> None:
        super().__init__(message="the template already has this label", details={"label": label})


class TemplateAnnotationExists(Conflict):
    code = "template_annotation_exists"

    def __init__(self, key: str) -> None:
        message = "the template already has an annotation with this key"
        super().__init__(message=message, details={"key": key})


class AgentTargetExists(Conflict):
    code = "agent_target_exists"

    def __init__(self, stack_id: UUID) -> None:
        message = "the agent already targets this stack"
        super().__init__(message=message, details={"stack_id": str(stack_id)})


class WorkOrderNotClaimed(Conflict):
    """D17: an order is completed only while CLAIMED, never while it waits in the queue."""

    code = "work_order_not_claimed"

    def __init__(self, status: str) -> None:
        message = f"work order is {status}, not CLAIMED: only a claimed order can be completed"
        super().__init__(message=message, details={"status": status})


class DiagnosticAlreadyClaimed(Conflict):
    """Only a pending request that has not expired can be claimed, and only once."""

    code = "diagnostic_already_claimed"

    def __init__(self, status: str) -> None:
        super().__init__(message=f"request is already {status}", details={"status": status})


class DiagnosticNotClaimed(Conflict):
    """A result answers a claimed request, once."""

    code = "diagnostic_not_claimed"

    def __init__(self, status: str) -> None:
        message = f"request status is {status}, expected 'claimed'"
        super().__init__(message=message, details={"status": status})


# 408


class RequestTimedOut(RequestTimeout):
    code = "request_timeout"

    def __init__(self, part: str, seconds: float) -> None:
        message = f"the request's {part} did not arrive within {seconds:g} s"
        super().__init__(message=message, details={"timeout_seconds": seconds})


# 413


class DeploymentObjectTooLarge(PayloadTooLarge):
    code = "deployment_object_too_large"

    def __init__(self, limit_bytes: int) -> None:
        message = f"yaml_content is larger than the limit of {limit_bytes} bytes"
        details = {"field": "yaml_content", "limit_bytes": limit_bytes}
        super().__init__(message=message, details=details)


class TemplateTooLarge(PayloadTooLarge):
    code = "template_too_large"

    def __init__(self, limit_bytes: int) -> None:
        message = f"template_content is larger than the limit of {limit_bytes} bytes"
        details = {"field": "template_content", "limit_bytes": limit_bytes}
        super().__init__(message=message, details=details)


class DiagnosticResultTooLarge(PayloadTooLarge):
    code = "diagnostic_result_too_large"

    def __init__(self, limit_bytes: int) -> None:
        message = (
            f"pod_statuses, events and log_tails together are larger than the limit of "
            f"{limit_bytes} bytes"
        )
        super().__init__(message=message, details={"limit_bytes": limit_bytes})


# 415


class UnsupportedContentType(UnsupportedMediaType):
    code = "unsupported_media_type"

    def __init__(
        self, media_type: str, *, accepted: tuple[str, ...] = ("application/json",)
    ) -> None:
        wanted = " or ".join(accepted)
        problem = f"unsupported content type {media_type!r}" if media_type else "no content type"
        super().__init__(message=f"{problem}; send {wanted}", details={"accepted": list(accepted)})


# 422


class ValidationFailed(Unprocessable):
    code = "validation_failed"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(message="the request body is invalid", details={"fields": fields})


class GeneratorNameReserved(Unprocessable):
    code = "generator_name_reserved"

    def __init__(self, reserved: str) -> None:
        message = f"the name looks like the reserved {reserved!r}"
        super().__init__(message=message, details={"fields": {"name": "reserved"}})


class NestingTooDeep(Unprocessable):
    code = "nesting_too_deep"

    def __init__(self, limit: int) -> None:
        message = f"the request body is nested deeper than {limit} levels"
        super().__init__(message=message, details={"max_depth": limit})


class GeneratorIdRequired(Unprocessable):
    code = "validation_failed"

    def __init__(self) -> None:
        fields = {"generator_id": "required"}
        super().__init__(message="generator_id is required", details={"fields": fields})


class StackOwnerNotFound(Unprocessable):
    """The generator named as a new stack's owner does not exist (or is deleted)."""

    code = "generator_not_found"

    def __init__(self) -> None:
        fields = {"generator_id": "unknown generator"}
        super().__init__(message="generator_id names no live generator", details={"fields": fields})


class DeploymentObjectNotServed(Unprocessable):
    code = "deployment_object_not_served"

    def __init__(self) -> None:
        fields = {"deployment_object_id": "not served to this agent"}
        message = "the deployment object is not one served to this agent"
        super().__init__(message=message, details={"fields": fields})


class InvalidHealthReport(Unprocessable):
    """A health report with problems, each ``{"index", "id", "reason"}`` (``index`` and ``id``
    null for a problem of the whole batch): an agent drops the entries named and resends the
    rest, so this shape is part of the contract."""

    code = "invalid_health_report"

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        message = f"the health report has {len(entries)} problem(s); nothing was written"
        super().__init__(message=message, details={"entries": entries})


class InvalidYaml(Unprocessable):
    code = "invalid_yaml"

    def __init__(self, reason: str) -> None:
        message = f"yaml_content is not valid YAML: {reason}"
        super().__init__(message=message, details={"field": "yaml_content"})


class InvalidDeploymentObject(Unprocessable):
    """``problem`` with the whole content, or with the (0-based) ``document`` when given."""

    code = "invalid_deployment_object"

    def __init__(self, problem: str, *, document: int | None = None) -> None:
        if document is None:
            super().__init__(message=problem, details={"field": "yaml_content"})
        else:
            details = {"field": "yaml_content", "document": document}
            super().__init__(message=f"document {document}: {problem}", details=details)


class YamlLimitExceeded(Unprocessable):
    """The (0-based) ``document`` exceeds a YAML ``limit``: depth, scalar_size, alias_expansion
    or recursive_alias."""

    code = "yaml_limit_exceeded"

    def __init__(self, limit: str, problem: str, *, document: int) -> None:
        details = {"field": "yaml_content", "document": document, "limit": limit}
        super().__init__(message=f"document {document}: {problem}", details=details)


class TemplateSyntaxInvalid(Unprocessable):
    """Template content that does not compile; ``line`` and ``column`` are 1-based."""

    code = "invalid_template_syntax"

    def __init__(self, problem: str, *, line: int, column: int) -> None:
        details = {"field": "template_content", "line": line, "column": column}
        super().__init__(message=f"Invalid Tera syntax: {problem}", details=details)


class TemplateRenderFailed(Unprocessable):
    """Rendering stopped on an error of the template or its parameters (an undefined variable,
    a filter given the wrong kind of value, ``throw``); ``line`` is 1-based."""

    code = "template_render_failed"

    def __init__(self, problem: str, *, line: int | None) -> None:
        super().__init__(message=f"Template rendering failed: {problem}", details={"line": line})


class TemplateFuelExhausted(Unprocessable):
    code = "template_fuel_exhausted"

    def __init__(self, fuel: int) -> None:
        message = f"rendering took more than {fuel} steps (an endless or too long loop?)"
        super().__init__(message=message, details={"fuel": fuel})


class TemplateOutputTooLarge(Unprocessable):
    code = "template_output_too_large"

    def __init__(self, limit_bytes: int) -> None:
        message = f"the rendered output is larger than {limit_bytes} bytes"
        super().__init__(message=message, details={"max_bytes": limit_bytes})


class TemplateRenderTimedOut(Unprocessable):
    code = "template_render_timeout"

    def __init__(self, timeout_seconds: float) -> None:
        message = f"the template did not render within {timeout_seconds:g} s"
        super().__init__(message=message, details={"timeout_seconds": timeout_seconds})


class TemplateMemoryExceeded(Unprocessable):
    code = "template_memory_exceeded"
    text = "the template needed more memory than a render may use"


class ParametersSchemaInvalid(Unprocessable):
    """A parameter schema that is not a JSON Schema, or that refers to a document outside itself
    (never fetched: D9); ``pointer`` locates the problem in the schema."""

    code = "invalid_parameters_schema"

    def __init__(self, problem: str, *, pointer: str = "") -> None:
        details = {"field": "parameters_schema", "pointer": pointer}
        super().__init__(message=f"Invalid JSON Schema: {problem}", details=details)


class TemplateStackMismatch(Unprocessable):
    """The template's labels and annotations are not all on the stack (api-core §10.4)."""

    code = "template_stack_mismatch"

    def __init__(self, missing_labels: list[str], missing_annotations: list[list[str]]) -> None:
        details = {"missing_labels": missing_labels, "missing_annotations": missing_annotations}
        super().__init__(message="template labels do not match stack", details=details)


class ParametersSchemaNotJson(Unprocessable):
    """``parameters_schema`` is a JSON object sent as a string; this one does not decode as one."""

    code = "invalid_parameters_schema"

    def __init__(self, reason: str) -> None:
        message = f"Invalid JSON: parameters_schema is not a JSON object: {reason}"
        super().__init__(message=message, details={"field": "parameters_schema"})


class ConstraintViolation(Unprocessable):
    """A database constraint other than a known unique one rejected the change."""

    code = "constraint_violation"

    def __init__(self, noun: str) -> None:
        super().__init__(message=f"the {noun} violates a database constraint")


class InvalidConfiguration(Unprocessable):
    """A reload found the configuration file or environment invalid; nothing was changed."""

    code = "invalid_configuration"

    def __init__(self, reason: str, keys: list[str]) -> None:
        message = f"the configuration is invalid, nothing was reloaded: {reason}"
        super().__init__(message=message, details={"keys": keys})


class InvalidTargeting(Unprocessable):
    """Every targeting entry that can never match an agent, so no order is created orphaned."""

    code = "invalid_targeting"

    def __init__(
        self, *, labels: list[str], annotations: dict[str, str], agent_ids: list[str]
    ) -> None:
        details: dict[str, Any] = {}
        if labels:
            details["labels"] = labels
        if annotations:
            details["annotations"] = annotations
        if agent_ids:
            details["agent_ids"] = agent_ids
        message = (
            "invalid targeting: labels, annotation keys and values are 1-64 characters without "
            "whitespace; agent ids are not nil"
        )
        super().__init__(message=message, details=details)


class UnknownTargetAgents(Unprocessable):
    code = "unknown_target_agents"

    def __init__(self, agent_ids: list[UUID]) -> None:
        message = "targeting names agents that do not exist"
        super().__init__(message=message, details={"agent_ids": [str(a) for a in agent_ids]})


class DiagnosticAgentNotFound(Unprocessable):
    """The agent named in a diagnostic request's body does not exist (or is deleted)."""

    code = "agent_not_found"

    def __init__(self) -> None:
        fields = {"agent_id": "unknown agent"}
        super().__init__(message="agent_id names no live agent", details={"fields": fields})


class DiagnosticAgentNotServed(Unprocessable):
    """An agent collects only the resources of objects it applied: those it is served."""

    code = "deployment_object_not_served"

    def __init__(self) -> None:
        fields = {"agent_id": "not served this deployment object"}
        message = "the deployment object is not one served to this agent"
        super().__init__(message=message, details={"fields": fields})


# 503


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    text = "database unavailable"


class LiveStreamsFull(Unavailable):
    code = "live_streams_full"

    def __init__(self, limit: int) -> None:
        message = f"this broker serves {limit} live streams already; retry later"
        super().__init__(message=message, details={"limit": limit})


class ValidationTimedOut(Unavailable):
    code = "validation_timeout"

    def __init__(self, seconds: float) -> None:
        message = f"the deployment object was not validated within {seconds:g} s; retry later"
        super().__init__(message=message)


class AgentChannelFull(Unavailable):
    code = "agent_channel_full"
    text = "this broker holds as many agent connections as it accepts; retry later"


class BrokerSchemaMissing(Unavailable):
    code = "schema_missing"

    def __init__(self) -> None:
        super().__init__(
            message="this database holds no Brokkr schema (is it the broker's database?)"
        )


class MigrationsPending(Unavailable):
    code = "migrations_pending"

    def __init__(self, current: str | None, expected: str) -> None:
        message = "database schema is not at the expected revision"
        super().__init__(message=message, details={"current": current, "expected": expected})
