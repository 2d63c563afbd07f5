"""Everything the two clients share that is not I/O: building calls, reading answers, retrying.

`Client` and `AsyncClient` only send a `Call` and sleep between attempts; what to send, how long
each attempt may wait, whether an answer may be retried and how it becomes a model or an error
are decided here, once (`Attempts`), with the bodies and answers of `wire` and the arrays of
`batches`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar, get_args

import httpx
import msgspec

from simplequeue.client.batches import Batches, item_body
from simplequeue.client.wire import (
    Call,
    complete_body,
    encode,
    error,
    operation_body,
    queue_name,
    read_changed,
    read_claims,
    read_health,
    read_job,
    read_jobs,
    read_next,
    read_stats,
    read_stats_history,
    resendable,
    retry_after,
    seconds,
    submit_body,
)
from simplequeue.client.worker import Outcome
from simplequeue.errors import ConnectionFailed, InvalidRequest, ServerError
from simplequeue.models import (
    MAX_BATCH,
    MAX_CLAIM_COUNT,
    MAX_QUEUES_NAMED,
    STORE_TIMEOUT,
    Changed,
    CompletionStatus,
    Health,
    HeartbeatRequest,
    Job,
    JobState,
    Order,
    Stats,
    StatsHistory,
    job_path,
)

__all__ = [
    "DEFAULT_URL",
    "URL_ENV",
    "Action",
    "Attempts",
    "BaseClient",
    "Call",
    "Order",
    "Page",
    "Queues",
    "States",
    "total",
]

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "SIMPLEQUEUE_URL"
TIMEOUT = 10.0
"""Seconds each read (and write) of an attempt may wait. It stays above the time the server
takes to give up on a busy store and answer 503 (`STORE_TIMEOUT`), so that the server, not the
client, is the one that gives up."""
CLAIM_WAIT = STORE_TIMEOUT + 1.0
"""The least a ``next`` waits for its answer, whatever the timeout or deadline: the server may
take `STORE_TIMEOUT` to make the claim, and a client that stopped listening sooner would leave
the job it claimed ``running`` with nobody working on it."""
CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)

# A gateway's answers that say "the server was not reached or did not finish": the request may
# not have been applied, so an idempotent one can be sent again.
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_BACKOFF = 5.0
"""The longest wait between two attempts, whatever the backoff or a ``Retry-After`` asks for."""


States = JobState | str | Iterable[JobState | str] | None
Queues = str | Iterable[str] | None
"""One queue name or many, as ``state`` takes one state or many; ``None``: every queue."""
Action = Literal["cancel", "retry"]
"""An operator's action on jobs (CONTRACT §9): its route is ``POST /jobs/<action>``."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``GET /jobs``, and the call for the page after it (``None`` on the last)."""

    jobs: list[Job]
    next: Call[Page] | None


