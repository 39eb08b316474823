"""A suite run without a reachable PostgreSQL fails with a clear message; it never skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_database_tests_fail_when_postgresql_is_unreachable() -> None:
    environ = {
        **os.environ,
        "BROKKR_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/postgres",
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/broker/db/test_replicas.py::test_a_pak_rotated_on_one_broker_stops_working_on_another",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "PostgreSQL is required" in output
    assert "skipped" not in output.lower()
