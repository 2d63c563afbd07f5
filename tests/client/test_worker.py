"""The worker loop's decisions (`simplequeue.client.worker`), and the loop against a mocked
server (respx, both twins) where the real app cannot misbehave: outages and refusals."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from simplequeue import (
    BatchResult,
    ConnectionFailed,
    Discard,
    InvalidRequest,
    Job,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
    Unavailable,
)
from simplequeue.client.ledger import Ledger
from simplequeue.client.worker import (
    LATE_RENEWAL,
    MAX_OUTAGE_PAUSE,
    MIN_HEARTBEAT,
    RENEWALS_AT_ONCE,
    Outcome,
    WorkPlan,
    error_text,
    outcome_of_error,
    outcome_of_result,
    refused_result,
)
from simplequeue.models import MAX_CLAIM_COUNT, MAX_ERROR_LENGTH, CompletionStatus, JobState
from tests.client.conftest import Twin, job_json
from tests.client.test_requests import nested

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def job(lease_seconds: float | None = 30.0, lease_id: str | None = "L", job_id: str = "j") -> Job:
    ends = None if lease_seconds is None else START + timedelta(seconds=lease_seconds)
    return Job(
        job_id=job_id,
        description=None,
        data=None,
        state=JobState.RUNNING,
        queue="default",
        priority=0,
        run_at=START,
        created_at=START,
        started_at=START,
        finished_at=None,
        attempts=1,
        max_attempts=3,
        lease_expires_at=ends,
        result=None,
        errors=[],
        lease_id=lease_id,
    )


# -- outcomes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, "", [1, "a"], {"nested": {"ok": True}}])
def test_a_json_value_succeeds_as_the_result(value: object) -> None:
    assert outcome_of_result(value) == Outcome(CompletionStatus.SUCCEEDED, result=value)


@pytest.mark.parametrize("value", [object(), {1: 2j}, [threading.Event()], nested()])
def test_a_value_json_cannot_carry_fails_for_good(value: object) -> None:
    outcome = outcome_of_result(value)
    assert (outcome.status, outcome.retry, outcome.result) == (CompletionStatus.FAILED, False, None)
    assert outcome.error is not None
    assert outcome.error.startswith("TypeError: the handler's return value cannot be sent as JSON")


def test_an_exception_fails_with_retry_and_discard_without(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    assert outcome_of_error(job(), KeyError("photo")) == Outcome(
        CompletionStatus.FAILED, error="KeyError: 'photo'", retry=True
    )
    assert outcome_of_error(job(), Discard("not a photo")) == Outcome(
        CompletionStatus.FAILED, error="Discard: not a photo", retry=False
    )
    assert outcome_of_error(job(), Discard()).error == "Discard"


def test_the_log_of_a_failure_shows_the_traceback_inert(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    try:
        raise ValueError("bad \x1b[2J data \u202e")
    except ValueError as exc:
        outcome_of_error(job(job_id="id\x1b]0;x\x07"), exc)
    (record,) = caplog.records
    text = record.getMessage()
    assert "Traceback (most recent call last)" in text
    assert "ValueError: bad \\x1b[2J data \\u202e" in text
    assert "'id\\x1b]0;x\\x07' (attempt 1 of 3) failed" in text
    assert "\x1b" not in text
    assert "\u202e" not in text


def test_an_error_text_is_cut_to_what_the_server_takes() -> None:
    text = error_text(RuntimeError("x" * (2 * MAX_ERROR_LENGTH)))
    assert len(text) == MAX_ERROR_LENGTH
    assert text.startswith("RuntimeError: xxx")
    assert text.endswith(" [...]")
    short = "RuntimeError: " + "x" * (MAX_ERROR_LENGTH - len("RuntimeError: "))
    assert error_text(RuntimeError(short[len("RuntimeError: ") :])) == short


def test_a_refused_result_fails_the_job_and_anything_else_is_left_to_the_lease() -> None:
    succeeded = Outcome(CompletionStatus.SUCCEEDED, result="r")
    instead = refused_result(succeeded, InvalidRequest("`result` is nested too deeply"))
    assert instead is not None
    assert (instead.status, instead.retry) == (CompletionStatus.FAILED, False)
    assert instead.error == (
        "ValueError: the server refused the handler's result: `result` is nested too deeply"
    )
    failed = Outcome(CompletionStatus.FAILED, error="e", retry=True)
    assert refused_result(failed, InvalidRequest("no")) is None
    assert refused_result(succeeded, Unavailable("busy")) is None


# -- the plan -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lease", "leased_for", "every"),
    [
        (None, 30.0, 10.0),  # the server's default, read from the job
        (None, 300.0, 100.0),
        (9, 30.0, 3.0),  # the lease asked for
        (1, 1.0, MIN_HEARTBEAT),
        (None, None, MIN_HEARTBEAT),  # no end given: beat often
    ],
)
def test_heartbeats_come_at_a_third_of_the_lease(
    lease: int | None, leased_for: float | None, every: float
) -> None:
    plan = WorkPlan(concurrency=1, lease=lease, wait=5)
    assert plan.heartbeat_every(job(leased_for)) == every


def test_a_job_without_a_lease_gets_no_heartbeat() -> None:
    assert WorkPlan(concurrency=1, lease=None, wait=5).heartbeat_every(job(lease_id=None)) is None


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"lease": 0}, "lease"),
        ({"lease": 43_201}, "lease"),
        ({"wait": -1}, "wait"),
        ({"wait": 61}, "wait"),
    ],
)
def test_a_plan_out_of_range_is_refused(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        WorkPlan(**{"concurrency": 1, "lease": None, "wait": 5, **options})


def test_an_outage_is_waited_out_backing_off_and_a_refusal_is_raised() -> None:
    plan = WorkPlan(concurrency=1, lease=None, wait=5)
    pauses = [plan.pause_after(ConnectionFailed("down"), failures) for failures in range(1, 12)]
    assert 0.25 <= pauses[0] <= 0.5
    assert all(pause <= MAX_OUTAGE_PAUSE for pause in pauses)
    assert pauses[-1] >= MAX_OUTAGE_PAUSE / 2
    with pytest.raises(InvalidRequest):
        plan.pause_after(InvalidRequest("`lease` must be at most 60"), 1)
    assert plan.idle_pause() == 0.0
    assert WorkPlan(concurrency=1, lease=None, wait=0).idle_pause() > 0


# -- the loop, against a mocked server ------------------------------------------------------------


def stopping(sdk: Twin, seen: list[Job], result: object = "done") -> tuple[Any, Any]:
    """A handler for ``sdk``'s twin that records its job and stops the worker, and the stop."""
    if sdk.kind == "sync":
        stop: Any = threading.Event()

        def handler(job: Job) -> object:
            seen.append(job)
            stop.set()
            return result

        return handler, stop

    stop = asyncio.Event()

    async def ahandler(job: Job) -> object:
        seen.append(job)
        stop.set()
        return result

    return ahandler, stop


