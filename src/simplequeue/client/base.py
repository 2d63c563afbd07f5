"""Everything the two clients share that is not I/O: building calls, reading answers, retrying.

`Client` and `AsyncClient` only send a `Call` and sleep between attempts; what to send, how long
each attempt may wait, whether an answer may be retried and how it becomes a model or an error
are decided here, once (`Attempts`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

import httpx
import msgspec

from simplequeue.client.worker import Outcome
from simplequeue.errors import (
    LEASE_LOST,
    REQUEST_ERROR_FOR_STATUS,
    ConnectionFailed,
    InvalidRequest,
    JobConflict,
    LeaseLost,
    RequestError,
    ServerError,
    Unavailable,
)
from simplequeue.models import (
    STORE_TIMEOUT,
    CompleteRequest,
    CompletionStatus,
    Health,
    HeartbeatRequest,
    Job,
    JobState,
    Order,
    Problem,
    Stats,
    SubmitRequest,
    job_path,
)

__all__ = ["DEFAULT_URL", "URL_ENV", "Attempts", "BaseClient", "Call", "Order", "Page"]

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

_job = msgspec.json.Decoder(Job)
_jobs = msgspec.json.Decoder(list[Job])
_stats = msgspec.json.Decoder(Stats)
_health = msgspec.json.Decoder(Health)
_problem = msgspec.json.Decoder(Problem)

States = JobState | str | Iterable[JobState | str] | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: the request to send, whether resending it is safe, how to read the answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    idempotent: bool = True
    least_read: float = 0.0
    """The least each attempt waits for its answer once sent, whatever the timeout or deadline
    (a claim's: see `CLAIM_WAIT`)."""


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
        max_attempts: int | None,
    ) -> Call[Job]:
        body = _encode(
            lambda: SubmitRequest(
                job_id=job_id, description=description, data=data, max_attempts=max_attempts
            ),
            # Left out when not given, so that the server's default applies (and a server from
            # before maxAttempts, which refuses unknown fields, still takes the submit).
            omit_if_none=("maxAttempts",),
        )
        return Call("POST", "/jobs/submit", _reader(_job), body=body)

    def _next_call(self, wait: float | None, lease: int | None) -> Call[Job | None]:
        # Safe to send again: if an answer is lost after the server handed a job out, that job
        # is held under a lease nobody knows, and comes back when the lease ends. But once sent,
        # the answer is awaited for as long as the server may take to make the claim, and the
        # long-poll's wait on top: giving up sooner would leave the claimed job idle until then.
        params = [(key, _seconds(value)) for key, value in (("wait", wait), ("lease", lease))]
        return Call(
            "GET",
            "/jobs/next",
            _read_next,
            params=tuple((key, value) for key, value in params if value is not None),
            least_read=CLAIM_WAIT + (wait or 0.0),
        )

    def _heartbeat_call(self, job_id: str, lease_id: str, lease_seconds: int | None) -> Call[Job]:
        # Renewing a lease twice is renewing it: safe to send again.
        body = _encode(
            lambda: HeartbeatRequest(job_id=job_id, lease_id=lease_id, lease_seconds=lease_seconds),
            omit_if_none=("leaseSeconds",),
        )
        return Call("POST", "/jobs/heartbeat", _reader(_job), body=body)

    def _complete_call(
        self,
        job_id: str,
        status: CompletionStatus | str,
        lease_id: str | None,
        result: Any,
        error: str | None,
        retry: bool,
    ) -> Call[Job]:
        body = _encode(
            lambda: CompleteRequest(
                job_id=job_id,
                status=_status(status),
                lease_id=lease_id,
                result=result,
                error=error,
                retry=retry,
            )
        )
        # The same completion again is answered 200 unchanged: with a lease, by that lease; without
        # one, when it left the job finished with that status. A retry without a lease leaves the
        # job queued instead, and a repeat could end the attempt that comes after it: not resent.
        idempotent = lease_id is not None or not retry
        return Call("POST", "/jobs/complete", _reader(_job), body=body, idempotent=idempotent)

    def _renew_call(self, job: Job) -> Call[Job]:
        """How a worker renews the lease it holds on ``job``, for the lease's own length."""
        if job.lease_id is None:
            raise ValueError(f"job {job.job_id!r} was handed out without a lease")
        return self._heartbeat_call(job.job_id, job.lease_id, None)

    def _finish_call(self, job: Job, outcome: Outcome) -> Call[Job]:
        """How a worker completes ``job``, held under its lease, with ``outcome``."""
        return self._complete_call(
            job.job_id, outcome.status, job.lease_id, outcome.result, outcome.error, outcome.retry
        )

    def _get_call(self, job_id: str) -> Call[Job]:
        return Call("GET", job_path(job_id), _reader(_job))

    def _list_call(
        self,
        state: States,
        limit: int,
        after: str | None,
        before: str | None,
        order: Order,
        prefix: str | None,
    ) -> Call[Page]:
        params = [("state", str(s)) for s in _states(state)]
        params.append(("limit", str(limit)))
        # `asc` is the server's default, so it is left out, as the server's own links do.
        optional = {"after": after, "before": before, "order": _order(order), "prefix": prefix}
        params += [(key, value) for key, value in optional.items() if value is not None]
        return self._page_call(tuple(params))

    def _page_call(self, params: tuple[tuple[str, str], ...]) -> Call[Page]:
        return Call("GET", "/jobs", self._read_page, params=params)

    def _stats_call(self) -> Call[Stats]:
        return Call("GET", "/stats", _reader(_stats))

    def _health_call(self) -> Call[Health]:
        return Call("GET", "/health", _reader(_health))

    # -- sending and reading --------------------------------------------------------------------

    def _attempts(self, call: Call[T]) -> Attempts[T]:
        ends = None if self.deadline is None else self._clock() + self.deadline
        return Attempts(self, call, ends, self._clock)

    def _read_page(self, response: httpx.Response) -> Page:
        jobs = _jobs.decode(response.content)
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
        self, client: BaseClient, call: Call[T], ends: float | None, clock: Callable[[], float]
    ) -> None:
        self._client = client
        self._call = call
        self._ends = ends  # the clock reading by which the call must have settled
        self._clock = clock
        self._made = 0
        self._cut: set[str] = set()  # the waits of the last attempt shortened to the deadline
        self._out_of_time = False  # a retry was given up because the deadline came first

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
        if not self._call.idempotent or self._made > client.retries:
            return None
        asked = None
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in RETRY_STATUSES:
                return None
            asked = _retry_after(outcome)
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
            raise self._connection_failed(outcome) from None
        if not outcome.is_success:
            raise _error(outcome)
        try:
            return call.read(outcome)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ServerError(
                f"the server's answer to {call.method} {call.path} could not be read: {exc}",
                status_code=outcome.status_code,
            ) from None

    def _connection_failed(self, exc: httpx.TransportError) -> ConnectionFailed:
        url, deadline = self._client.url, self._client.deadline
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