class BaseClient:
    def __init__(
        self,
        url: str | None,
        *,
        http_base_url: httpx.URL | None,
        timeout: float | httpx.Timeout | None,
        deadline: float | None,
        retries: int,
        backoff: float,
        clock: Callable[[], float],
    ) -> None:
        self.url = _base_url(url, http_base_url)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be more than 0 seconds, or None")
        self.deadline = deadline
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries = retries
        self.backoff = backoff
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the calls, one per endpoint ------------------------------------------------------------

    def _submit_call(
        self,
        job_id: str,
        description: str | None,
        data: dict[str, Any] | None,
        *,
        max_attempts: int | None,
        queue: str | None,
        priority: int | None,
        run_at: datetime | None,
        delay: float | timedelta | None,
    ) -> Call[Job]:
        body = submit_body(
            job_id,
            description,
            data,
            max_attempts=max_attempts,
            queue=queue,
            priority=priority,
            run_at=run_at,
            delay=delay,
        )
        return Call("POST", "/jobs/submit", read_job, body=body)

    def _submit_batches(self, jobs: Iterable[Mapping[str, Any]]) -> Batches:
        # Every item is checked and encoded before the first request: a key that is not one of
        # submit()'s parameters raises, with nothing sent. Submits are idempotent by job id.
        items = [item_body(submit_body, item, n) for n, item in enumerate(jobs)]
        return Batches("/jobs/submit", items, [True] * len(items))

    def _next_call(self, wait: float | None, lease: int | None, queues: Queues) -> Call[Job | None]:
        # Safe to send again: if an answer is lost after the server handed a job out, that job
        # is held under a lease nobody knows, and comes back when the lease ends. But once sent,
        # the answer is awaited for as long as the server may take to make the claim, and the
        # long-poll's wait on top: giving up sooner would leave the claimed job idle until then.
        params = _claim_params(wait, lease, queues)
        return Call("GET", "/jobs/next", read_next, params=params, least_read=_claim_wait(wait))

    def _claim_call(
        self, count: int, wait: float | None, lease: int | None, queues: Queues
    ) -> Call[list[Job]]:
        """``next(count=N)``: up to N jobs, each under a lease of its own; as `_next_call`."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidRequest(f"`count` must be a whole number, not {count!r}")
        if not 1 <= count <= MAX_CLAIM_COUNT:
            raise InvalidRequest(f"`count` must be 1 to {MAX_CLAIM_COUNT}, not {count}")
        params = (("count", str(count)), *_claim_params(wait, lease, queues))
        return Call("GET", "/jobs/next", read_claims, params=params, least_read=_claim_wait(wait))

    def _heartbeat_call(self, job_id: str, lease_id: str, lease_seconds: int | None) -> Call[Job]:
        # Renewing a lease twice is renewing it: safe to send again.
        body = encode(
            lambda: HeartbeatRequest(job_id=job_id, lease_id=lease_id, lease_seconds=lease_seconds),
            omit=() if lease_seconds is not None else ("leaseSeconds",),
        )
        return Call("POST", "/jobs/heartbeat", read_job, body=body)

    def _complete_call(
        self,
        job_id: str,
        status: CompletionStatus | str,
        lease_id: str | None,
        result: Any,
        error: str | None,
        retry: bool,
    ) -> Call[Job]:
        body = complete_body(
            job_id, status, lease_id=lease_id, result=result, error=error, retry=retry
        )
        idempotent = resendable(lease_id, retry)
        return Call("POST", "/jobs/complete", read_job, body=body, idempotent=idempotent)

    def _complete_batches(self, completions: Iterable[Mapping[str, Any]]) -> Batches:
        items = list(completions)
        bodies = [item_body(complete_body, item, n) for n, item in enumerate(items)]
        again = [resendable(item.get("lease_id"), item.get("retry", False)) for item in items]
        return Batches("/jobs/complete", bodies, again)

    def _renew_call(self, job: Job) -> Call[Job]:
        """How a worker renews the lease it holds on ``job``, for the lease's own length."""
        if job.lease_id is None:
            raise ValueError(f"job {job.job_id!r} was handed out without a lease")
        return self._heartbeat_call(job.job_id, job.lease_id, None)

    def _finish_batches(self, finished: Sequence[tuple[Job, Outcome]]) -> Batches:
        """How a worker completes each ``job``, held under its lease, with its ``outcome``."""
        return self._complete_batches(
            {
                "job_id": job.job_id,
                "status": outcome.status,
                "lease_id": job.lease_id,
                "result": outcome.result,
                "error": outcome.error,
                "retry": outcome.retry,
            }
            for job, outcome in finished
        )

    def _get_call(self, job_id: str) -> Call[Job]:
        return Call("GET", job_path(job_id), read_job)

    def _list_call(
        self,
        state: States,
        limit: int,
        after: str | None,
        before: str | None,
        order: Order,
        prefix: str | None,
        queue: Queues,
    ) -> Call[Page]:
        params = [("state", str(s)) for s in _states(state)]
        params += [("queue", name) for name in _queues(queue)]
        params.append(("limit", str(limit)))
        # `asc` is the server's default, so it is left out, as the server's own links do.
        optional = {"after": after, "before": before, "order": _order(order), "prefix": prefix}
        params += [(key, value) for key, value in optional.items() if value is not None]
        return self._page_call(tuple(params))

    def _page_call(self, params: tuple[tuple[str, str], ...]) -> Call[Page]:
        return Call("GET", "/jobs", self._read_page, params=params)

    def _action_calls(
        self,
        action: Action,
        jobs: str | Sequence[str] | None,
        state: JobState | str | None,
        queue: str | None,
        prefix: str | None,
    ) -> Call[Job] | list[Call[Changed]]:
        """``cancel`` or ``retry``: of one job (answered with it), of many (in requests of up to
        `MAX_BATCH` ids, whose counts `total` adds up), or of every job a filter matches (one
        request: the server works through them in chunks). Every body is built, and so checked,
        before the first request."""
        filtered = state is not None or queue is not None or prefix is not None
        if jobs is not None and filtered:
            raise ValueError(f"{action} takes job ids or a filter (state, queue, prefix), not both")
        if jobs is None and not filtered:
            # Not "every job": a variable that happens to be None must not cancel them all.
            raise ValueError(
                f"name the jobs to {action}: a job id, a list of ids, or a filter "
                "(state=, queue=, prefix=)"
            )
        # A cancel sent again finds the job cancelled already, changing nothing more (its
        # answer may then be a 409, or lower counts); a retry sent again could retry a job that
        # ran and failed again meanwhile: not resent.
        idempotent = action == "cancel"
        path = f"/jobs/{action}"
        if isinstance(jobs, str):
            body = operation_body(jobs)
            return Call("POST", path, read_job, body=body, idempotent=idempotent)
        if jobs is None:
            bodies = [operation_body(state=state, queue=queue, prefix=prefix)]
        else:
            ids = list(jobs)
            chunks = [ids[n : n + MAX_BATCH] for n in range(0, len(ids), MAX_BATCH)]
            bodies = [operation_body(job_ids=chunk) for chunk in chunks]
        return [
            Call("POST", path, read_changed, body=body, idempotent=idempotent) for body in bodies
        ]

    def _stats_call(self) -> Call[Stats]:
        return Call("GET", "/stats", read_stats)

    def _stats_history_call(self, seconds: int) -> Call[StatsHistory]:
        # The server checks the range (a 400, `InvalidRequest`, naming `seconds`).
        params = (("seconds", str(seconds)),)
        return Call("GET", "/stats/history", read_stats_history, params=params)

    def _health_call(self) -> Call[Health]:
        return Call("GET", "/health", read_health)

    # -- sending and reading --------------------------------------------------------------------

    def _attempts(self, call: Call[T], within: float | None = None) -> Attempts[T]:
        """The attempts at ``call``, all ending within the client's ``deadline`` and, when
        given, ``within`` seconds (a worker's renewal: the time left on the lease it renews)."""
        budgets = [budget for budget in (self.deadline, within) if budget is not None]
        return Attempts(self, call, min(budgets) if budgets else None, self._clock)

    def _read_page(self, response: httpx.Response) -> Page:
        jobs = read_jobs(response)
        link = response.links.get("next", {}).get("url")
        # Only the query is taken from the link: the client's own URL may carry a path prefix
        # (a reverse proxy) that the server does not know about.
        following = self._page_call(tuple(httpx.URL(link).params.multi_items())) if link else None
        return Page(jobs, following)


