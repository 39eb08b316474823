"""Regenerate ``brokkr_v1.json`` from the Brokkr v1 reference OpenAPI document.

    python -m tests.contract.derive path/to/brokkr-v1.openapi.json > tests/contract/brokkr_v1.json

Keeps only facts the tests check: the server prefix, the security schemes and, per operation, its
operationId, method, path, success status codes and parameter names. Nothing in the test suite
runs this; the reference document lives outside the repository.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ABOUT = (
    "Facts from the Brokkr v1 wire contract (derived from the reference OpenAPI document by "
    "tests/contract/derive.py; data only): operations with their method, path under the server "
    "prefix, success status codes and parameter names."
)


def operation(path: str, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, list[str]] = {}
    for parameter in spec.get("parameters", []):
        parameters.setdefault(parameter["in"], []).append(parameter["name"])
    return {
        "operationId": spec["operationId"],
        "method": method.upper(),
        "path": path,
        "success": sorted(int(code) for code in spec["responses"] if code.startswith("2")),
        "parameters": {where: sorted(names) for where, names in sorted(parameters.items())},
    }


def derive(raw: bytes) -> str:
    reference = json.loads(raw)
    operations = sorted(
        (
            operation(path, method, spec)
            for path, item in reference["paths"].items()
            for method, spec in item.items()
        ),
        key=lambda op: (op["path"], op["method"]),
    )
    head = {
        "about": ABOUT,
        "source": {
            "file": "brokkr-v1.openapi.json",
            "version": reference["info"]["version"],
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "servers": [server["url"] for server in reference["servers"]],
        "securitySchemes": reference["components"]["securitySchemes"],
    }
    lines = [
        f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}," for key, value in head.items()
    ]
    rows = ",\n".join(f"    {json.dumps(op)}" for op in operations)
    return "{\n" + "\n".join(lines) + '\n  "operations": [\n' + rows + "\n  ]\n}\n"


if __name__ == "__main__":
    sys.stdout.write(derive(Path(sys.argv[1]).read_bytes()))
