"""OpenAPI: the docs UI served from a package's files (no CDN), and helpers for operations whose body
the handler decodes itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar.datastructures import CacheControlHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, RequestBody, SecurityScheme
from litestar.router import Router
from litestar.static_files import create_static_files_router
from openapi_ui_bundles import swagger_ui as swagger_ui_files

__all__ = [
    "ADMIN_TOKEN",
    "ANY_TOKEN",
    "DOCS_ASSETS",
    "OptionalBodyOperation",
    "components",
    "docs_assets",
    "inline_schema",
    "problems",
    "swagger_ui",
]

# Which token a route needs, as OpenAPI security requirements (the guards in service/auth.py decide).
ANY_TOKEN: list[dict[str, list[str]]] = [{"apiToken": []}, {"adminToken": []}]
ADMIN_TOKEN: list[dict[str, list[str]]] = [{"adminToken": []}]

# Swagger UI's scripts and styles (Swagger UI 5, which reads OpenAPI 3.1), served from the
# openapi-ui-bundles package: the docs work offline.
DOCS_ASSETS = "/schema/assets"


def swagger_ui() -> SwaggerRenderPlugin:
    """The Swagger UI page at /schema and /schema/swagger, every asset from ``DOCS_ASSETS``."""
    return SwaggerRenderPlugin(
        js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
    )


def docs_assets() -> Router:
    """The route that serves Swagger UI's files (cached a day: they change only with the package)."""
    return create_static_files_router(
        path=DOCS_ASSETS,
        directories=[Path(str(swagger_ui_files.static_path))],
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400),
    )


def components() -> Components:
    """The bearer-token security schemes every protected route refers to."""
    return Components(
        security_schemes={
            "apiToken": SecurityScheme(
                type="http",
                scheme="bearer",
                description="One of TICKET_ROUTER_API_TOKENS (the admin token works too). Needed once API"
                " tokens are configured; without any, the classify and read-only routes are open.",
            ),
            "adminToken": SecurityScheme(
                type="http",
                scheme="bearer",
                description="TICKET_ROUTER_ADMIN_TOKEN: training, activation, rollback, shadow, write-backs."
                " Without it configured, these routes answer 403.",
            ),
        }
    )


def inline_schema(struct_type: type[Any]) -> dict[str, Any]:
    """msgspec's JSON Schema of ``struct_type`` with every ``$ref`` replaced by its definition."""
    raw = msgspec.json.schema(struct_type)
    definitions: dict[str, Any] = raw.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(raw)
    return resolved


_DESCRIPTIONS = {
    400: "The body is not valid JSON (or is empty)",
    401: "No token, or an unknown one",
    403: "The token lacks the right, or administration is disabled",
    404: "No such resource",
    409: "Conflicts with the current state (the gate refused, a training is already running)",
    413: "A body or batch over its limit",
    415: "A content type this endpoint does not read",
    422: "Well-formed, but the fields are invalid",
    429: "Too many requests from this client; see Retry-After",
    503: "No model is loaded, or the database is unavailable",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json errors a route can answer with (429 always included)."""
    from service.schemas import Problem

    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for status in sorted({*statuses, 429})
    }


@dataclass
class OptionalBodyOperation(Operation):
    """For handlers whose ``data`` defaults to None: the body may be left out."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
