"""The Brokkr v1 wire contract as data, so the tests need nothing outside the repository.

``brokkr_v1.json`` holds facts derived from the reference OpenAPI document (see ``derive.py``):
the server prefix, the security schemes and every operation's operationId, method, path, success
status codes and parameter names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FACTS = Path(__file__).with_name("brokkr_v1.json")


def load() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(FACTS.read_text(encoding="utf-8"))
    return facts
