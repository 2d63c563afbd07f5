"""The HTTP routes: bind the request, make one call into the queue, return a model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from simplequeue import jsontext
from simplequeue.errors import InvalidRequest
from simplequeue.models import (
    MAX_JOB_ID_LENGTH,
    MAX_LEASE_SECONDS,
    MAX_WAIT_SECONDS,
    ClaimedJob,
    CompleteRequest,
    Health,
    HeartbeatRequest,
    JobState,
    Order,
    Problem,
    Stats,
    StoredJob,
    SubmitRequest,
    job_path,
)
from simplequeue.queue import MAX_PAGE, Queue

__all__ = ["ROUTES"]

T = TypeVar("T")

JOBS_PREFIX = b"/jobs/"
# The one path that claims a job: the edge (guard.py) refuses HEAD and other sites on it.
NEXT_PATH = "/jobs/next"
# Liveness: answered to any Host (guard.py), for probes that address the server by IP.
HEALTH_PATH = "/health"


def _with_body(model: type[Any]) -> type[Operation]:
    """An OpenAPI operation whose request body is ``model``'s own msgspec schema.

    Handlers read the raw body and decode it with msgspec themselves (strict, and with the
    failing field's path in the message), rather than through Litestar's ``data`` binding, which
    decodes leniently and drops the path from its messages.
    """
    (_, components) = msgspec.json.schema_components(
        [model], ref_template="#/components/schemas/{name}"
    )
    # The model's own components (an enum such as CompletionStatus) are not in the app's
    # OpenAPI components, so a $ref to one would dangle: put them in place.
    prefix = "#/components/schemas/"

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                return inline(components[ref.removeprefix(prefix)])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    body = RequestBody(
        content={"application/json": OpenAPIMediaType(schema=inline(components[model.__name__]))},
        required=True,
    )

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return WithBody


class _Texts(msgspec.Struct):
    """The fields of a body whose text is kept as sent (see simplequeue.jsontext)."""

    data: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")


async def _decode(request: Request[Any, Any, Any], model: type[T]) -> T:
    """The body as ``model``, or a 400 naming what is wrong. Besides the model's own rules, a
    body may not nest deeper than the server allows, nor name a key twice in one object (which
    value was meant is ambiguous): both are refused before anything is stored."""
    body = await request.body()
    max_depth: int = request.app.state.settings.max_json_depth
    too_deep = InvalidRequest(
        f"the request body nests too deeply: `data` and `result` may nest at most {max_depth} "
        "levels"
    )
    try:
        decoded = msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep from None
    # The body is one object around `data` (or `result`): one level more than they are.
    if jsontext.deeper_than(body, max_depth + 1):
        raise too_deep
    try:
        jsontext.refuse_duplicate_keys(body)
    except jsontext.DuplicateKey as exc:
        raise InvalidRequest(
            f"the request body names the key {exc.args[0]!r} twice in one object; "
            "send each key once"
        ) from None
    return decoded


async def _text(request: Request[Any, Any, Any], field: str) -> bytes | None:
    """The JSON text of the body's ``field`` as sent, or ``None`` when it is absent or null."""
    texts = msgspec.json.decode(await request.body(), type=_Texts)
    text = bytes(getattr(texts, field))
    return None if text == b"null" else text


async def _unless_gone(request: Request[Any, Any, Any], work: Awaitable[T]) -> T | None:
    """``work``'s result, or ``None`` if the client disconnects first (``work`` is cancelled)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        gone.cancel()
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


def _problems(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(data_container=Problem, media_type="application/problem+json")
        for code in codes
    }


@post(
    "/jobs/submit",
    summary="Submit a job",
    description=(
        "201 with the job when the id is new; 200 with the stored job, unchanged, when the same "
        "id was submitted with the same description and data; 409 when it differs."
    ),
    status_code=HTTP_201_CREATED,
    responses={
        HTTP_200_OK: ResponseSpec(
            data_container=StoredJob,
            description="Already submitted with the same content; unchanged",
        ),
        **_problems(400, 403, 409, 413, 415, 503),
    },
    operation_class=_with_body(SubmitRequest),
    tags=["jobs"],
)
async def submit(
    request: Request[Any, Any, Any], queue: NamedDependency[Queue]
) -> Response[StoredJob]:
    body = await _decode(request, SubmitRequest)
    submitted = await queue.submit(body, await _text(request, "data"))
    if submitted.created:
        return Response(
            submitted.job,
            status_code=HTTP_201_CREATED,
            headers={"Location": job_path(submitted.job.job_id)},
        )
    return Response(submitted.job, status_code=HTTP_200_OK)


@get(
    NEXT_PATH,
    summary="Take the next job",
    description="The oldest due submitted job, now running under a lease whose `leaseId` only "
    "this answer carries; 204 when there is none (after `wait` seconds, if given).",
    responses={
        204: ResponseSpec(data_container=None, description="No job, within `wait`"),
        **_problems(400, 403, 503),
    },
    tags=["jobs"],
)
async def next_job(
    request: Request[Any, Any, Any],
    queue: NamedDependency[Queue],
    lease: Annotated[
        int | None,
        QueryParameter(
            ge=1, le=MAX_LEASE_SECONDS, description="Seconds the lease lasts (server default)."
        ),
    ] = None,
    wait: Annotated[
        float,
        QueryParameter(
            ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for a job (long-poll)."
        ),
    ] = 0,
) -> Response[ClaimedJob | None]:
    claim = queue.next(lease_seconds=lease, wait=wait)
    # A caller that goes away while it waits is given no job (its claim is undone).
    jobs = await (_unless_gone(request, claim) if wait > 0 else claim)
    if not jobs:
        return Response(None, status_code=HTTP_204_NO_CONTENT)
    return Response(jobs[0])


@post(
    "/jobs/heartbeat",
    summary="Renew a lease",
    description="The job stays with the worker holding `leaseId` for `leaseSeconds` more "
    "(default: the lease's own length); 409 `lease lost` when that lease is no longer current.",
    status_code=HTTP_200_OK,
    responses=_problems(400, 403, 404, 409, 413, 415, 503),
    operation_class=_with_body(HeartbeatRequest),
    tags=["jobs"],
)
async def heartbeat(request: Request[Any, Any, Any], queue: NamedDependency[Queue]) -> ClaimedJob:
    body = await _decode(request, HeartbeatRequest)
    lease = None if body.lease_seconds is None else int(body.lease_seconds)
    return await queue.heartbeat(body.job_id, body.lease_id, lease)


@post(
    "/jobs/complete",
    summary="Complete a running job",
    description="Ends a running job's attempt: `succeeded` (with its `result`), or `failed` "
    "(with its `error`; with `retry`, back in the queue after a backoff while attempts remain). "
    "With `leaseId`, only while that lease is current (else 409 `lease lost`). Repeating an "
    "applied completion is answered 200 with the job as it is; any other transition is 409.",
    status_code=HTTP_200_OK,
    responses=_problems(400, 403, 404, 409, 413, 415, 503),
    operation_class=_with_body(CompleteRequest),
    tags=["jobs"],
)
async def complete(request: Request[Any, Any, Any], queue: NamedDependency[Queue]) -> StoredJob:
    body = await _decode(request, CompleteRequest)
    return await queue.complete(body, await _text(request, "result"))


def _path_job_id(request: Request[Any, Any, Any]) -> str:
    # The router sees the decoded path, where `a%2Fb` and `a/b` (and `a%2F%2Fb`, collapsed) look
    # alike; the id is what the client percent-encoded, so it is read from the raw path.
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    encoded = raw[raw.index(JOBS_PREFIX) + len(JOBS_PREFIX) :]
    try:
        return unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the job id in the path is not valid UTF-8") from None


@get(
    "/jobs/{job_path:path}",
    summary="Get a job",
    description="The id is percent-encoded in the path (`/` as `%2F`).",
    responses=_problems(404),
    tags=["jobs"],
)
async def get_job(
    request: Request[Any, Any, Any], job_path: FromPath[str], queue: NamedDependency[Queue]
) -> StoredJob:
    del job_path  # the router's decoded copy; see _path_job_id
    return await queue.get(_path_job_id(request))


@get(
    "/jobs",
    summary="List jobs",
    description="Jobs in submission order, oldest first (`order=desc`: newest first). A "
    '`Link: <...>; rel="next"` header gives the next page when more jobs follow.',
    responses=_problems(400),
    tags=["jobs"],
)
async def list_jobs(
    queue: NamedDependency[Queue],
    states: Annotated[
        list[JobState] | None,
        QueryParameter(name="state", description="Only jobs in these states (repeatable)."),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size.")] = 100,
    # Bounded like a jobId, so that the schema refuses what can name no job (an empty value)
    # and the 400 is the parameter's own, not "names no job".
    after: Annotated[
        str | None,
        QueryParameter(
            min_length=1,
            max_length=MAX_JOB_ID_LENGTH,
            description="A jobId: return the jobs submitted after it.",
        ),
    ] = None,
    before: Annotated[
        str | None,
        QueryParameter(
            min_length=1,
            max_length=MAX_JOB_ID_LENGTH,
            description="A jobId: return the jobs submitted before it.",
        ),
    ] = None,
    order: Annotated[
        Order,
        QueryParameter(description="`asc`: oldest first (the default); `desc`: newest first."),
    ] = "asc",
    prefix: Annotated[
        str | None,
        QueryParameter(
            min_length=1, max_length=MAX_JOB_ID_LENGTH, description="Only jobs whose id starts so."
        ),
    ] = None,
) -> Response[list[StoredJob]]:
    states = states or []
    newest_first = order == "desc"
    page = await queue.list_jobs(
        states, limit, after, before=before, newest_first=newest_first, prefix=prefix
    )
    headers = {}
    if page.more:
        last = page.jobs[-1].job_id
        after, before = (after, last) if newest_first else (last, before)
        headers["Link"] = _next_page_link(states, limit, after, before, newest_first, prefix)
    return Response(page.jobs, headers=headers)


def _next_page_link(
    states: list[JobState],
    limit: int,
    after: str | None,
    before: str | None,
    newest_first: bool,
    prefix: str | None,
) -> str:
    # The next page continues past the last job shown (later ones oldest first, earlier ones
    # newest first); the other bound and every filter stay as they were. asc is the default
    # order, so its links do not name it.
    optional = {
        "prefix": prefix,
        "order": "desc" if newest_first else None,
        "after": after,
        "before": before,
    }
    query = [("state", s.value) for s in states] + [("limit", str(limit))]
    query += [(key, value) for key, value in optional.items() if value is not None]
    return f'</jobs?{urlencode(query, quote_via=quote)}>; rel="next"'


@get("/stats", summary="Count jobs per state", tags=["queue"])
async def stats(queue: NamedDependency[Queue]) -> Stats:
    return await queue.stats()


@get(HEALTH_PATH, summary="Liveness", tags=["queue"])
async def health() -> Health:
    return Health(status="ok")


ROUTES = [submit, next_job, heartbeat, complete, get_job, list_jobs, stats, health]

BODY_PATHS = frozenset(
    path for route in ROUTES if "POST" in route.http_methods for path in route.paths
)
"""The paths that take a JSON body: only there is a body of another type a 415. Elsewhere a POST
is the router's 405 (or 404), whatever it carries."""
