"""The error catalogue pins every stable code: clients match on ``code`` (D2), so adding,
renaming or moving one to another status must show up here as a deliberate change."""

from __future__ import annotations

import inspect
import pickle
import uuid

from brokkr.broker.domain import errors

# Every code the broker answers with, by the class that raises it.
CODES: dict[type[errors.BrokerError], tuple[int, str]] = {
    errors.InternalError: (500, "internal_error"),
    errors.MethodNotAllowed: (405, "method_not_allowed"),
    errors.UpgradeRequired: (426, "upgrade_required"),
    errors.InvalidParameter: (400, "invalid_parameter"),
    errors.InvalidJson: (400, "invalid_json"),
    errors.InvalidEncoding: (400, "invalid_encoding"),
    errors.InvalidText: (400, "invalid_text"),
    errors.MalformedRequest: (400, "malformed_request"),
    errors.CorsPreflightRefused: (400, "cors_preflight_refused"),
    errors.NameAndClusterRequired: (400, "name_and_cluster_required"),
    errors.InvalidParameters: (400, "invalid_parameters"),
    errors.NoTargetingSpecified: (400, "no_targeting_specified"),
    errors.InvalidWorkOrder: (400, "invalid_work_order"),
    errors.InvalidDiagnosticRequest: (400, "invalid_diagnostic_request"),
    errors.InvalidDiagnosticResult: (400, "invalid_diagnostic_result"),
    errors.DiagnosticSubmitDenied: (403, "diagnostic_not_owned"),
    errors.DiagnosticNotFound: (404, "diagnostic_not_found"),
    errors.DiagnosticNotOwned: (404, "diagnostic_not_found"),
    errors.DiagnosticAlreadyClaimed: (409, "diagnostic_already_claimed"),
    errors.DiagnosticNotClaimed: (409, "diagnostic_not_claimed"),
    errors.DiagnosticResultTooLarge: (413, "diagnostic_result_too_large"),
    errors.DiagnosticAgentNotFound: (422, "agent_not_found"),
    errors.DiagnosticAgentNotServed: (422, "deployment_object_not_served"),
    errors.WorkOrderNotClaimedByAgent: (403, "work_order_not_claimed_by_agent"),
    errors.AgentPakRequired: (403, "agent_pak_required"),
    errors.AgentNotActive: (403, "agent_not_active"),
    errors.DeliveryNotAcquiredByAgent: (403, "delivery_not_acquired_by_agent"),
    errors.DeliveryNotFound: (404, "delivery_not_found"),
    errors.WebhookNotFound: (404, "webhook_not_found"),
    errors.WebhookTestFailed: (400, "webhook_test_failed"),
    errors.HealthReadDenied: (403, "health_read_denied"),
    errors.InvalidHealthReport: (422, "invalid_health_report"),
    errors.WorkOrderNotFound: (404, "work_order_not_found"),
    errors.WorkOrderNotClaimable: (404, "work_order_not_claimable"),
    errors.WorkOrderLogEntryNotFound: (404, "work_order_log_entry_not_found"),
    errors.WorkOrderNotClaimed: (409, "work_order_not_claimed"),
    errors.InvalidTargeting: (422, "invalid_targeting"),
    errors.UnknownTargetAgents: (422, "unknown_target_agents"),
    errors.PakRequired: (401, "unauthorized"),
    errors.AdminRequired: (403, "admin_required"),
    errors.AgentPakMismatch: (403, "agent_pak_mismatch"),
    errors.AgentUpdateForbidden: (403, "agent_update_forbidden"),
    errors.GeneratorNotOwned: (403, "generator_not_owned"),
    errors.GeneratorUpdateForbidden: (403, "generator_update_forbidden"),
    errors.AdminGeneratorProtected: (403, "admin_generator_protected"),
    errors.IdMismatch: (403, "id_mismatch"),
    errors.AgentIdMismatch: (403, "agent_id_mismatch"),
    errors.StackIdMismatch: (403, "stack_id_mismatch"),
    errors.TargetCreateDenied: (403, "target_create_denied"),
    errors.StackGeneratorMismatch: (403, "stack_generator_mismatch"),
    errors.StackCreateDenied: (403, "stack_create_denied"),
    errors.StackOwnerImmutable: (403, "stack_owner_immutable"),
    errors.StacksListDenied: (403, "stacks_list_denied"),
    errors.TemplatesNotAccessible: (403, "templates_not_accessible"),
    errors.TemplateNotOwned: (403, "template_not_owned"),
    errors.RouteNotFound: (404, "not_found"),
    errors.AgentNotFound: (404, "agent_not_found"),
    errors.GeneratorNotFound: (404, "generator_not_found"),
    errors.StackNotFound: (404, "stack_not_found"),
    errors.TemplateNotFound: (404, "template_not_found"),
    errors.TemplateNotAccessible: (404, "template_not_found"),
    errors.TemplateLabelNotFound: (404, "template_label_not_found"),
    errors.TemplateAnnotationNotFound: (404, "template_annotation_not_found"),
    errors.ProvenanceNotFound: (404, "provenance_not_found"),
    errors.TemplateLabelExists: (409, "template_label_exists"),
    errors.TemplateAnnotationExists: (409, "template_annotation_exists"),
    errors.TemplateTooLarge: (413, "template_too_large"),
    errors.TemplateStackMismatch: (422, "template_stack_mismatch"),
    errors.ParametersSchemaNotJson: (422, "invalid_parameters_schema"),
    errors.StackNotOwned: (404, "stack_not_found"),
    errors.DeploymentObjectNotFound: (404, "deployment_object_not_found"),
    errors.AgentEventNotFound: (404, "agent_event_not_found"),
    errors.AgentLabelNotFound: (404, "agent_label_not_found"),
    errors.AgentAnnotationNotFound: (404, "agent_annotation_not_found"),
    errors.StackLabelNotFound: (404, "stack_label_not_found"),
    errors.StackAnnotationNotFound: (404, "stack_annotation_not_found"),
    errors.AgentTargetNotFound: (404, "agent_target_not_found"),
    errors.AgentNameTaken: (409, "agent_name_taken"),
    errors.GeneratorNameTaken: (409, "generator_name_taken"),
    errors.StackNameTaken: (409, "stack_name_taken"),
    errors.AgentLabelExists: (409, "agent_label_exists"),
    errors.StackLabelExists: (409, "stack_label_exists"),
    errors.AgentAnnotationExists: (409, "agent_annotation_exists"),
    errors.StackAnnotationExists: (409, "stack_annotation_exists"),
    errors.AgentTargetExists: (409, "agent_target_exists"),
    errors.RequestTimedOut: (408, "request_timeout"),
    errors.UnsupportedContentType: (415, "unsupported_media_type"),
    errors.ValidationFailed: (422, "validation_failed"),
    errors.TemplateRenderTimedOut: (422, "template_render_timeout"),
    errors.TemplateMemoryExceeded: (422, "template_memory_exceeded"),
    errors.NestingTooDeep: (422, "nesting_too_deep"),
    errors.GeneratorNameReserved: (422, "generator_name_reserved"),
    errors.GeneratorIdRequired: (422, "validation_failed"),
    errors.StackOwnerNotFound: (422, "generator_not_found"),
    errors.DeploymentObjectNotServed: (422, "deployment_object_not_served"),
    errors.InvalidYaml: (422, "invalid_yaml"),
    errors.InvalidDeploymentObject: (422, "invalid_deployment_object"),
    errors.YamlLimitExceeded: (422, "yaml_limit_exceeded"),
    errors.TemplateSyntaxInvalid: (422, "invalid_template_syntax"),
    errors.TemplateRenderFailed: (422, "template_render_failed"),
    errors.TemplateFuelExhausted: (422, "template_fuel_exhausted"),
    errors.TemplateOutputTooLarge: (422, "template_output_too_large"),
    errors.ParametersSchemaInvalid: (422, "invalid_parameters_schema"),
    errors.DeploymentObjectTooLarge: (413, "deployment_object_too_large"),
    errors.ValidationTimedOut: (503, "validation_timeout"),
    errors.ConstraintViolation: (422, "constraint_violation"),
    errors.InvalidConfiguration: (422, "invalid_configuration"),
    errors.DatabaseUnavailable: (503, "database_unavailable"),
    errors.AgentChannelFull: (503, "agent_channel_full"),
    errors.LiveStreamsFull: (503, "live_streams_full"),
    errors.MigrationsPending: (503, "migrations_pending"),
    errors.BrokerSchemaMissing: (503, "schema_missing"),
}

