"""The API reference at ``/schema``: Redoc, served by the package, under a strict CSP.

Litestar's Redoc page inlines the whole OpenAPI document in a ``<script>``, which only a CSP
with that script's hash (different for every change to the API) could allow. This page has no
inline script: a ``<redoc spec-url>`` element, which Redoc's bundle renders by itself on load,
fetching ``/schema/openapi.json``.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, Router
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = [
    "SCHEMA_CSP",
    "SCHEMA_PATH",
    "VENDOR_ROUTE",
    "JsonTextSchema",
    "ReferencePage",
    "schema_router",
]

SCHEMA_PATH = "/schema"
VENDOR_PATH = "/vendor"
VENDOR_ROUTE = create_static_files_router(
    path=VENDOR_PATH, directories=[Path(__file__).parent / "vendor"], include_in_schema=False
)

# As strict as Redoc allows: its scripts only from here; its styles are injected at run time
# (styled-components), hence 'unsafe-inline' for styles only; its search index runs in a worker
# made from a blob: URL; it draws some icons as data: images, and loads no fonts. Its footer
# logo, from its CDN, is blocked, and hides itself (as it does offline).
SCHEMA_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": SCHEMA_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ReferencePage(RedocRenderPlugin):
    """Redoc with no inline script, from ``{VENDOR_PATH}/redoc``."""

    def __init__(self) -> None:
        super().__init__(path="/", js_url=f"{VENDOR_PATH}/redoc/redoc.standalone.js")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        spec_url = escape(self.get_openapi_json_route(request))
        return (
            "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            '<meta name=viewport content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>body {{ margin: 0; padding: 0 }}</style>\n"
            "</head>\n<body>\n"
            # The bundle renders the <redoc> element it finds when it runs, so it comes after.
            f'<redoc spec-url="{spec_url}"></redoc>\n'
            f'<script src="{escape(self.js_url)}"></script>\n</body>\n</html>\n'
        ).encode()


async def _secure(response: Response[Any]) -> Response[Any]:
    response.headers.update(_SECURITY_HEADERS)
    return response


def schema_router() -> Router:
    """The router Litestar puts the schema's routes on (the page, its JSON), with the headers."""
    # As Litestar's own schema router: these routes are not operations of the API.
    return Router(
        path=SCHEMA_PATH, route_handlers=[], after_request=_secure, include_in_schema=False
    )


class JsonTextSchema(OpenAPISchemaPlugin):
    """``msgspec.Raw`` in a response model is JSON passed through as the client sent it: a job's
    ``data`` (a JSON object: its ``Meta`` says so) or ``result`` (any JSON value). Litestar knows
    nothing of Raw and would document it as "anything", which also makes ``Raw | None``
    ambiguous (null would match both branches of its oneOf): so "any value" is documented as
    "anything but null", and the ``| None`` adds the null."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is msgspec.Raw

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        declared = [
            meta.extra_json_schema or {}
            for meta in field_definition.metadata
            if isinstance(meta, msgspec.Meta)
        ]
        if any(extra.get("type") == "object" for extra in declared):
            return Schema(type=OpenAPIType.OBJECT, description="A JSON object, as submitted.")
        return Schema(
            schema_not=Schema(type=OpenAPIType.NULL),
            description="Any JSON value, as the worker sent it.",
        )
