"""Which fields each resource shows in a table."""

AGENT = ("id", "name", "cluster_name", "status", "last_heartbeat")
GENERATOR = ("id", "name", "description", "is_active")
STACK = ("id", "name", "generator_id", "description")
OBJECT = ("id", "sequence_id", "stack_id", "yaml_checksum", "is_deletion_marker", "submitted_at")
EVENT = ("id", "agent_id", "deployment_object_id", "status", "message", "created_at")
WS_CONNECTION = ("agent_id", "connected_since", "messages_in", "messages_out")
AUDIT = ("timestamp", "actor_type", "actor_id", "action", "resource_type", "resource_id")
LABEL = ("id", "label")
ANNOTATION = ("id", "key", "value")
TARGET = ("id", "agent_id", "stack_id")
TEMPLATE = ("id", "name", "version", "generator_id", "checksum", "description")
WORK_ORDER = ("id", "work_type", "status", "claimed_by", "retry_count", "max_retries", "created_at")
WORK_ORDER_LOG = (
    "id",
    "work_type",
    "success",
    "claimed_by",
    "retries_attempted",
    "result_message",
    "completed_at",
)
WEBHOOK = (
    "id",
    "name",
    "event_types",
    "enabled",
    "target_labels",
    "has_secret",
    "max_retries",
    "timeout_seconds",
)
WEBHOOK_DELIVERY = (
    "id",
    "event_type",
    "status",
    "attempts",
    "next_retry_at",
    "last_error",
    "created_at",
)
WEBHOOK_TEST = ("success", "status_code", "message")
