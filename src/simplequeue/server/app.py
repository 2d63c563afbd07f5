"""The application factory. Nothing happens at import time: the store opens in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Receive, Scope, Send

from simplequeue import __version__
from simplequeue.queue import Queue
from simplequeue.server.dashboard import DASHBOARD_ROUTES
from simplequeue.server.problems import (
    EXCEPTION_TO_PROBLEM,
    internal_error,
    validation_error,
)
from simplequeue.server.routes import JOBS_PREFIX, ROUTES
from simplequeue.server.settings import Settings
from simplequeue.store import Store, store_for

__all__ = ["create_app"]

VENDOR_PATH = "/vendor"
VENDOR_ROUTE = create_static_files_router(
    path=VENDOR_PATH, directories=[Path(__file__).parent / "vendor"], include_in_schema=False
)


def _queue(state: State) -> Queue:
    queue: Queue = state.queue
    return queue


def _route_job_paths_raw(handler: ASGIApp) -> ASGIApp:
    """Route ``/jobs/<percent-encoded id>`` by the raw path, not the decoded one.

    The router matches the decoded path, with slashes trimmed and collapsed: the id ``next/``
    (``/jobs/next%2F``) would reach the next-job route and claim a job, ``/`` (``/jobs/%2F``)
    would list the jobs, ``submit/`` would get 405. Left encoded, the id is one path segment
    and only the get-job route can match it (which reads the id from the raw path itself).
    """

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            raw = scope.get("raw_path", b"").split(b"?", 1)[0]
            if raw.startswith(JOBS_PREFIX) and b"%" in raw:
                scope["path"] = raw.decode("latin-1")
        await handler(scope, receive, send)

    return route


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The simplequeue ASGI app. ``store`` overrides the one ``settings.db`` names (for tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def open_queue(app: Litestar) -> AsyncIterator[None]:
        opened = store or store_for(settings.db, synchronous=settings.synchronous)
        await opened.open()
        app.state.queue = Queue(opened)
        try:
            yield
        finally:
            await opened.close()

    app = Litestar(
        route_handlers=[*ROUTES, *DASHBOARD_ROUTES, VENDOR_ROUTE],
        lifespan=[open_queue],
        dependencies={"queue": Provide(_queue, sync_to_thread=False)},
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(exception_to_problem_detail_map=EXCEPTION_TO_PROBLEM)
            )
        ],
        exception_handlers={Exception: internal_error, ValidationException: validation_error},
        request_max_body_size=settings.max_body_size,
        openapi_config=OpenAPIConfig(
            title="simplequeue",
            version=__version__,
            description="A small, fast, trustworthy HTTP job queue: submit, next, complete.",
            path="/schema",
            # Redoc from the package, not a CDN: the API reference works with no network.
            render_plugins=[
                RedocRenderPlugin(
                    path="/",
                    js_url=f"{VENDOR_PATH}/redoc/redoc.standalone.js",
                    google_fonts=False,
                    favicon="",
                )
            ],
        ),
        logging_config=None,
    )
    app.asgi_handler = _route_job_paths_raw(app.asgi_handler)
    return app
