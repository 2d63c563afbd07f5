"""The HTTP routes: bind the request, make one call into the queue, return a model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from simplequeue import jsontext
from simplequeue.errors import InvalidRequest, SimpleQueueError
from simplequeue.models import (
    HISTORY_SECONDS,
    MAX_BATCH,
    MAX_CLAIM_COUNT,
    MAX_JOB_ID_LENGTH,
    MAX_LEASE_SECONDS,
    MAX_QUEUES_NAMED,
    MAX_WAIT_SECONDS,
    QUEUE_NAME_RULE,
    Changed,
    ClaimedJob,
    CompleteRequest,
    Health,
    HeartbeatRequest,
    ItemResult,
    JobState,
    OperationRequest,
    Order,
    Problem,
    Stats,
    StatsHistory,
    StoredJob,
    SubmitRequest,
    check_queue_name,
    job_path,
)
from simplequeue.queue import MAX_PAGE, Action, Queue, Submitted
from simplequeue.server.conditional import NOT_MODIFIED, conditional

__all__ = ["ROUTES"]

T = TypeVar("T")
R = TypeVar("R")

JOBS_PREFIX = b"/jobs/"
# The one path that claims a job: the edge (guard.py) refuses HEAD and other sites on it.
NEXT_PATH = "/jobs/next"
# Liveness: answered to any Host (guard.py), for probes that address the server by IP.
HEALTH_PATH = "/health"


def _with_body(
    model: type[Any], *, batch: bool = False, extra: dict[str, Any] | None = None
) -> type[Operation]:
    """An OpenAPI operation whose request body is ``model``'s own msgspec schema (or, with
    ``batch``, either that or an array of 1 to `MAX_BATCH` of them: CONTRACT §10).

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

    schema: Any = {**inline(components[model.__name__]), **(extra or {})}
    if batch:
        # Each item is decided on its own (CONTRACT §10): one that is not a valid body is that
        # item's 400 inside the batch's 200, so the array takes any item, and says so.
        refused = {"description": "Any other value: refused on its own, as that item's 400."}
        items = {
            "type": "array",
            "items": {"anyOf": [schema, refused]},
            "minItems": 1,
            "maxItems": MAX_BATCH,
        }
        schema = {"oneOf": [schema, items]}
    body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return WithBody


class _Texts(msgspec.Struct):
    """The fields of a body whose text is kept as sent (see simplequeue.jsontext)."""

    data: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")


def _queue_of(request: Request[Any, Any, Any]) -> Queue:
    """The app's queue, read directly on the hot routes: Litestar's dependency injection costs
    more per request than the rest of a route's own work (bench/README.md)."""
    queue: Queue = request.app.state.queue
    return queue


async def _decode(request: Request[Any, Any, Any], model: type[T]) -> T:
    """The body as ``model``, or a 400 naming what is wrong (see `_decode_one`)."""
    return _decode_one(await request.body(), model, request.app.state.settings.max_json_depth)


def _decode_one(body: bytes, model: type[T], max_depth: int) -> T:
    """``body`` as ``model``, or a 400 naming what is wrong. Besides the model's own rules, a
    body may not nest deeper than the server allows, nor name a key twice in one object (which
    value was meant is ambiguous): both are refused before anything is stored."""
    try:
        decoded = msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep(max_depth) from None
    # The body is one object around `data` (or `result`): one level more than they are.
    if jsontext.deeper_than(body, max_depth + 1):
        raise _too_deep(max_depth)
    try:
        jsontext.refuse_duplicate_keys(body)
    except jsontext.DuplicateKey as exc:
        raise InvalidRequest(
            f"the request body names the key {exc.args[0]!r} twice in one object; "
            "send each key once"
        ) from None
    return decoded


def _too_deep(max_depth: int) -> InvalidRequest:
    return InvalidRequest(
        f"the request body nests too deeply: `data` and `result` may nest at most {max_depth} "
        "levels"
    )


def _text_of(body: bytes, field: str) -> bytes | None:
    """The JSON text of the body's ``field`` as sent, or ``None`` when it is absent or null."""
    text = bytes(getattr(msgspec.json.decode(body, type=_Texts), field))
    return None if text == b"null" else text


def _is_batch(body: bytes) -> bool:
    """Whether the body is a JSON array (CONTRACT §10) rather than one object."""
    return body.lstrip(b" \t\r\n")[:1] == b"["


