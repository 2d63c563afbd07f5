"""How long the SDK waits: the overall deadline, and a 503's ``Retry-After`` (both twins, respx).

The clients' clock is the twin's fake one: it moves only when the SDK sleeps or when a mocked
answer says how long it took, so nothing here waits or depends on timing.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import respx

from simplequeue import Client, ConnectionFailed, ServerError, Unavailable
from simplequeue.client.base import CLAIM_WAIT, DEFAULT_TIMEOUT, MAX_BACKOFF
from tests.client.conftest import URL, Twin, job_json

STATS = {"submitted": 0, "running": 0, "succeeded": 0, "failed": 0, "total": 0}


def busy(retry_after: str | None = "2") -> httpx.Response:
    """A store that stayed locked: what the server answers after giving up on it."""
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    detail = "the store is busy; try again shortly"
    return httpx.Response(
        503, json={"status": 503, "title": "t", "detail": detail}, headers=headers
    )


# -- Retry-After ----------------------------------------------------------------------------------


def test_a_503_is_retried_after_the_time_it_asks_for(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit").mock(
        side_effect=[busy("2"), httpx.Response(201, json=job_json("j"))]
    )
    assert sdk.submit("j").job_id == "j"
    assert route.call_count == 2
    assert sdk.delays == [2.0]


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    api.get("/stats").mock(side_effect=[busy("0"), httpx.Response(200, json=STATS)])
    sdk = make_sdk(backoff=1.0)
    sdk.stats()
    assert len(sdk.delays) == 1
    assert 0.5 <= sdk.delays[0] <= 1.0


def test_a_long_retry_after_is_capped_at_the_longest_backoff(
    api: respx.MockRouter, sdk: Twin
) -> None:
    api.get("/stats").mock(side_effect=[busy("3600"), httpx.Response(200, json=STATS)])
    sdk.stats()
    assert sdk.delays == [MAX_BACKOFF]


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "soon", "-1", "1.5", "1e3"])
def test_a_retry_after_that_is_not_whole_seconds_falls_back_to_the_backoff(
    api: respx.MockRouter, sdk: Twin, value: str
) -> None:
    api.get("/stats").mock(side_effect=[busy(value), httpx.Response(200, json=STATS)])
    sdk.stats()
    assert len(sdk.delays) == 1
    assert 0.05 <= sdk.delays[0] <= 0.1


def test_a_retry_after_past_the_deadline_ends_the_call_with_the_servers_answer(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    route = api.get("/stats").mock(return_value=busy("4"))
    sdk = make_sdk(deadline=3.0)
    with pytest.raises(ServerError) as raised:
        sdk.stats()
    assert raised.value.status_code == 503
    assert raised.value.detail == "the store is busy; try again shortly"
    assert route.call_count == 1
    assert sdk.delays == []


def test_next_is_retried_after_the_time_a_503_asks_for(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next").mock(side_effect=[busy("1"), httpx.Response(204)])
    assert sdk.next() is None
    assert route.call_count == 2
    assert sdk.delays == [1.0]


# -- the deadline ---------------------------------------------------------------------------------


def hung(sdk: Twin, seen: list[tuple[float, httpx.Timeout]]) -> Callable[[httpx.Request], None]:
    """A server that accepts every request and never answers: each attempt uses up its whole
    read timeout (on the fake clock) and times out."""

    def attempt(request: httpx.Request) -> None:
        timeout = httpx.Timeout(**request.extensions["timeout"])
        seen.append((sdk.now, timeout))
        assert timeout.read is not None
        sdk.pass_time(timeout.read)
        raise httpx.ReadTimeout("timed out", request=request)

    return attempt


def test_every_wait_is_cut_to_the_time_the_call_has_left(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    sdk = make_sdk(deadline=12.0, timeout=5.0, retries=10)
    seen: list[tuple[float, httpx.Timeout]] = []
    api.get("/stats").mock(side_effect=hung(sdk, seen))

    with pytest.raises(ConnectionFailed) as raised:
        sdk.stats()

    assert raised.value.detail == f"the server at {URL} did not answer within 12 s"
    assert len(seen) == 3  # 5 s, 5 s, then what is left (with the backoff between them)
    for started, timeout in seen:
        left = 12.0 - started
        assert timeout.connect is not None
        assert timeout.read is not None
        assert 0 < timeout.connect <= min(5.0, left)
        assert 0 < timeout.read <= min(5.0, left)
    assert seen[-1][1].read != 5.0  # the last one was cut short
    assert sdk.now == pytest.approx(12.0)


def test_next_waits_for_its_claim_past_a_short_deadline(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    # Once sent, a claim's answer is awaited as long as the server may take to make it: a
    # client that left sooner could strand the job it claimed.
    sdk = make_sdk(deadline=2.0, timeout=1.0)
    seen: list[tuple[float, httpx.Timeout]] = []
    api.get("/jobs/next").mock(side_effect=hung(sdk, seen))
    with pytest.raises(ConnectionFailed, match="did not answer within 2 s"):
        sdk.next()
    assert [timeout.read for _, timeout in seen] == [CLAIM_WAIT]  # no retry: past the deadline


def test_a_long_poll_is_awaited_for_its_wait_and_the_claim_on_top(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    sdk = make_sdk(deadline=60.0, timeout=5.0, retries=1)
    seen: list[tuple[float, httpx.Timeout]] = []
    api.get("/jobs/next").mock(side_effect=hung(sdk, seen))
    with pytest.raises(ConnectionFailed):
        sdk.next(wait=30)
    # Both attempts wait for the whole long-poll, and then as long as a claim may take.
    assert [timeout.read for _, timeout in seen] == [30 + CLAIM_WAIT] * 2
    assert all(timeout.connect == 5.0 for _, timeout in seen)


def test_retries_that_run_out_before_the_deadline_say_what_failed(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    route = api.get("/stats").mock(side_effect=httpx.ConnectError("connection refused"))
    sdk = make_sdk(deadline=60.0, retries=2)
    with pytest.raises(ConnectionFailed) as raised:
        sdk.stats()
    assert raised.value.detail == f"cannot reach the server at {URL}: connection refused"
    assert route.call_count == 3


def test_without_a_deadline_the_timeouts_are_the_configured_ones(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.get("/stats").respond(200, json=STATS)
    sdk.stats()
    sent = httpx.Timeout(**route.calls.last.request.extensions["timeout"])
    assert sent == DEFAULT_TIMEOUT


@pytest.mark.parametrize("deadline", [0, -1.0])
def test_a_deadline_must_be_positive(deadline: float) -> None:
    with pytest.raises(ValueError, match="deadline"):
        Client(URL, deadline=deadline)


def test_a_503_that_stays_is_unavailable_with_the_time_it_asked_for(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    api.get("/stats").mock(return_value=busy("3"))
    sdk = make_sdk(retries=1)
    with pytest.raises(Unavailable) as raised:
        sdk.stats()
    assert isinstance(raised.value, ServerError)
    assert (raised.value.status_code, raised.value.retry_after) == (503, 3)
    assert raised.value.detail == "the store is busy; try again shortly"
    assert sdk.delays == [3.0]


def test_a_deadline_that_runs_out_after_a_503_is_unavailable_not_unreachable(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    # A store another process keeps locked: the server gives up on it and answers 503 after a
    # while; the retry is then cut short by the deadline. The server answered: it is busy.
    sdk = make_sdk(deadline=8.0, retries=3)
    seen: list[tuple[float, httpx.Timeout]] = []
    waits = hung(sdk, seen)

    def attempt(request: httpx.Request) -> httpx.Response | None:
        if not seen:
            seen.append((sdk.now, httpx.Timeout(**request.extensions["timeout"])))
            sdk.pass_time(5.0)
            return busy("1")
        return waits(request)

    route = api.post("/jobs/submit").mock(side_effect=attempt)
    with pytest.raises(Unavailable) as raised:
        sdk.submit("j")
    assert (raised.value.status_code, raised.value.retry_after) == (503, 1)
    assert route.call_count == 2
    assert sdk.now == pytest.approx(8.0)


def test_a_server_gone_after_a_503_is_still_unreachable(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    sdk = make_sdk(deadline=8.0, retries=1)
    api.get("/stats").mock(side_effect=[busy("1"), httpx.ConnectError("connection refused")])
    with pytest.raises(ConnectionFailed, match="cannot reach the server"):
        sdk.stats()
