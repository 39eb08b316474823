"""Operational routes and API documentation (D22), on SQLite and PostgreSQL.

Covers /healthz; /readyz when migrated, with a pending migration (503 ``migrations_pending``) and
with an unreachable database (503); /metrics in Prometheus text labelled by route template, never
by raw ids; the X-Request-ID header (generated or echoed); /docs/openapi.json describing every
route of the app with security on every /api/v1 operation and the reference's operationIds,
paths, methods, success codes and parameters for the routes built so far (checked against the
contract facts in tests/contract); and /swagger-ui served entirely from local assets.
"""

from __future__ import annotations

import re
import socket
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.broker.settings import load
from tests import contract
from tests.broker.conftest import Api, assert_error

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Reference paths (and everything below them) of features that later work packages add; every
# other reference operation must be served as the contract describes it.
NOT_BUILT_YET: tuple[str, ...] = ()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def openapi_path(litestar_path: str) -> str:
    """``/agents/{id:uuid}`` as OpenAPI writes it: ``/agents/{id}``."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", litestar_path)


# --- health and readiness -----------------------------------------------------------------------


async def test_healthz_says_ok(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/plain")


async def test_readyz_is_200_when_database_is_migrated(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


async def test_readyz_is_503_while_migrations_are_pending(api: Api) -> None:
    version = sa.table("alembic_version", sa.column("version_num"))
    async with api.broker.database.read() as conn:
        current = (await conn.execute(sa.select(version.c.version_num))).scalar_one()
    try:
        async with api.broker.database.transaction() as tx:
            await tx.execute(version.update().values(version_num="0000_older"))
        response = await api.client.get("/readyz")
        body = assert_error(response, 503, "migrations_pending")
        assert body["details"] == {"current": "0000_older", "expected": current}
        # Liveness does not depend on the database.
        assert (await api.client.get("/healthz")).status_code == 200
    finally:
        async with api.broker.database.transaction() as tx:
            await tx.execute(version.update().values(version_num=current))
    assert (await api.client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_database_is_unreachable(tmp_path: Path) -> None:
    settings = load(
        environ={
            "BROKKR__DATA_DIR": str(tmp_path),
            "BROKKR__DATABASE__URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/brokkr",
            "BROKKR__DATABASE__CONNECT_TIMEOUT_SECONDS": "2",
        }
    )
    app = create_app(settings)  # its runtime is never started: nothing can connect
    transport = httpx.ASGITransport(app=Observability(app, app.state.metrics))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        await app.state.ctx.database.dispose()
    body = assert_error(ready, 503)
    assert body["code"] == "database_unavailable"
    assert "127.0.0.1" not in ready.text and "Traceback" not in ready.text
    assert alive.status_code == 200


# --- metrics ------------------------------------------------------------------------------------


async def test_metrics_are_labelled_by_route_template_never_by_raw_id(api: Api) -> None:
    agent, _ = await api.create_agent("metrics-agent")
    missing = uuid.uuid4()
    assert (await api.client.get(f"/api/v1/agents/{agent['id']}", headers=api.admin)).is_success
    assert (await api.client.get(f"/api/v1/agents/{missing}", headers=api.admin)).status_code == 404
    unknown = f"/nowhere/{uuid.uuid4()}"
    assert (await api.client.get(unknown)).status_code == 404

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE brokkr_http_requests_total counter" in text
    assert "# TYPE brokkr_http_request_duration_seconds histogram" in text
    samples = [line for line in text.splitlines() if line.startswith("brokkr_http_requests_total{")]
    template = 'endpoint="/api/v1/agents/{id}"'
    assert any(template in s and 'method="GET"' in s and 'status="200"' in s for s in samples)
    assert any(template in s and 'status="404"' in s for s in samples)
    assert any('endpoint="/api/v1/agents"' in s and 'method="POST"' in s for s in samples)
    assert agent["id"] not in text
    assert str(missing) not in text
    assert "/nowhere" not in text
    assert 'endpoint="/metrics"' not in text


async def test_metrics_count_requests(api: Api) -> None:
    def healthz_count(text: str) -> float:
        pattern = (
            r'brokkr_http_requests_total\{endpoint="/healthz",method="GET",status="200"\} (\S+)'
        )
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0

    before = healthz_count((await api.client.get("/metrics")).text)
    for _ in range(3):
        await api.client.get("/healthz")
    after = healthz_count((await api.client.get("/metrics")).text)
    assert after - before == 3


# --- request ids --------------------------------------------------------------------------------


async def test_request_id_is_generated_per_request(api: Api) -> None:
    first = await api.client.get("/healthz")
    second = await api.client.get("/api/v1/agents")  # a 401 carries one too
    ids = [first.headers.get("x-request-id"), second.headers.get("x-request-id")]
    assert all(ids) and ids[0] != ids[1]
    assert second.status_code == 401


async def test_request_id_sent_by_the_client_is_echoed(api: Api) -> None:
    response = await api.client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    missing = await api.client.get("/nope", headers={"X-Request-ID": "trace-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "trace-404"


async def test_overlong_request_id_is_replaced(api: Api) -> None:
    sent = "x" * 200
    response = await api.client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] not in ("", sent)
    assert len(response.headers["x-request-id"]) <= 64


# --- OpenAPI ------------------------------------------------------------------------------------


async def openapi(api: Api) -> dict[str, Any]:
    response = await api.client.get("/docs/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def documented_operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method.upper() in HTTP_METHODS
    }


async def test_openapi_documents_every_api_route_of_the_app(api: Api) -> None:
    operations = documented_operations(await openapi(api))
    served = {
        (method, openapi_path(route.path))
        for route in api.broker.app.routes
        if route.path.startswith("/api/v1")
        for method in getattr(route, "methods", set())
        if method in HTTP_METHODS
    }
    assert served, "the app serves no /api/v1 routes?"
    assert served <= set(operations), sorted(served - set(operations))
    for ops_route in ("/healthz", "/readyz", "/metrics"):
        assert ("GET", ops_route) in operations
    search = operations[("GET", "/api/v1/agents/")]
    assert search["operationId"] == "search_agent"
    assert {p["name"] for p in search["parameters"]} >= {"name", "cluster_name"}


async def test_openapi_operation_ids_are_unique(api: Api) -> None:
    ids = [op.get("operationId") for op in documented_operations(await openapi(api)).values()]
    assert all(ids) and len(ids) == len(set(ids))


async def test_every_api_operation_declares_pak_security(api: Api) -> None:
    document = await openapi(api)
    schemes = document["components"]["securitySchemes"]
    reference = contract.load()["securitySchemes"]
    assert set(reference) == {"admin_pak", "agent_pak", "generator_pak"}
    for name, scheme in reference.items():
        assert {key: schemes[name].get(key) for key in scheme} == scheme, name
    for (method, path), operation in documented_operations(document).items():
        if not path.startswith("/api/v1"):
            continue
        security = operation.get("security")
        assert security, f"{method} {path} has no security"
        for requirement in security:
            assert set(requirement) <= set(schemes), (method, path, requirement)


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def reference_operations_built_so_far() -> dict[str, dict[str, Any]]:
    facts = contract.load()
    assert facts["servers"] == ["/api/v1"]
    operations: list[dict[str, Any]] = facts["operations"]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for prefix in NOT_BUILT_YET:  # a misspelt entry would hide nothing and mean nothing
        assert any(under(op["path"], prefix) for op in operations), prefix
    return {
        op["operationId"]: op
        for op in operations
        if not any(under(op["path"], prefix) for prefix in NOT_BUILT_YET)
    }


def differences(
    reference: dict[str, Any], where: tuple[str, str], ours: dict[str, Any]
) -> list[str]:
    """How our documented operation at ``where`` departs from the reference operation."""
    expected = (reference["method"], "/api/v1" + reference["path"])
    if where != expected:
        return [f"served as {where}, contract says {expected}"]
    found = []
    success = sorted(int(code) for code in ours.get("responses", {}) if code.startswith("2"))
    if success != reference["success"]:
        found.append(f"success codes {success}, contract says {reference['success']}")
    parameters: dict[str, set[str]] = {}
    for parameter in ours.get("parameters", []):
        parameters.setdefault(parameter["in"], set()).add(parameter["name"])
    for location, names in reference["parameters"].items():
        if missing := set(names) - parameters.get(location, set()):
            found.append(f"{location} parameters {sorted(missing)} missing")
    return found


async def test_reference_operations_are_served_as_the_contract_states(api: Api) -> None:
    expected = reference_operations_built_so_far()
    assert {"list_agents", "search_agent", "verify_pak", "list_audit_logs"} <= set(expected)
    assert {"get_target_state", "create_stack", "add_target", "create_event"} <= set(expected)
    assert {"create_template", "instantiate_template", "templates_add_label"} <= set(expected)
    assert {"create_work_order", "claim_work_order", "list_work_order_log"} <= set(expected)
    assert {"create_webhook", "test_webhook", "list_deliveries", "report_delivery_result"} <= set(
        expected
    )
    ours = {
        op["operationId"]: (key, op)
        for key, op in documented_operations(await openapi(api)).items()
    }
    wrong = {
        op_id: differences(reference, *ours[op_id]) if op_id in ours else ["not documented"]
        for op_id, reference in expected.items()
    }
    assert not {op_id: found for op_id, found in wrong.items() if found}


# --- Swagger UI ---------------------------------------------------------------------------------


class AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(("script", values["src"] or ""))
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(("link", values["href"] or ""))
        elif tag in ("img", "iframe") and values.get("src"):
            self.urls.append((tag, values["src"] or ""))


async def test_swagger_ui_loads_only_local_assets(api: Api) -> None:
    page = await api.client.get("/swagger-ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = AssetLinks()
    links.feed(page.text)
    links.close()
    kinds = {kind for kind, _ in links.urls}
    assert {"script", "link"} <= kinds
    for _, url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
    assert "http://" not in page.text and "https://" not in page.text
    assert '"/docs/openapi.json"' in page.text

    for kind, url in links.urls:
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        content_type = asset.headers["content-type"]
        if kind == "script":
            assert "javascript" in content_type, (url, content_type)
        else:
            assert content_type.startswith("text/css"), (url, content_type)
        assert len(asset.content) > 1000, url


async def test_swagger_assets_outside_the_bundle_are_not_served(api: Api) -> None:
    escape = "..%2F" * 12 + "etc%2Fpasswd"
    response = await api.client.get(f"/swagger-ui/assets/{escape}")
    assert response.status_code == 404
    assert "root:" not in response.text