def test_the_loop_waits_out_an_outage_then_works(
    api: respx.MockRouter, make_sdk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    sdk: Twin = make_sdk(retries=0)
    leased = job_json("j", "running", attempts=1, leaseId="L")
    polls = api.get("/jobs/next").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=[leased])]
    )
    complete = api.post("/jobs/complete").respond(
        200, json=[{"status": 200, "job": job_json("j", "succeeded")}]
    )
    seen: list[Job] = []
    handler, stop = stopping(sdk, seen)

    # No prefetch: while its one job runs the worker asks for no other, so the calls are known.
    sdk.work(handler, stop=stop, wait=2, lease=30, prefetch=0)

    assert [job.job_id for job in seen] == ["j"]
    assert polls.call_count == 2
    assert {call.request.url.query for call in polls.calls} == {b"count=1&wait=2&lease=30"}
    assert json.loads(complete.calls.last.request.content) == [
        {"jobId": "j", "status": "succeeded", "leaseId": "L", "result": "done"}
    ]
    assert "cannot take a job" in caplog.text


def test_the_loop_raises_a_refusal_of_next(api: respx.MockRouter, sdk: Twin) -> None:
    api.get("/jobs/next").respond(
        400, json={"status": 400, "title": "Bad Request", "detail": "`lease` is too long"}
    )
    seen: list[Job] = []
    handler, stop = stopping(sdk, seen)
    with pytest.raises(InvalidRequest, match="`lease` is too long"):
        sdk.work(handler, stop=stop, concurrency=2)
    assert seen == []


