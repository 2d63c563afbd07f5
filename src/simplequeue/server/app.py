"""The application factory. Nothing happens at import time: the store opens in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from simplequeue import __version__
from simplequeue.queue import Queue, Rules
from simplequeue.server.dashboard import DASHBOARD_ROUTES
from simplequeue.server.guard import allowed_hosts, guard
from simplequeue.server.problems import (
    EXCEPTION_TO_PROBLEM,
    internal_error,
    problem_response,
    validation_error,
)
from simplequeue.server.reference import (
    VENDOR_ROUTE,
    JsonTextSchema,
    ReferencePage,
    schema_router,
)
from simplequeue.server.routes import JOBS_PREFIX, ROUTES
from simplequeue.server.settings import Settings
from simplequeue.store import Store, store_for

__all__ = ["create_app"]


def _queue(state: State) -> Queue:
    queue: Queue = state.queue
    return queue


def canonical_path(raw: bytes) -> bool:
    """Whether a raw request path is one the app routes: no empty segment (``//``, a trailing
    ``/``), no dot segment, and percent-encoding only in the one segment of ``/jobs/<id>``."""
    if raw == b"/":
        return True
    first, *segments = raw.split(b"/")
    if first or not segments or any(segment in {b"", b".", b".."} for segment in segments):
        return False
    if raw.startswith(JOBS_PREFIX):
        return len(segments) == 2
    return b"%" not in raw


def _route_job_paths_raw(handler: ASGIApp) -> ASGIApp:
    """Route by the raw path, not the decoded one, and only a canonical path.

    The router matches the decoded path, with slashes trimmed and collapsed: ``/jobs/next/``,
    ``//jobs/next``, ``/jobs%2Fnext`` and the id ``next/`` (``/jobs/next%2F``) would all reach
    the next-job route and claim a job; ``/static/app.js%00.css`` would reach the file system.
    So a path that is not written the one way the app's links write it is a 404, and under
    ``/jobs/`` an encoded id stays one segment that only the get-job route can match (it reads
    the id from the raw path itself).
    """

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            raw = scope.get("raw_path", b"").split(b"?", 1)[0] or scope["path"].encode()
            if not canonical_path(raw):
                detail = (
                    "no route matches this path as written: no `//`, trailing `/` or dot "
                    "segment, and percent-encoding only in the job id of `/jobs/<id>`"
                )
                await problem_response(404, detail)(scope, receive, send)
                return
            if raw.startswith(JOBS_PREFIX) and b"%" in raw:
                scope["path"] = raw.decode("latin-1")
        await handler(scope, receive, send)

    return route


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The simplequeue ASGI app. ``store`` overrides the one ``settings.db`` names (for tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def open_queue(app: Litestar) -> AsyncIterator[None]:
        opened = store or store_for(
            settings.db,
            synchronous=settings.synchronous,
            timeout=settings.store_timeout,
            pool_max=settings.pool_max,
        )
        await opened.open()
        rules = Rules(
            max_attempts=settings.max_attempts,
            lease_seconds=settings.lease_seconds,
            retry_backoff=settings.retry_backoff,
            keep_succeeded=settings.keep_succeeded,
            keep_failed=settings.keep_failed,
        )
        queue = app.state.queue = Queue(opened, clock=opened.now, rules=rules)
        app.state.settings = settings
        # Ended leases come back without anyone asking: the server looks every so often.
        duty = asyncio.create_task(queue.run(settings.look_interval), name="simplequeue-look")
        try:
            yield
        finally:
            duty.cancel()
            await asyncio.gather(duty, return_exceptions=True)
            await queue.close()
            await opened.close()

    app = Litestar(
        route_handlers=[*ROUTES, *DASHBOARD_ROUTES, VENDOR_ROUTE],
        lifespan=[open_queue],
        dependencies={"queue": Provide(_queue, sync_to_thread=False)},
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(exception_to_problem_detail_map=EXCEPTION_TO_PROBLEM)
            ),
            JsonTextSchema(),
        ],
        exception_handlers={Exception: internal_error, ValidationException: validation_error},
        request_max_body_size=settings.max_body_size,
        openapi_config=OpenAPIConfig(
            title="simplequeue",
            version=__version__,
            description="A small, fast, trustworthy HTTP job queue: submit, next, complete.",
            openapi_router=schema_router(),
            # Redoc from the package, not a CDN: the API reference works with no network.
            render_plugins=[ReferencePage()],
        ),
        logging_config=None,
    )
    hosts = allowed_hosts(settings.host, settings.allowed_hosts)
    app.asgi_handler = guard(_route_job_paths_raw(app.asgi_handler), hosts)
    return app
