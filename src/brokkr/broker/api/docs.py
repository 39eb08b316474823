"""/docs/openapi.json and an offline Swagger UI at /swagger-ui (assets served by the broker)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import Request, Response, Router, get
from litestar.static_files import create_static_files_router

from brokkr.common import wire

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Brokkr broker API</title>
  <link rel="stylesheet" href="/swagger-ui/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger-ui/assets/swagger-ui-bundle.js"></script>
  <script src="/swagger-ui/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    // The bundled Swagger UI (4.x) refuses "openapi: 3.1.0" documents ("Unable to render this
    // definition"); it renders ours once told it is 3.0. The served document stays untouched.
    fetch("/docs/openapi.json")
      .then((response) => response.json())
      .then((spec) => {
        spec.openapi = "3.0.3";
        window.ui = SwaggerUIBundle({
          spec: spec,
          dom_id: "#swagger-ui",
          presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
          layout: "StandaloneLayout",
          persistAuthorization: true
        });
      });
  </script>
</body>
</html>
"""

_SEARCH_PATH = "/api/v1/agents/"


def _document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    cached: dict[str, Any] | None = getattr(request.app.state, "openapi_document", None)
    if cached is not None:
        return cached
    document = request.app.openapi_schema.to_schema()
    paths = document.get("paths", {})
    listing = paths.get("/api/v1/agents", {}).get("get")
    if listing is not None:
        # Litestar folds the trailing-slash search route into /agents; the reference lists both.
        search = copy.deepcopy(listing)
        search["operationId"] = "search_agent"
        search["summary"] = "Find an agent by name and cluster"
        paths[_SEARCH_PATH] = {"get": search}
        listing["parameters"] = [
            p
            for p in listing.get("parameters", [])
            if p.get("name") not in {"name", "cluster_name"}
        ]
        listing["summary"] = "List agents"
    _document_yaml_upload(document)
    _document_streamed_json(document)
    _document_errors(document)
    request.app.state.openapi_document = document
    return document


def _document_yaml_upload(document: dict[str, Any]) -> None:
    """The handler reads its body itself (JSON envelope or raw YAML); describe both forms."""
    operation = document["paths"].get("/api/v1/stacks/{id}/deployment-objects", {}).get("post")
    if operation is not None:
        _, definitions = msgspec.json.schema_components(
            [wire.CreateDeploymentObjectRequest], ref_template="#/components/schemas/{name}"
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/CreateDeploymentObjectRequest"}
                },
                "application/yaml": {"schema": {"type": "string"}},
            },
        }


# Routes that read their JSON body from the stream (its size limit is a setting), so Litestar
# cannot describe it: (path, method) → the body's type.
_STREAMED_JSON = {
    ("/api/v1/diagnostics/{id}/result", "post"): wire.SubmitDiagnosticResult,
}


def _document_streamed_json(document: dict[str, Any]) -> None:
    for (path, method), kind in _STREAMED_JSON.items():
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        _, definitions = msgspec.json.schema_components(
            [kind], ref_template="#/components/schemas/{name}"
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        reference = {"$ref": f"#/components/schemas/{kind.__name__}"}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": reference}},
        }


def _document_errors(document: dict[str, Any]) -> None:
    """Every error response carries the D2 body, whatever Litestar generated for it (its own 400
    schema describes a body the broker never sends), and every operation that takes a body can
    answer 415 (not JSON) and 422 (invalid or too deeply nested)."""
    _, definitions = msgspec.json.schema_components(
        [wire.ErrorBody], ref_template="#/components/schemas/{name}"
    )
    document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, text in _BODY_ERRORS.items():
                    responses.setdefault(status, {"description": text})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = copy.deepcopy(error_content)


_BODY_ERRORS = {
    "415": "The body is not JSON (or, where documented, YAML)",
    "422": "The body fails validation or nests too deeply; `details` names the problem",
}


@get("/docs/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _document(request)


@get("/swagger-ui", include_in_schema=False, sync_to_thread=False)
def swagger_ui() -> Response[str]:
    return Response(_PAGE, media_type="text/html")


router = Router(
    path="/",
    route_handlers=[
        openapi_json,
        swagger_ui,
        create_static_files_router(
            path="/swagger-ui/assets", directories=[ASSETS], include_in_schema=False
        ),
    ],
)
