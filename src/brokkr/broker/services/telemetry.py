"""Stack telemetry on this broker: the batch writer of Kubernetes events and pod log lines that
agents stream, the history reads, and the live streams of stacks.

Skeleton: the foundation of issue 15; the writer, reads and live streams are built on it.
"""

from __future__ import annotations

from uuid import UUID

from brokkr.common.wire import channel


class Telemetry:
    def accept_event(self, agent_id: UUID, event: channel.K8sEventBody) -> bool:
        """Queue one event for its batch insert and the stack's live streams; False when it was
        dropped (the buffer is full) and counted."""
        return False

    def accept_log_line(self, agent_id: UUID, line: channel.PodLogLineBody) -> bool:
        """Queue one log line like ``accept_event``."""
        return False

    def accept_gap(self, agent_id: UUID, gap: channel.LogGapBody) -> None:
        """Tell the stack's live streams that the agent dropped lines (not stored)."""

    def live_subscribers(self) -> int:
        """Live streams open on this broker."""
        return 0