def _retry_after(response: httpx.Response) -> float | None:
    # Only the delay-seconds form (RFC 9110 §10.2.3), which is what simplequeue sends; an
    # HTTP-date (from some proxy) falls back to the backoff.
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


def _base_url(url: str | None, http_base_url: httpx.URL | None) -> str:
    chosen = url or (str(http_base_url) if http_base_url else None)
    chosen = chosen or os.environ.get(URL_ENV) or DEFAULT_URL
    parsed = httpx.URL(chosen)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL: {chosen!r}")
    return chosen.rstrip("/")


def _encode(build: Callable[[], msgspec.Struct], omit_if_none: tuple[str, ...] = ()) -> bytes:
    # The request models refuse a reserved job id, or a field that goes with the other status,
    # when built; that is the API's 400, found early. So is a value JSON cannot carry.
    try:
        request = build()
        if not omit_if_none:
            return msgspec.json.encode(request)
        fields = msgspec.to_builtins(request)
        for name in omit_if_none:
            if fields.get(name) is None:
                fields.pop(name, None)
        return msgspec.json.encode(fields)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(str(exc)) from None


def _seconds(value: float | None) -> str | None:
    # Whole seconds as integers ("5", not "5.0"); a fraction as it is.
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _status(status: CompletionStatus | str) -> CompletionStatus:
    try:
        return CompletionStatus(status)
    except ValueError:
        raise InvalidRequest(
            f"`status` must be 'succeeded' or 'failed', not {str(status)!r}"
        ) from None


def _order(order: Order) -> str | None:
    if order not in get_args(Order):
        raise InvalidRequest(f"`order` must be 'asc' or 'desc', not {str(order)!r}")
    return None if order == "asc" else order


def _states(state: States) -> list[JobState | str]:
    if state is None:
        return []
    if isinstance(state, str):  # a JobState is a str too
        return [state]
    return list(state)


def _reader(decoder: msgspec.json.Decoder[T]) -> Callable[[httpx.Response], T]:
    return lambda response: decoder.decode(response.content)


def _read_next(response: httpx.Response) -> Job | None:
    return None if response.status_code == 204 else _job.decode(response.content)


def _error(response: httpx.Response) -> RequestError | ServerError:
    status = response.status_code
    try:
        detail = _problem.decode(response.content).detail
    except (msgspec.DecodeError, msgspec.ValidationError):
        # Not one of ours (a proxy's HTML page, say): say what came back.
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == JobConflict.status_code and detail.lower().startswith(LEASE_LOST):
        return LeaseLost(detail)
    if 400 <= status < 500:
        return REQUEST_ERROR_FOR_STATUS.get(status, RequestError)(detail, status_code=status)
    if status == Unavailable.status_code:
        # A busy store's answer; the same request may be sent again (the retries already were).
        seconds = _retry_after(response)
        if seconds is None:
            return Unavailable(detail)
        return Unavailable(detail, retry_after=int(seconds))
    return ServerError(detail, status_code=status)