class Attempts(Generic[T]):
    """The attempts at one call: what each sends, how long it may wait, what follows it.

    With a deadline, every wait (to connect, for each read, between attempts) is cut to the time
    the call has left, and no attempt starts once that time is spent.
    """

    def __init__(
        self, client: BaseClient, call: Call[T], budget: float | None, clock: Callable[[], float]
    ) -> None:
        self._client = client
        self._call = call
        self._budget = budget  # the seconds the call may take, retries included
        self._ends = None if budget is None else clock() + budget  # the clock reading by then
        self._clock = clock
        self._made = 0
        self._cut: set[str] = set()  # the waits of the last attempt shortened to the deadline
        self._out_of_time = False  # a retry was given up because the deadline came first
        self._busy: httpx.Response | None = None  # the server's last answer, if it was a 503

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        call = self._call
        headers = {"Accept": "application/json"}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        self._made += 1
        return http.build_request(
            call.method,
            self._client.url + call.path,
            params=call.params,
            content=call.body,
            headers=headers,
            timeout=self._timeout(),
        )

    def retry_delay(self, outcome: httpx.Response | httpx.TransportError) -> float | None:
        """Seconds to wait before sending the call again, or ``None`` to settle on ``outcome``."""
        client = self._client
        # What settles the call if the deadline then runs out on a wait (see `settle`): the
        # last 503, unless something other than a wait went wrong since.
        if isinstance(outcome, httpx.Response):
            self._busy = outcome if outcome.status_code == 503 else None
        elif not isinstance(outcome, httpx.TimeoutException):
            self._busy = None
        if not self._call.idempotent or self._made > client.retries:
            return None
        asked = None
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in RETRY_STATUSES:
                return None
            asked = retry_after(outcome)
        # Exponential, with jitter so that many clients failing together do not retry together;
        # a server that says when to come back (503 with Retry-After) is not asked sooner, unless
        # that is longer than anyone should wait.
        backoff = client.backoff * 2.0 ** (self._made - 1) * random.uniform(0.5, 1.0)
        delay = min(max(backoff, asked or 0.0), MAX_BACKOFF)
        if self._ends is not None and delay >= self._ends - self._clock():
            self._out_of_time = True  # the next attempt would start too late to matter
            return None
        return delay

    def settle(self, outcome: httpx.Response | httpx.TransportError) -> T:
        """The call's result from its last outcome, or the error it becomes."""
        call = self._call
        if isinstance(outcome, httpx.TransportError):
            if self._busy is not None and self._ran_out(outcome):
                # The deadline ran out waiting on a retry after the server had said it was busy:
                # the store is busy (503, `Unavailable`), not the server unreachable.
                raise error(self._busy) from None
            raise self._connection_failed(outcome) from None
        if not outcome.is_success:
            raise error(outcome)
        try:
            return call.read(outcome)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ServerError(
                f"the server's answer to {call.method} {call.path} could not be read: {exc}",
                status_code=outcome.status_code,
            ) from None

    def _ran_out(self, exc: httpx.TransportError) -> bool:
        """Whether ``exc`` is a wait that the deadline ended (cut short, or not retried)."""
        out_of_time = self._out_of_time or _wait_that_ran_out(exc) in self._cut
        return out_of_time and isinstance(exc, httpx.TimeoutException)

    def _connection_failed(self, exc: httpx.TransportError) -> ConnectionFailed:
        url, deadline = self._client.url, self._budget
        out_of_time = self._out_of_time or _wait_that_ran_out(exc) in self._cut
        if isinstance(exc, httpx.TimeoutException):
            if out_of_time and deadline:
                return ConnectionFailed(f"the server at {url} did not answer within {deadline:g} s")
            return ConnectionFailed(f"the server at {url} did not answer in time ({exc})")
        spent = f" in {deadline:g} s" if out_of_time and deadline else ""
        return ConnectionFailed(f"cannot reach the server at {url}{spent}: {exc}")

    def _timeout(self) -> httpx.Timeout:
        timeout = self._client.timeout
        waits = {
            "connect": timeout.connect,
            "read": timeout.read,
            "write": timeout.write,
            "pool": timeout.pool,
        }
        if self._ends is not None:
            left = max(self._ends - self._clock(), 0.0)
            self._cut = {name for name, wait in waits.items() if wait is None or wait > left}
            waits = {name: _at_most(wait, left) for name, wait in waits.items()}
        if self._call.least_read and waits["read"] is not None:
            # Even past the deadline: see `Call.least_read`.
            waits["read"] = max(waits["read"], self._call.least_read)
            self._cut.discard("read")
        return httpx.Timeout(**waits)


