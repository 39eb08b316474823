"""The text and JSON log lines: one record is one line whatever a client sent.

Covers CR, LF, NUL, other control characters and Unicode line separators in the message and in
the fields (escaped, never a new line), field values that could fake another field (quoted),
tracebacks (their lines indented, so an exception message cannot start a forged record), PAK
redaction still applied, and JSON lines staying one valid object each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from brokkr.common import logging as brokkr_logging

STAMP_PREFIX = "20"
FORGED = "2030-01-01T00:00:00.000+00:00 INFO    brokkr.access: GET /admin 200"
PAK = "brokkr_BR3rVsDa_GK7Pgy9KGvTG6Hx1JEf6MhAq4Dq5F9Lw"


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level = root.level
    yield logging.getLogger("brokkr.test")
    for handler in list(root.handlers):
        if getattr(handler, "_brokkr", False):
            root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\x00", "\u2028", "\x85", "\x1b["])
def test_a_control_character_in_the_message_cannot_start_a_new_line(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str], separator: str
) -> None:
    brokkr_logging.configure(level="info", as_json=False)
    log_lines.info("%s %s", "GET", f"/api/v1/x{separator}{FORGED}")
    [line] = lines(capsys)
    assert line.count(FORGED) == 1 and not line.startswith(FORGED)
    assert separator not in line
    assert separator.encode("unicode_escape").decode() in line


def test_fields_are_escaped_and_quoted_so_none_can_be_faked(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    brokkr_logging.configure(level="info", as_json=False)
    fields = {"path": f"/a status=200\n{FORGED}", "agent": 'x" y', "status": 404, "empty": ""}
    log_lines.info("request", extra={"fields": fields})
    [line] = lines(capsys)
    assert line.endswith(
        ' path="/a status=200\\n' + FORGED + '" agent="x\\" y" status=404 empty=""'
    )


def test_a_traceback_is_indented_under_its_record(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    brokkr_logging.configure(level="info", as_json=False)
    try:
        raise ValueError(f"bad path\n{FORGED}")
    except ValueError:
        log_lines.exception("failed on /x\n%s", FORGED)
    first, *rest = lines(capsys)
    assert first.startswith(STAMP_PREFIX) and "failed on /x\\n" in first
    assert rest and all(line.startswith("    ") for line in rest)
    assert any("ValueError: bad path" in line for line in rest)


def test_pak_values_are_still_redacted_in_message_and_fields(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    brokkr_logging.configure(level="info", as_json=False)
    log_lines.info("key %s", PAK, extra={"fields": {"header": f"Bearer {PAK}"}})
    [line] = lines(capsys)
    assert PAK not in line and "brokkr_BR3rVsDa_<redacted>" in line


def test_json_lines_stay_one_object_per_record(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    brokkr_logging.configure(level="info", as_json=True)
    log_lines.info("GET %s", f"/x\n{FORGED}", extra={"fields": {"agent": "a\r\nb"}})
    [line] = lines(capsys)
    record = json.loads(line)
    assert record["message"] == f"GET /x\n{FORGED}" and record["agent"] == "a\r\nb"
