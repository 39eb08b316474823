"""OpenAPI security requirements per role set, named as in the reference contract."""

from __future__ import annotations

from litestar.openapi.spec import SecurityRequirement, SecurityScheme

SCHEMES = {
    name: SecurityScheme(
        type="apiKey",
        name="Authorization",
        security_scheme_in="header",
        description=f"{role} PAK, as `Bearer <pak>` or the bare key",
    )
    for name, role in (
        ("admin_pak", "Admin"),
        ("agent_pak", "Agent"),
        ("generator_pak", "Generator"),
    )
}

ADMIN: list[SecurityRequirement] = [{"admin_pak": []}]
ADMIN_AGENT: list[SecurityRequirement] = [{"admin_pak": []}, {"agent_pak": []}]
ADMIN_GENERATOR: list[SecurityRequirement] = [{"admin_pak": []}, {"generator_pak": []}]
AGENT: list[SecurityRequirement] = [{"agent_pak": []}]
ANY: list[SecurityRequirement] = [{"admin_pak": []}, {"agent_pak": []}, {"generator_pak": []}]