# The status groups: never raised, so they carry no code.
STATUSES: dict[type[errors.BrokerError], int] = {
    errors.BrokerError: 500,
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RequestTimeout: 408,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.Unprocessable: 422,
    errors.Unavailable: 503,
}


def _catalogue() -> set[type[errors.BrokerError]]:
    return {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.BrokerError) and cls.__module__ == errors.__name__
    }


def test_every_error_class_is_pinned() -> None:
    assert _catalogue() == set(CODES) | set(STATUSES)


def test_every_code_has_its_status() -> None:
    assert {cls: (cls.status, cls.code) for cls in CODES} == CODES


def test_status_groups_carry_no_code() -> None:
    for cls, status in STATUSES.items():
        assert cls.status == status
        assert not hasattr(cls, "code"), cls


def test_bodies_are_built_from_the_facts() -> None:
    agent_id = uuid.uuid4()
    missing = errors.AgentNotFound(agent_id)
    assert (missing.message, missing.details) == ("agent not found", {"id": str(agent_id)})
    assert errors.AgentNotFound().details is None
    mismatch = errors.AgentIdMismatch()
    assert mismatch.message == "agent_id in the body does not match the path"
    assert mismatch.details == {"field": "agent_id"}
    invalid = errors.InvalidDeploymentObject("is not a mapping", document=2)
    assert invalid.message == "document 2: is not a mapping"
    assert invalid.details == {"field": "yaml_content", "document": 2}


def test_errors_cross_a_process_boundary_unchanged() -> None:
    """Template errors are raised in the render worker and re-raised in the broker."""
    for error in (
        errors.TemplateSyntaxInvalid("unexpected end", line=3, column=7),
        errors.InvalidParameters(["/replicas: 0 is less than 1"]),
        errors.TemplateRenderTimedOut(5.0),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(copy) is type(error)
        assert (copy.status, copy.code, copy.message, copy.details) == (
            error.status,
            error.code,
            error.message,
            error.details,
        )
