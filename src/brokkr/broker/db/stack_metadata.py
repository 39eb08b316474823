"""Stack labels and annotations: what label and annotation targeting matches on."""

from brokkr.broker.db import tables
from brokkr.broker.db.labelling import Annotations, Labels
from brokkr.common import wire

labels = Labels(tables.stack_labels, owner="stack_id", record=wire.StackLabel)
annotations = Annotations(tables.stack_annotations, owner="stack_id", record=wire.StackAnnotation)
