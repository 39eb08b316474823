"""Agent labels and annotations: what label and annotation targeting matches on."""

from brokkr.broker.db import tables
from brokkr.broker.db.labelling import Annotations, Labels
from brokkr.common import wire

labels = Labels(tables.agent_labels, owner="agent_id", record=wire.AgentLabel)
annotations = Annotations(tables.agent_annotations, owner="agent_id", record=wire.AgentAnnotation)
