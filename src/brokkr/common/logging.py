"""Log setup shared by the broker and the agent: text or JSON lines, with the request id.

Secrets never reach the logs: PAK-shaped substrings are masked by the formatter. Nor can what a
client sends forge a line: in text logs, control characters in the message and in the fields are
escaped, field values that could pass for other fields are quoted, and a traceback's lines are
indented, so every line that starts at column 0 is one record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Anything shaped like a PAK (prefix_short_long) is masked down to its public short token.
_PAK_PATTERN = re.compile(
    r"\b([A-Za-z0-9]+)_([1-9A-HJ-NP-Za-km-z]{6,12})_[1-9A-HJ-NP-Za-km-z]{16,}"
)

LEVELS = ("debug", "info", "warning", "error", "critical")


def redact(text: str) -> str:
    """Mask the secret part of every PAK-shaped substring."""
    return _PAK_PATTERN.sub(r"\1_\2_<redacted>", text)


def escape(text: str) -> str:
    """Make ``text`` one printable line: CR, LF, NUL, other controls and line separators
    become Python escapes (``\\n``, ``\\x00``, ``\\u2028``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _field(value: object) -> str:
    """A ``key=value`` value as one token: quoted when a space or quote could fake a field."""
    text = redact(str(value))
    if text and text.isprintable() and not any(c in text for c in ' "='):
        return text
    return escape(json.dumps(text, ensure_ascii=False))


class _Formatter(logging.Formatter):
    def __init__(self, *, as_json: bool) -> None:
        super().__init__()
        self._as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        trace = redact(self.formatException(record.exc_info)) if record.exc_info else ""
        stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        rid = request_id.get()
        if self._as_json:
            payload: dict[str, object] = {
                "ts": stamp.replace("+00:00", "Z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": f"{message}\n{trace}" if trace else message,
            }
            if rid:
                payload["request_id"] = rid
            extra = getattr(record, "fields", None)
            if isinstance(extra, dict):
                payload.update(extra)
            return json.dumps(payload, default=str)
        suffix = f" request_id={_field(rid)}" if rid else ""
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            suffix += "".join(f" {key}={_field(value)}" for key, value in extra.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {escape(message)}{suffix}"
        if trace:
            # Continuation lines start with a space: no exception text can pass for a record.
            line += "".join(f"\n    {escape(part)}" for part in trace.splitlines())
        return line


def configure(*, level: str, as_json: bool) -> None:
    """Install one stderr handler on the root logger (idempotent; a reload may call it again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_brokkr", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=as_json))
    handler._brokkr = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