@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        # One item's refusal in the batch's answer, or the whole request's.
        (200, [{"status": 409, "detail": "lease lost: taken back"}], LeaseLost),
        (200, [{"status": 404, "detail": "no job 'j'"}], JobNotFound),
        (503, {"status": 503, "title": "Unavailable", "detail": "busy"}, None),
    ],
)
def test_a_completion_that_fails_leaves_the_job_to_its_lease(
    api: respx.MockRouter,
    make_sdk: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
    answer: object,
    error: type[Exception] | None,
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    sdk: Twin = make_sdk(retries=0)
    api.get("/jobs/next").respond(200, json=[job_json("j", "running", attempts=1, leaseId="L")])
    complete = api.post("/jobs/complete").respond(status, json=answer)
    seen: list[Job] = []
    handler, stop = stopping(sdk, seen)

    sdk.work(handler, stop=stop, prefetch=0)  # returns: the loop goes on, whatever the answer

    assert complete.call_count == 1
    expected = "no longer this worker's" if error else "comes back when its lease ends"
    assert expected in caplog.text


# -- the ledger: what the loop holds, asks for and renews ------------------------------------------


def ledger(concurrency: int = 2, prefetch: int = 3, wait: float = 5) -> Ledger:
    return Ledger(WorkPlan(concurrency=concurrency, lease=None, wait=wait, prefetch=prefetch))


def test_the_fetcher_long_polls_for_idle_slots_and_asks_for_the_prefetch_without_waiting() -> None:
    book = ledger(concurrency=2, prefetch=3)
    assert book.ask() == (5, 5)  # idle slots: a long-poll, for all the room there is
    assert book.took([job(job_id="a")], 5, now=0.0) == 0.0
    assert book.ask() == (4, 5)  # one slot is still idle: still a long-poll
    assert book.took([job(job_id="b")], 4, now=0.0) == 0.0
    assert book.ask() == (3, 0.0)  # every slot has a job: no wait, so a stop never waits on it
    assert book.took([], 3, now=0.0) == 0.0
    assert not book.may_ask()  # nothing came: no asking again in a loop...
    held = book.start()
    assert held is not None
    book.finished(held, Outcome(CompletionStatus.SUCCEEDED))
    assert book.may_ask()  # ...until a slot frees up
    assert book.ask() == (4, 5)
    assert len(book.held) == 2  # the finished job too: held (and renewed) until it is sent


@pytest.mark.parametrize(("wait", "paused"), [(5, False), (0, True)])
def test_an_empty_answer_to_an_idle_worker_pauses_only_without_a_long_poll(
    wait: float, paused: bool
) -> None:
    book = ledger(wait=wait)
    count, _ = book.ask()
    assert (book.took([], count, now=0.0) > 0) is paused
    assert book.may_ask()


def test_a_count_never_passes_what_next_may_ask_for() -> None:
    assert ledger(concurrency=50, prefetch=500).wanted() == MAX_CLAIM_COUNT


def test_a_lost_lease_drops_the_job_wherever_it_waits() -> None:
    book = ledger(concurrency=1, prefetch=2)
    book.took([job(job_id="run"), job(job_id="wait"), job(job_id="sent")], 3, now=0.0)
    running = book.start()
    assert running is not None
    waiting = book.ready[0]
    book.lost(waiting, LeaseLost("lease lost"))
    assert [h.job.job_id for h in book.ready] == ["sent"]  # never started
    book.lost(running, LeaseLost("lease lost"))
    book.finished(running, Outcome(CompletionStatus.SUCCEEDED))
    assert book.outbox == []  # its outcome is not sent
    assert book.wanted() == 2


def test_a_job_being_completed_is_not_renewed_and_its_lost_lease_is_no_news(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    book = ledger(concurrency=1, prefetch=0)
    book.took([job(lease_seconds=30)], 1, now=0.0)  # renewed every 10 s
    assert book.renewal_in(now=4.0) == 6.0
    held = book.start()
    assert held is not None
    book.finished(held, Outcome(CompletionStatus.SUCCEEDED))
    assert [h for h, _ in book.flush()] == [held]
    assert book.due(now=60.0) == []
    book.lost(held, LeaseLost("lease lost"))  # its own completion ended the lease
    assert caplog.text == ""
    book.settle(held, Outcome(CompletionStatus.SUCCEEDED), BatchResult(200))
    assert book.held == set()


def test_heartbeats_come_due_in_turn() -> None:
    book = ledger(concurrency=1, prefetch=1)
    book.took([job(lease_seconds=30, job_id="a")], 1, now=0.0)
    book.took([job(lease_seconds=30, job_id="b")], 1, now=4.0)
    assert book.due(now=9.0) == []
    assert [h.job.job_id for h in book.due(now=10.0)] == ["a"]
    assert book.renewal_in(now=10.0) == 4.0  # b's turn; a's next is at 20
    assert [h.job.job_id for h in book.due(now=14.0)] == ["b"]


def test_a_refused_result_is_sent_again_as_a_failure_and_a_lost_lease_is_dropped() -> None:
    book = ledger(concurrency=2, prefetch=0)
    book.took([job(job_id="big"), job(job_id="late")], 2, now=0.0)
    big, late = book.start(), book.start()
    assert big is not None
    assert late is not None
    book.finished(big, Outcome(CompletionStatus.SUCCEEDED, result="x" * 10))
    book.finished(late, Outcome(CompletionStatus.SUCCEEDED))
    batch = book.flush()
    book.settle(*batch[0], BatchResult(413, error=PayloadTooLarge("over 4 KiB")))
    book.settle(*batch[1], BatchResult(409, error=LeaseLost("lease lost")))
    ((again, instead),) = book.outbox
    assert again is big
    assert (instead.status, instead.retry) == (CompletionStatus.FAILED, False)
    assert book.held == {big}


def test_a_heartbeat_in_flight_is_not_sent_twice_and_only_so_many_are_in_flight() -> None:
    book = ledger(concurrency=1, prefetch=RENEWALS_AT_ONCE)
    jobs = [job(lease_seconds=30, job_id=f"j{n}") for n in range(RENEWALS_AT_ONCE + 1)]
    book.took(jobs, len(jobs), now=0.0)  # each due at 10; each lease ends at 30
    first = book.due(now=10.0)
    assert len(first) == RENEWALS_AT_ONCE
    assert book.renewal_in(now=10.0) is None  # one to end is waited for, not a time
    assert book.due(now=29.0) == []  # those in flight are not sent again
    slow, *others = first
    for held in others:
        book.renewal_ended(held, sent_at=10.0)
    (last,) = book.due(now=11.0)  # the one left waiting, now that there is room
    assert last.job.job_id not in {h.job.job_id for h in first}
    book.renewal_ended(slow, sent_at=None)  # given up: its lease still ends at 30
    assert book.due(now=11.0) == []
    assert book.due(now=20.0)[0] is slow  # due again a period after it was sent, most overdue


def test_a_heartbeat_may_take_the_time_left_on_its_lease() -> None:
    book = ledger(concurrency=1, prefetch=0)
    book.took([job(lease_seconds=30)], 1, now=100.0)  # the lease ends at 130
    (held,) = book.due(now=110.0)
    assert book.renewal_time(held, now=110.0) == 20.0
    assert book.renewal_time(held, now=129.9) == LATE_RENEWAL  # the server may yet take it
    book.renewal_ended(held, sent_at=110.0)  # renewed: the lease ends 30 s after it was sent
    assert book.renewal_time(held, now=120.0) == 20.0
    book.took([job(lease_seconds=None, job_id="no-length")], 1, now=0.0)
    (unknown,) = [h for h in book.held if h.job.job_id == "no-length"]
    assert book.renewal_time(unknown, now=0.0) is None  # only the client's own deadline
