"""The browser dashboard: static files served by the package itself (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

__all__ = ["CSP", "DASHBOARD_ROUTES"]

HERE = Path(__file__).parent

# No inline script or style, nothing from elsewhere: even a slip that put job text into the page
# as HTML could not run it.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _secure(response: Response[Any]) -> Response[Any]:
    response.headers.update(SECURITY_HEADERS)
    return response


@get("/", include_in_schema=False, after_request=_secure)
async def dashboard() -> Response[bytes]:
    return Response((HERE / "index.html").read_bytes(), media_type="text/html")


DASHBOARD_ROUTES: list[ControllerRouterHandler] = [
    dashboard,
    create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        include_in_schema=False,
        after_request=_secure,
    ),
]