def _items(body: bytes, max_depth: int) -> list[bytes]:
    """The items of a batch body, each as the JSON text sent, or a 400 for the whole batch."""
    try:
        items = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        # An item nested beyond the decoder's own limit: split the array by its nesting alone,
        # so that this item is refused on its own (as too deep) and the others still apply.
        split = jsontext.array_items(body)
        if split is None:
            raise InvalidRequest("the request body is not valid JSON") from None
        items = [msgspec.Raw(item) for item in split]
    if not 1 <= len(items) <= MAX_BATCH:
        advice = "; send more batches" if items else ""
        raise InvalidRequest(f"a batch holds 1 to {MAX_BATCH} items, got {len(items)}{advice}")
    return [bytes(item) for item in items]


class _Batch(Generic[T]):
    """A batch body (CONTRACT §10): each item decoded on its own, then the valid ones applied
    together, and every item answered in its place."""

    def __init__(self, body: bytes, model: type[T], field: str, max_depth: int) -> None:
        items = _items(body, max_depth)
        whole = _whole(body, model, field, max_depth)
        # One slot per item: None for the valid ones (listed in order in `valid`, with their
        # raw `field`), the 400 of the others.
        self.slots: list[ItemResult | None] = [None] * len(items)
        self.valid: list[tuple[T, bytes | None]] = [] if whole is None else whole
        if whole is None:
            for n, item in enumerate(items):
                try:
                    self.valid.append((_decode_one(item, model, max_depth), _text_of(item, field)))
                except InvalidRequest as exc:
                    detail = exc.detail.replace("request body", "item", 1)
                    self.slots[n] = ItemResult(status=400, detail=detail)

    async def answer(
        self,
        apply: Callable[[list[tuple[T, bytes | None]]], Awaitable[Sequence[R | SimpleQueueError]]],
        answered: Callable[[R], ItemResult],
    ) -> list[ItemResult]:
        done = iter(await apply(self.valid) if self.valid else [])

        def result(outcome: R | SimpleQueueError) -> ItemResult:
            if isinstance(outcome, SimpleQueueError):
                return ItemResult(status=outcome.status_code, detail=outcome.detail)
            return answered(outcome)

        return [result(next(done)) if slot is None else slot for slot in self.slots]


def _whole(
    body: bytes, model: type[T], field: str, max_depth: int
) -> list[tuple[T, bytes | None]] | None:
    """Every item of a batch decoded and checked in one pass each over the whole body, or
    ``None`` if any item fails a check (then each is checked alone, to say which): the same
    checks as `_decode_one`, without a Python round per item for the common, valid batch."""
    if jsontext.deeper_than(body, max_depth + 2):  # one level more: the array around the items
        return None
    try:
        decoded = msgspec.json.decode(body, type=list[model])  # type: ignore[valid-type]
        texts = msgspec.json.decode(body, type=list[_Texts])
        jsontext.refuse_duplicate_keys(body)
    except (msgspec.DecodeError, RecursionError, jsontext.DuplicateKey):
        return None  # (msgspec.ValidationError is a DecodeError)
    raw = [bytes(getattr(text, field)) for text in texts]
    return [
        (item, None if text == b"null" else text) for item, text in zip(decoded, raw, strict=True)
    ]


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


QueuesParameter = Annotated[
    list[str] | None,
    QueryParameter(
        name="queue",
        max_items=MAX_QUEUES_NAMED,
        description="Only jobs of these queues (repeatable; none: every queue). A queue name "
        f"is {QUEUE_NAME_RULE}",
    ),
]


