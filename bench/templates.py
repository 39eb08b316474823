"""Templates: a 40-line Deployment+Service template with 8 parameters, in-process and via the API.

In-process, with the broker's own domain functions: parameter validation + render (target p50
<= 0.2 ms), and the same plus the Kubernetes YAML check that instantiation also runs. Through
the API of a real ``brokkr serve`` on 127.0.0.1 (``--backend sqlite`` or ``postgresql``),
alternating phases in one run: pushing the rendered YAML as a plain deployment object, and
instantiating the template with the parameters (``from-template``); target: instantiation
>= 0.5 x push throughput. Exits 1 if a target is missed or more than 1% of requests fail.

    .venv/bin/python bench/templates.py --backend sqlite --seconds 5 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

import _harness
from brokkr.broker.domain import manifests, parameter_schemas, templating
from brokkr.broker.settings import LimitsSettings
from brokkr.common import yaml_guard

RENDER_P50_TARGET_MS = 0.2
THROUGHPUT_RATIO_TARGET = 0.5

TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
spec:
  replicas: {{ replicas }}
  selector:
    matchLabels:
      app: {{ name }}
  template:
    metadata:
      labels:
        app: {{ name }}
    spec:
      containers:
        - name: {{ name }}
          image: "{{ image }}:{{ tag | default(value='latest') }}"
          ports:
            - containerPort: {{ port }}
          resources:
            limits:
              memory: {{ memory }}
          env:
{%- for key, value in env %}
            - name: {{ key | upper }}
              value: "{{ value }}"
{%- endfor %}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
spec:
  selector:
    app: {{ name }}
  ports:
    - port: 80
      targetPort: {{ port }}
"""
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 63},
        "namespace": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
        "image": {"type": "string"},
        "tag": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "memory": {"type": "string"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name", "namespace", "replicas", "image", "tag", "port", "memory", "env"],
    "additionalProperties": False,
}
PARAMETERS: dict[str, Any] = {
    "name": "storefront",
    "namespace": "shop",
    "replicas": 3,
    "image": "registry.example.com/shop/storefront",
    "tag": "1.4.2",
    "port": 8080,
    "memory": "256Mi",
    "env": {"log_level": "info"},
}


def in_process(iterations: int) -> tuple[float, float]:
    """p50 in ms of validate+render, and of validate+render+YAML check."""
    limits = LimitsSettings()
    render_limits = templating.RenderLimits(
        fuel=limits.template_fuel, max_output_bytes=limits.template_max_output_bytes
    )
    yaml_limits = yaml_guard.YamlLimits(
        max_depth=limits.max_yaml_depth,
        max_scalar_chars=limits.max_yaml_scalar_chars,
        max_expansion=limits.max_yaml_expansion,
    )
    compiled = templating.compile(TEMPLATE)
    schema = parameter_schemas.compile_schema(SCHEMA)

    def render() -> str:
        parameter_schemas.validate(schema, PARAMETERS)
        return templating.render(compiled, PARAMETERS, render_limits)

    def checked() -> None:
        manifests.validate(render(), yaml_limits)

    return _p50_ms(render, iterations), _p50_ms(checked, iterations)


def _p50_ms(call: Callable[[], object], iterations: int) -> float:
    for _ in range(iterations // 10):
        call()
    samples: list[float] = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return 1000 * statistics.median(samples)


async def requests(port: int, pak: str) -> tuple[bytes, bytes]:
    """The push request (the broker's own rendering as YAML) and the instantiation request."""
    async with httpx.AsyncClient(
        base_url=f"http://{_harness.HOST}:{port}/api/v1",
        headers={"Authorization": f"Bearer {pak}"},
    ) as api:
        template = (
            (
                await api.post(
                    "/templates",
                    json={
                        "name": "web-service",
                        "template_content": TEMPLATE,
                        "parameters_schema": json.dumps(SCHEMA),
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        stack = (await api.post("/stacks", json={"name": "bench"})).raise_for_status().json()
        rendered = await api.post(
            f"/templates/{template['id']}/render", json={"parameters": PARAMETERS}
        )
        yaml_content = rendered.raise_for_status().json()["yaml_content"]
    push_body = json.dumps({"yaml_content": yaml_content, "is_deletion_marker": False})
    template_body = json.dumps({"template_id": template["id"], "parameters": PARAMETERS})
    base = f"/api/v1/stacks/{stack['id']}/deployment-objects"
    return (
        _harness.build_request("POST", base, pak, push_body.encode()),
        _harness.build_request("POST", f"{base}/from-template", pak, template_body.encode()),
    )


async def main(args: argparse.Namespace) -> int:
    _harness.cancel_on_sigterm()
    render_p50, checked_p50 = in_process(args.iterations)
    render_ok = render_p50 <= RENDER_P50_TARGET_MS
    print(
        f"in-process p50: validate+render {render_p50:.3f} ms (target <= "
        f"{RENDER_P50_TARGET_MS} ms: {'met' if render_ok else 'MISSED'}), "
        f"+ YAML check {checked_p50:.3f} ms"
    )
    async with contextlib.AsyncExitStack() as stack:
        database_url = ""
        if args.backend == "postgresql":
            database_url = await stack.enter_async_context(_harness.scratch_database())
        broker = await stack.enter_async_context(
            _harness.running_broker(database_url, name="templates")
        )
        port = broker.port
        push, instantiate = await requests(port, broker.admin_pak)
        phases: dict[str, list[_harness.Phase]] = {"push": [], "template": []}
        for round_no in range(1, args.rounds + 1):
            for target, request in (("push", push), ("template", instantiate)):
                phase = _harness.Phase(target, round_no, args.seconds, args.concurrency)
                await _harness.run_phase(phase, port, [request], args.concurrency, ok=201)
                phases[target].append(phase)
                print(
                    f"  round {round_no} {target:8} {phase.rps:8.1f} req/s  p50 "
                    f"{phase.percentile_ms(0.5):6.1f} ms  p99 {phase.percentile_ms(0.99):6.1f} ms"
                    f"  errors {phase.errors}"
                )
    rps = {target: statistics.mean(p.rps for p in runs) for target, runs in phases.items()}
    ratio = rps["template"] / rps["push"] if rps["push"] else 0.0
    ratio_ok = ratio >= THROUGHPUT_RATIO_TARGET
    done = sum(len(p.latencies) + p.errors for runs in phases.values() for p in runs)
    errors = sum(p.errors for runs in phases.values() for p in runs)
    errors_ok = errors <= _harness.MAX_ERROR_RATE * max(done, 1)
    print(
        f"{args.backend}, concurrency {args.concurrency}: push {rps['push']:.1f} req/s, "
        f"from-template {rps['template']:.1f} req/s, ratio template/push {ratio:.2f} "
        f"(target >= {THROUGHPUT_RATIO_TARGET}: {'met' if ratio_ok else 'MISSED'}), "
        f"{errors} failed of {done}"
    )
    return 0 if render_ok and ratio_ok and errors_ok else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="push/template phase pairs")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--iterations", type=int, default=5000, help="in-process renders")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
