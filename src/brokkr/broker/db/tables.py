"""The schema: the single source of truth that Alembic migrations are checked against.

Soft-deletable tables carry ``deleted_at``; their uniqueness rules are partial unique indexes over
live rows, so a deleted name can be reused. PAK hashes are unique among live rows (D6).
"""

from __future__ import annotations

import sqlalchemy as sa

from brokkr.broker.db.types import JSONDocument, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _live_unique(name: str, *columns: str) -> sa.Index:
    where = sa.text("deleted_at IS NULL")
    return sa.Index(name, *columns, unique=True, postgresql_where=where, sqlite_where=where)


def _live_pak_hash(name: str) -> sa.Index:
    where = sa.text("deleted_at IS NULL AND pak_hash IS NOT NULL")
    return sa.Index(name, "pak_hash", unique=True, postgresql_where=where, sqlite_where=where)


# The single admin identity (D5); id is pinned to 1 so a second row cannot exist.
admin_role = sa.Table(
    "admin_role",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    *_timestamps(),
    sa.Column("pak_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.CheckConstraint("id = 1", name="singleton"),
)

generators = sa.Table(
    "generators",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("pak_hash", sa.String(64), nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.Column("last_active_at", UTCDateTime(), nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _live_unique("unique_generator_name", "name"),
    _live_pak_hash("ux_generators_live_pak_hash"),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("cluster_name", sa.String(255), nullable=False),
    sa.Column("last_heartbeat", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(50), nullable=False, server_default="INACTIVE"),
    sa.Column("pak_hash", sa.String(64), nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
    _live_unique("unique_agent_cluster", "name", "cluster_name"),
    _live_pak_hash("ux_agents_live_pak_hash"),
    sa.CheckConstraint("status IN ('ACTIVE', 'INACTIVE')", name="status"),
)

agent_labels = sa.Table(
    "agent_labels",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.UniqueConstraint("agent_id", "label", name="unique_agent_label"),
    sa.Index("ix_agent_labels_label", "label"),
)

agent_annotations = sa.Table(
    "agent_annotations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.UniqueConstraint("agent_id", "key", name="unique_agent_annotation_key"),
    sa.Index("ix_agent_annotations_key_value", "key", "value"),
)

audit_logs = sa.Table(
    "audit_logs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("timestamp", UTCDateTime(), nullable=False),
    sa.Column("actor_type", sa.String(20), nullable=False),
    sa.Column("actor_id", sa.Uuid, nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("resource_type", sa.String(50), nullable=False),
    sa.Column("resource_id", sa.Uuid, nullable=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("details", JSONDocument, nullable=True),
    sa.Column("ip_address", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(
        "actor_type IN ('admin', 'agent', 'generator', 'system')", name="actor_type"
    ),
    sa.Index("ix_audit_logs_timestamp", "timestamp"),
    sa.Index("ix_audit_logs_actor", "actor_type", "actor_id", "timestamp"),
    sa.Index("ix_audit_logs_resource", "resource_type", "resource_id", "timestamp"),
    sa.Index("ix_audit_logs_action", "action", "timestamp"),
    sa.Index("ix_audit_logs_created_at", "created_at"),
)

# Revoked PAK hashes, for brokers on SQLite that cannot LISTEN (D7); rows are pruned after minutes.
auth_revocations = sa.Table(
    "auth_revocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pak_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Global counters (deployment-object sequence ids). Taking the next value locks the row until
# commit, so ids are handed out in commit order on both databases.
sequence_counters = sa.Table(
    "sequence_counters",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

stacks = sa.Table(
    "stacks",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column(
        "generator_id", sa.Uuid, sa.ForeignKey("generators.id", ondelete="RESTRICT"), nullable=False
    ),
    _live_unique("unique_stack_name", "name"),
    sa.Index("ix_stacks_generator_id", "generator_id"),
)

stack_labels = sa.Table(
    "stack_labels",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("stack_id", sa.Uuid, sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.UniqueConstraint("stack_id", "label", name="unique_stack_label"),
    # Label matching goes from the agent's labels to the stacks carrying them.
    sa.Index("ix_stack_labels_label_stack", "label", "stack_id"),
)

# One value per key, like agent annotations (the reference allowed duplicates on stacks only).
stack_annotations = sa.Table(
    "stack_annotations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("stack_id", sa.Uuid, sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.UniqueConstraint("stack_id", "key", name="unique_stack_annotation_key"),
    sa.Index("ix_stack_annotations_key_value_stack", "key", "value", "stack_id"),
)

agent_targets = sa.Table(
    "agent_targets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stack_id", sa.Uuid, sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False),
    sa.UniqueConstraint("agent_id", "stack_id", name="unique_agent_stack"),
    sa.Index("ix_agent_targets_stack_id", "stack_id"),
)

# Immutable revisions of a stack's desired state; only deleted_at may ever change.
deployment_objects = sa.Table(
    "deployment_objects",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("sequence_id", sa.BigInteger, nullable=False),
    sa.Column("stack_id", sa.Uuid, sa.ForeignKey("stacks.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("yaml_content", sa.Text, nullable=False),
    sa.Column("yaml_checksum", sa.String(64), nullable=False),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("is_deletion_marker", sa.Boolean, nullable=False, server_default=sa.false()),
    # A deletion marker owed to agents that stopped being associated with a live stack: served
    # only through deletion_recipients, never a revision of its stack (never its newest, never
    # listed), so the agents still associated keep the stack's current object.
    sa.Column("owed_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("sequence_id", name="unique_deployment_object_sequence"),
    # "Newest live object of a stack" is a backward scan of this index.
    sa.Index(
        "ix_deployment_objects_latest_live",
        "stack_id",
        "sequence_id",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    ),
)

agent_events = sa.Table(
    "agent_events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "deployment_object_id",
        sa.Uuid,
        sa.ForeignKey("deployment_objects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_type", sa.String(50), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.CheckConstraint("status IN ('SUCCESS', 'FAILURE')", name="status"),
    # Incremental target state asks "did this agent report SUCCESS for this object?".
    sa.Index(
        "ix_agent_events_success",
        "agent_id",
        "deployment_object_id",
        postgresql_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
        sqlite_where=sa.text("status = 'SUCCESS' AND deleted_at IS NULL"),
    ),
    sa.Index("ix_agent_events_agent_created", "agent_id", "created_at"),
    sa.Index("ix_agent_events_object", "deployment_object_id"),
    sa.Index("ix_agent_events_created", "created_at"),
)

# D13: the agents associated with a stack when it was deleted, or that stopped being associated
# with a live stack, each owed its deletion marker until it reports SUCCESS for it.
deletion_recipients = sa.Table(
    "deletion_recipients",
    metadata,
    sa.Column(
        "agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "deployment_object_id",
        sa.Uuid,
        sa.ForeignKey("deployment_objects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_deletion_recipients_object", "deployment_object_id"),
)

# Target-state changes, for brokers on SQLite that cannot LISTEN: agent_id NULL means "any
# agent may be affected". Pruned after minutes.
state_changes = sa.Table(
    "state_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.Uuid, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Transactional outbox (D15, D18): events written in the transaction of the change they announce,
# delivered after the commit by whoever claims them; a rolled-back change leaves no event.
event_outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("data", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_event_outbox_created_at", "created_at"),
)

# One row per template version; a family is (generator_id, name), generator_id null for system
# templates. Rows are never changed but for soft deletion: an update inserts the next version.
stack_templates = sa.Table(
    "stack_templates",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column(
        "generator_id", sa.Uuid, sa.ForeignKey("generators.id", ondelete="RESTRICT"), nullable=True
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("template_content", sa.Text, nullable=False),
    sa.Column("parameters_schema", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    # Versions are assigned under a per-family lock; this is the backstop for generator families
    # (a null generator_id is distinct from every other, so system families rely on the lock).
    _live_unique("unique_template_version", "generator_id", "name", "version"),
    sa.Index("ix_stack_templates_family", "name", "generator_id"),
)
template_labels = sa.Table(
    "template_labels",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "template_id",
        sa.Uuid,
        sa.ForeignKey("stack_templates.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("template_id", "label", name="unique_template_label"),
)
template_annotations = sa.Table(
    "template_annotations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "template_id",
        sa.Uuid,
        sa.ForeignKey("stack_templates.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("template_id", "key", name="unique_template_annotation_key"),
)
# Provenance: the template version and parameters a deployment object was rendered from.
rendered_deployment_objects = sa.Table(
    "rendered_deployment_objects",
    metadata,
    sa.Column(
        "deployment_object_id",
        sa.Uuid,
        sa.ForeignKey("deployment_objects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "template_id",
        sa.Uuid,
        sa.ForeignKey("stack_templates.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("template_version", sa.Integer, nullable=False),
    # Compact JSON with sorted keys, kept as text so both databases return it byte for byte.
    sa.Column("template_parameters", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_rendered_deployment_objects_template", "template_id"),
)

# Work orders (D17): the active queue. A finished order moves to work_order_log with its id.
work_orders = sa.Table(
    "work_orders",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("work_type", sa.String(50), nullable=False),
    sa.Column("yaml_content", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    # No foreign key: the claim outlives an agent's deletion until it goes stale.
    sa.Column("claimed_by", sa.Uuid, nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("claim_timeout_seconds", sa.Integer, nullable=False),
    sa.Column("max_retries", sa.Integer, nullable=False),
    sa.Column("retry_count", sa.Integer, nullable=False),
    sa.Column("backoff_seconds", sa.Integer, nullable=False),
    sa.Column("next_retry_after", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('PENDING', 'CLAIMED', 'RETRY_PENDING')", name="status"),
    sa.CheckConstraint(
        "(status = 'CLAIMED') = (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)",
        name="claimed",
    ),
    sa.CheckConstraint("retry_count >= 0 AND retry_count <= max_retries", name="retry_count"),
    sa.CheckConstraint("claim_timeout_seconds > 0 AND backoff_seconds > 0", name="durations"),
    sa.Index("ix_work_orders_status_created_at", "status", "created_at"),
)

work_order_targets = sa.Table(
    "work_order_targets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "work_order_id",
        sa.Uuid,
        sa.ForeignKey("work_orders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.UniqueConstraint("work_order_id", "agent_id", name="unique_work_order_target"),
    sa.Index("ix_work_order_targets_agent_id", "agent_id"),
)

work_order_labels = sa.Table(
    "work_order_labels",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "work_order_id",
        sa.Uuid,
        sa.ForeignKey("work_orders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("label", sa.String(64), nullable=False),
    sa.UniqueConstraint("work_order_id", "label", name="unique_work_order_label"),
    sa.Index("ix_work_order_labels_label", "label"),
)

work_order_annotations = sa.Table(
    "work_order_annotations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "work_order_id",
        sa.Uuid,
        sa.ForeignKey("work_orders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.UniqueConstraint("work_order_id", "key", "value", name="unique_work_order_annotation"),
    sa.Index("ix_work_order_annotations_key_value", "key", "value"),
)

work_order_log = sa.Table(
    "work_order_log",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("work_type", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.Uuid, nullable=True),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("retries_attempted", sa.Integer, nullable=False),
    sa.Column("result_message", sa.Text, nullable=True),
    sa.Column("yaml_content", sa.Text, nullable=False),
    sa.Index("ix_work_order_log_completed_at", "completed_at"),
)

# The latest health each agent reported for a deployment object it applied: one row per pair,
# replaced by every report. ``summary`` is the HealthSummary as compact JSON text (the wire's
# DeploymentHealth carries it as a string).
deployment_health = sa.Table(
    "deployment_health",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "deployment_object_id",
        sa.Uuid,
        sa.ForeignKey("deployment_objects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("checked_at", UTCDateTime(), nullable=False),
    *_timestamps(),
    sa.CheckConstraint("status IN ('healthy', 'degraded', 'failing', 'unknown')", name="status"),
    sa.UniqueConstraint("agent_id", "deployment_object_id", name="unique_deployment_health"),
    sa.Index("ix_deployment_health_deployment_object_id", "deployment_object_id"),
)

# On-demand diagnostics: an operator asks one agent to collect the pods, events and log tails
# of one deployment object; the agent claims the request and submits one result.
diagnostic_requests = sa.Table(
    "diagnostic_requests",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "deployment_object_id",
        sa.Uuid,
        sa.ForeignKey("deployment_objects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    # Why a request ended ``failed`` or ``expired`` (a claim that was never answered, ...).
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'claimed', 'completed', 'failed', 'expired')", name="status"
    ),
    sa.CheckConstraint(
        "status = 'pending' OR status = 'expired' OR claimed_at IS NOT NULL", name="claimed"
    ),
    sa.Index("ix_diagnostic_requests_agent_id_status", "agent_id", "status"),
    sa.Index("ix_diagnostic_requests_status_expires_at", "status", "expires_at"),
    sa.Index("ix_diagnostic_requests_deployment_object_id", "deployment_object_id"),
)

diagnostic_results = sa.Table(
    "diagnostic_results",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "request_id",
        sa.Uuid,
        sa.ForeignKey("diagnostic_requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # JSON documents kept as text: the wire carries them as strings, opaque to the broker.
    sa.Column("pod_statuses", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("log_tails", sa.Text, nullable=True),
    sa.Column("collected_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("request_id", name="unique_diagnostic_result"),
)

# Webhook subscriptions (D10, D18): the URL, the Authorization header value and the signing
# secret are stored encrypted (AES-256-GCM, brokkr.broker.domain.secrets); lists are JSON.
webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    *_timestamps(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("url_encrypted", sa.LargeBinary, nullable=False),
    sa.Column("auth_header_encrypted", sa.LargeBinary, nullable=True),
    sa.Column("secret_encrypted", sa.LargeBinary, nullable=True),
    # Patterns: "*", "<prefix>.*" or an event type of the catalogue.
    sa.Column("event_types", JSONDocument, nullable=False),
    # {"agent_id"?, "stack_id"?, "labels"?}; null when the subscription has none.
    sa.Column("filters", JSONDocument, nullable=True),
    # Null or empty: the broker delivers; else an agent carrying every one of these labels.
    sa.Column("target_labels", JSONDocument, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("max_retries", sa.Integer, nullable=False),
    sa.Column("timeout_seconds", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.CheckConstraint("max_retries >= 0 AND timeout_seconds > 0", name="limits"),
    sa.Index("ix_webhook_subscriptions_created_at", "created_at"),
)

# One row per (event, matching subscription), written in the transaction of the change that
# caused the event: the outbox and the delivery state in one.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "subscription_id",
        sa.Uuid,
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_type", sa.String(100), nullable=False),
    # The envelope's id: the same for every delivery of one event (receivers' idempotency key).
    sa.Column("event_id", sa.Uuid, nullable=False),
    # The envelope as sent, byte for byte (what the signature covers).
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("target_labels", JSONDocument, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    # The agent holding the claim; null while the broker holds it (or nobody does).
    sa.Column("acquired_by", sa.Uuid, nullable=True),
    sa.Column("acquired_until", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("next_retry_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'acquired', 'success', 'failed', 'dead')", name="status"
    ),
    sa.CheckConstraint("attempts >= 0", name="attempts"),
    sa.Index("ix_webhook_deliveries_status_next_retry_at", "status", "next_retry_at"),
    sa.Index("ix_webhook_deliveries_subscription_id_created_at", "subscription_id", "created_at"),
    sa.Index("ix_webhook_deliveries_completed_at", "completed_at"),
)

# Stack telemetry (agent channel): Kubernetes events and pod log lines of a stack's objects, kept
# for at most six hours (RETENTION_CEILING_SECONDS) and read newest first by stack.
agent_k8s_events = sa.Table(
    "agent_k8s_events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, nullable=False),
    sa.Column("stack_id", sa.Uuid, nullable=False),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("involved_object", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_agent_k8s_events_stack_id_created_at", "stack_id", "created_at"),
    sa.Index("ix_agent_k8s_events_created_at", "created_at"),
)

agent_pod_logs = sa.Table(
    "agent_pod_logs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, nullable=False),
    sa.Column("stack_id", sa.Uuid, nullable=False),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("pod", sa.String(253), nullable=False),
    sa.Column("container", sa.String(253), nullable=False),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_agent_pod_logs_stack_id_created_at", "stack_id", "created_at"),
    sa.Index("ix_agent_pod_logs_created_at", "created_at"),
)

# Agent-channel hints (target changed, stack changed, work order) for brokers on SQLite that
# cannot LISTEN: ``payload`` is the encoded hint. Pruned after minutes, like state_changes.
agent_hints = sa.Table(
    "agent_hints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# One row per periodic job (``job``: its name, or ``name@server`` for a job each ``brokkr serve``
# runs for itself): the broker process that claims a due row runs the job, the others wait until
# ``due_at``. ``holder`` is the instance id of the process that ran it last.
job_schedule = sa.Table(
    "job_schedule",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.Column("runs", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("holder", sa.Text, nullable=True),
    sa.Column("last_run_at", UTCDateTime(), nullable=True),
)
