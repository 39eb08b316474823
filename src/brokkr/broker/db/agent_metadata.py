"""Agent labels and annotations: what label and annotation targeting matches on."""

from brokkr.broker.db import tables
from brokkr.broker.db.metadata import Annotations, Labels
from brokkr.common import wire

labels = Labels(tables.agent_labels, owner="agent_id", record=wire.AgentLabel, noun="agent")
annotations = Annotations(
    tables.agent_annotations, owner="agent_id", record=wire.AgentAnnotation, noun="agent"
)