_TIMEOUT_NAMES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def _wait_that_ran_out(exc: httpx.TransportError) -> str | None:
    return next((name for kind, name in _TIMEOUT_NAMES.items() if isinstance(exc, kind)), None)


def _at_most(wait: float | None, left: float) -> float:
    return left if wait is None else min(wait, left)


def _base_url(url: str | None, http_base_url: httpx.URL | None) -> str:
    chosen = url or (str(http_base_url) if http_base_url else None)
    chosen = chosen or os.environ.get(URL_ENV) or DEFAULT_URL
    parsed = httpx.URL(chosen)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL: {chosen!r}")
    return chosen.rstrip("/")


def _claim_params(
    wait: float | None, lease: int | None, queues: Queues
) -> tuple[tuple[str, str], ...]:
    params = [(key, seconds(value)) for key, value in (("wait", wait), ("lease", lease))]
    named = [("queue", name) for name in _queues(queues)]
    return tuple((key, value) for key, value in params if value is not None) + tuple(named)


def _claim_wait(wait: float | None) -> float:
    return CLAIM_WAIT + (wait or 0.0)


def _order(order: Order) -> str | None:
    if order not in get_args(Order):
        raise InvalidRequest(f"`order` must be 'asc' or 'desc', not {str(order)!r}")
    return None if order == "asc" else order


def _queues(queues: Queues) -> list[str]:
    names = [] if queues is None else [queues] if isinstance(queues, str) else list(queues)
    if len(names) > MAX_QUEUES_NAMED:
        raise InvalidRequest(f"name at most {MAX_QUEUES_NAMED} queues, not {len(names)}")
    return [queue_name(name) for name in names]


def total(changes: Iterable[Changed]) -> Changed:
    """The counts of a cancel or retry sent in several requests, added up."""
    matched = changed = 0
    for change in changes:
        matched += change.matched
        changed += change.changed
    return Changed(matched=matched, changed=changed)


def _states(state: States) -> list[JobState | str]:
    if state is None:
        return []
    if isinstance(state, str):  # a JobState is a str too
        return [state]
    return list(state)