def _queue_names(queues: list[str] | None) -> list[str]:
    """The ``queue`` query values, each checked (a 400 names the bad one)."""
    for name in queues or []:
        try:
            check_queue_name(name)
        except ValueError as exc:
            raise InvalidRequest(f"{exc}, got {name!r}") from None
    if len(queues or []) > MAX_QUEUES_NAMED:
        raise InvalidRequest(f"name at most {MAX_QUEUES_NAMED} `queue` values")
    return queues or []


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
        HTTP_201_CREATED: ResponseSpec(
            data_container=StoredJob,
            description="A new job, now queued (`Location` names it); a batch is always 200",
        ),
        HTTP_200_OK: ResponseSpec(
            data_container=StoredJob | list[ItemResult],
            generate_examples=False,
            description="Already submitted with the same content, unchanged; or, for an array "
            "of jobs, one result per item, in order",
        ),
        **_problems(400, 403, 409, 413, 415, 503),
    },
    operation_class=_with_body(SubmitRequest, batch=True),
    tags=["jobs"],
)
async def submit(request: Request[Any, Any, Any]) -> Response[StoredJob | list[ItemResult]]:
    queue = _queue_of(request)
    body = await request.body()
    max_depth: int = request.app.state.settings.max_json_depth
    if _is_batch(body):

        def answer(done: Submitted) -> ItemResult:
            status = HTTP_201_CREATED if done.created else HTTP_200_OK
            return ItemResult(status=status, job=done.job)

        batch = _Batch(body, SubmitRequest, "data", max_depth)
        return Response(await batch.answer(queue.submit_many, answer), status_code=HTTP_200_OK)
    submitted = await queue.submit(
        _decode_one(body, SubmitRequest, max_depth), _text_of(body, "data")
    )
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
    description="The next due submitted job (highest `priority`, then earliest `runAt`, then "
    "submission order), now running under a lease whose `leaseId` only this answer carries; "
    "204 when there is none (after `wait` seconds, if given). With `count`, an array of up to "
    "that many, each under its own lease (`[]` when none). With `queue`, only from those "
    "queues.",
    responses={
        204: ResponseSpec(data_container=None, description="No job, within `wait`"),
        **_problems(400, 403, 503),
    },
    tags=["jobs"],
)
async def next_job(
    request: Request[Any, Any, Any],
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
    count: Annotated[
        int | None,
        QueryParameter(
            ge=1,
            le=MAX_CLAIM_COUNT,
            description="Up to this many jobs, as an array (`[]` when none), each under a "
            "lease of its own.",
        ),
    ] = None,
    queues: QueuesParameter = None,
) -> Response[ClaimedJob | list[ClaimedJob] | None]:
    claim = _queue_of(request).next(
        lease_seconds=lease, wait=wait, count=count or 1, queues=_queue_names(queues)
    )
    # A caller that goes away while it waits is given no job (its claim is undone).
    jobs = await (_unless_gone(request, claim) if wait > 0 else claim) or []
    if count is not None:
        return Response(jobs)
    if not jobs:
        return Response(None, status_code=HTTP_204_NO_CONTENT)
    return Response(jobs[0])


@post(
    "/jobs/heartbeat",
    summary="Renew a lease",
    description="The job stays with the worker holding `leaseId` for `leaseSeconds` more "
    "(default: the lease's own length); 409 `lease lost` when that lease is no longer current.",
    status_code=HTTP_200_OK,
    responses=_problems(400, 403, 404, 409, 410, 413, 415, 503),
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
    responses=_problems(400, 403, 404, 409, 410, 413, 415, 503),
    operation_class=_with_body(CompleteRequest, batch=True),
    tags=["jobs"],
)
async def complete(request: Request[Any, Any, Any]) -> StoredJob | list[ItemResult]:
    queue = _queue_of(request)
    body = await request.body()
    max_depth: int = request.app.state.settings.max_json_depth
    if _is_batch(body):
        batch = _Batch(body, CompleteRequest, "result", max_depth)
        return await batch.answer(
            queue.complete_many, lambda job: ItemResult(status=HTTP_200_OK, job=job)
        )
    return await queue.complete(
        _decode_one(body, CompleteRequest, max_depth), _text_of(body, "result")
    )


def _operation(action: Action, summary: str, description: str) -> Any:
    @post(
        f"/jobs/{action.value}",
        summary=summary,
        description=description
        + " With `jobIds` (up to 1,000) or `filter` (every matching job, done in bounded "
        "chunks), the answer is `{matched, changed}`.",
        status_code=HTTP_200_OK,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=StoredJob | Changed,
                generate_examples=False,
                description="The job (for `jobId`), or the counts (for `jobIds` or `filter`)",
            ),
            **_problems(400, 403, 404, 409, 410, 413, 415, 503),
        },
        # Exactly one of jobId, jobIds and filter (OperationRequest checks it too).
        operation_class=_with_body(
            OperationRequest, extra={"minProperties": 1, "maxProperties": 1}
        ),
        tags=["operations"],
        name=action.value,
    )
    async def operate(request: Request[Any, Any, Any]) -> StoredJob | Changed:
        queue = _queue_of(request)
        body = await _decode(request, OperationRequest)
        if body.job_id is not None:
            return await queue.act(action, body.job_id)
        if body.job_ids is not None:
            return await queue.act_many(action, body.job_ids)
        assert body.filter is not None  # OperationRequest holds exactly one of the three
        return await queue.act_matching(action, body.filter)

    return operate


