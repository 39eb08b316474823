"""Stack telemetry rules: the window a history read may cover, its page size, and the bounds
stored text is cut to (a row is cut, never refused: a batch must not fail on one long line)."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

# Kubernetes names (namespace, pod, container, reason) are at most 253 characters.
MAX_NAME = 253
MAX_MESSAGE = 4096
MAX_LINE = 16 * 1024

LONG_TERM_SINK_HINT = (
    "Brokkr keeps stack telemetry for a few hours only, to watch a rollout: ship the cluster's "
    "events and container logs to a log store (Loki, Elasticsearch, CloudWatch, ...) with a "
    "node-level collector such as Fluent Bit or Vector for anything longer."
)


def window_start(since: datetime | None, *, now: datetime, retention_seconds: int) -> datetime:
    """The earliest ``created_at`` a read returns: ``since``, but never before the retained
    window (absent: the whole window)."""
    oldest = now - timedelta(seconds=retention_seconds)
    return oldest if since is None or since < oldest else since


def page_size(limit: int | None) -> int:
    """``limit`` clamped to 1..MAX_LIMIT (absent: DEFAULT_LIMIT)."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(limit, MAX_LIMIT))


def cut(text: str, bound: int) -> str:
    return text if len(text) <= bound else text[:bound]


def cut_optional(text: str | None, bound: int) -> str | None:
    return None if text is None else cut(text, bound)
