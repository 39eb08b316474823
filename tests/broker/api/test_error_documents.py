"""Error bodies the framework would otherwise shape (D2), on SQLite and PostgreSQL.

Covers: every 4xx/5xx response of every operation in /docs/openapi.json describes the D2 error
body (not Litestar's own 400 schema); every operation that takes a body documents 415 and 422;
a refused CORS pre-flight answers the D2 JSON body with its 400 status, while an allowed one
still answers 204.
"""

from __future__ import annotations

from tests.broker.conftest import Api, assert_error
from tests.broker.test_ops import openapi

ERROR_REF = "#/components/schemas/ErrorBody"


async def test_every_error_response_is_the_d2_body(api: Api) -> None:
    document = await openapi(api)
    assert set(document["components"]["schemas"]["ErrorBody"]["required"]) >= {
        "error",
        "code",
        "message",
    }
    wrong = [
        (method, path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
        and response.get("content", {}).get("application/json", {}).get("schema")
        != {"$ref": ERROR_REF}
    ]
    assert wrong == []


async def test_operations_with_a_body_document_415_and_422(api: Api) -> None:
    document = await openapi(api)
    with_body = [
        operation
        for operations in document["paths"].values()
        for operation in operations.values()
        if "requestBody" in operation
    ]
    assert with_body
    for operation in with_body:
        assert {"415", "422"} <= set(operation["responses"]), operation["operationId"]


async def test_a_refused_preflight_gets_the_d2_body(api: Api) -> None:
    response = await api.client.options(
        "/api/v1/generators",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    body = assert_error(response, 400, "cors_preflight_refused")
    assert body["details"] == {"refused": ["Origin"]}
    assert response.headers["x-request-id"]


async def test_an_allowed_preflight_is_still_204(api: Api) -> None:
    response = await api.client.options(
        "/api/v1/generators",
        headers={"Origin": "http://localhost:3001", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://localhost:3001"