cancel = _operation(
    Action.CANCEL,
    "Cancel jobs",
    "A submitted or running job becomes failed with the error `cancelled`; a running job's "
    "lease ends (its worker's heartbeat and complete get 409 `lease lost`). 409 if it already "
    "finished, 410 if it was pruned.",
)
retry = _operation(
    Action.RETRY,
    "Retry failed jobs",
    "A failed job goes back to submitted, due now, with its attempts and errors (one more "
    "attempt allowed if it had used them all). 409 if it is not failed, 410 if it was pruned.",
)


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
    description="The id is percent-encoded in the path (`/` as `%2F`). 410 when the job "
    "finished and was deleted by the server's retention.",
    responses=_problems(404, 410),
    tags=["jobs"],
)
async def get_job(
    request: Request[Any, Any, Any], job_path: FromPath[str], queue: NamedDependency[Queue]
) -> StoredJob:
    del job_path  # the router's decoded copy; see _path_job_id
    return await queue.get(_path_job_id(request))


def _polled(model: Any, description: str) -> dict[int, ResponseSpec]:
    """The responses of a route answered through `conditional`: ``model`` or 304."""
    return {
        HTTP_200_OK: ResponseSpec(
            data_container=model, generate_examples=False, description=description
        ),
        **NOT_MODIFIED,
    }


@get(
    "/jobs",
    summary="List jobs",
    description="Jobs in submission order, oldest first (`order=desc`: newest first). A "
    '`Link: <...>; rel="next"` header gives the next page when more jobs follow. With an '
    "`ETag`: `If-None-Match` naming it is answered 304.",
    responses={**_polled(list[StoredJob], "The page of jobs"), **_problems(400)},
    tags=["jobs"],
)
async def list_jobs(
    request: Request[Any, Any, Any],
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
    queues: QueuesParameter = None,
) -> Response[bytes]:
    states = states or []
    names = _queue_names(queues)
    newest_first = order == "desc"
    page = await queue.list_jobs(
        states,
        limit,
        after,
        before=before,
        newest_first=newest_first,
        prefix=prefix,
        queues=names,
    )
    headers = {}
    if page.more:
        last = page.jobs[-1].job_id
        after, before = (after, last) if newest_first else (last, before)
        headers["Link"] = _next_page_link(states, limit, after, before, newest_first, prefix, names)
    return conditional(request, page.jobs, headers)


def _next_page_link(
    states: list[JobState],
    limit: int,
    after: str | None,
    before: str | None,
    newest_first: bool,
    prefix: str | None,
    queues: list[str],
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
    query = [("state", s.value) for s in states] + [("queue", name) for name in queues]
    query += [("limit", str(limit))]
    query += [(key, value) for key, value in optional.items() if value is not None]
    return f'</jobs?{urlencode(query, quote_via=quote)}>; rel="next"'


@get(
    "/stats",
    summary="Count jobs per state, in all and per queue",
    description="Top-level totals, and per queue (each queue that holds a job) its count per "
    "state and `oldestDueAgeSeconds`: how long its oldest due job has waited (queue latency); "
    "`submittedEver` and `completedEver` count every job ever submitted and completed. With an "
    "`ETag`: `If-None-Match` naming it is answered 304.",
    responses=_polled(Stats, "The counts"),
    tags=["queue"],
)
async def stats(request: Request[Any, Any, Any], queue: NamedDependency[Queue]) -> Response[bytes]:
    return conditional(request, await queue.stats())


@get(
    "/stats/history",
    summary="Jobs submitted and completed per second",
    description="How many jobs were submitted and completed in each second of the last "
    "`seconds` (oldest first, the last ending at `end`), from the counters of `/stats` sampled "
    "by the server once a second and kept in memory: fewer entries when the server has run "
    "for less time. With an `ETag`: `If-None-Match` naming it is answered 304.",
    responses={**_polled(StatsHistory, "The history"), **_problems(400)},
    tags=["queue"],
)
async def stats_history(
    request: Request[Any, Any, Any],
    queue: NamedDependency[Queue],
    seconds: Annotated[
        int,
        QueryParameter(
            ge=1, le=HISTORY_SECONDS, description="How many of the last seconds to answer."
        ),
    ] = HISTORY_SECONDS,
) -> Response[bytes]:
    return conditional(request, queue.history(seconds))


@get(HEALTH_PATH, summary="Liveness", tags=["queue"])
async def health() -> Health:
    return Health(status="ok")


ROUTES = [
    submit,
    next_job,
    heartbeat,
    complete,
    cancel,
    retry,
    get_job,
    list_jobs,
    stats,
    stats_history,
    health,
]

BODY_PATHS = frozenset(
    path for route in ROUTES if "POST" in route.http_methods for path in route.paths
)
"""The paths that take a JSON body: only there is a body of another type a 415. Elsewhere a POST
is the router's 405 (or 404), whatever it carries."""
