"""The SDK against the real app in-process: Litestar's test clients are httpx clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient, TestClient

from simplequeue import (
    AsyncClient,
    Client,
    CompletionStatus,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    JobState,
    LeaseLost,
    PayloadTooLarge,
)
from simplequeue.server import Settings, create_app
from tests.servers import APP_URL


@pytest.fixture
def client() -> Iterator[Client]:
    with TestClient(
        create_app(Settings(db=":memory:", max_body_size=4096)), base_url=APP_URL
    ) as http:
        yield Client(http=http)


@pytest.fixture
async def aclient() -> AsyncIterator[AsyncClient]:
    async with AsyncTestClient(create_app(Settings(db=":memory:")), base_url=APP_URL) as http:
        yield AsyncClient(http=http)


def test_a_job_goes_from_submit_through_next_to_complete(client: Client) -> None:
    submitted = client.submit("invoice/42", "send the invoice", {"amount": 12})
    assert (submitted.state, submitted.attempts, submitted.started_at) == (
        JobState.SUBMITTED,
        0,
        None,
    )

    taken = client.next()
    assert taken is not None
    assert (taken.job_id, taken.state, taken.attempts) == ("invoice/42", JobState.RUNNING, 1)
    assert taken.started_at is not None
    assert client.next() is None

    done = client.complete("invoice/42", CompletionStatus.SUCCEEDED)
    assert done.state is JobState.SUCCEEDED
    assert done.finished_at is not None
    assert client.get("invoice/42") == done
    stats = client.stats()
    assert (stats.succeeded, stats.submitted_ever, stats.completed_ever) == (1, 1, 1)
    history = client.stats_history(60)
    assert history.interval == 1
    assert len(history.submitted) == len(history.completed) <= 60
    with pytest.raises(InvalidRequest, match="`seconds`"):
        client.stats_history(0)


def test_submitting_the_same_job_again_returns_it_unchanged(client: Client) -> None:
    first = client.submit("same", "d", {"k": [1, 2]})
    assert client.submit("same", "d", {"k": [1, 2]}) == first
    assert client.stats().total == 1


def test_submitting_the_same_id_with_other_content_is_a_conflict(client: Client) -> None:
    client.submit("same", "d")
    with pytest.raises(JobConflict, match="'same'") as raised:
        client.submit("same", "other")
    assert raised.value.status_code == 409
    assert client.get("same").description == "d"


def test_completing_twice_the_same_way_is_fine_and_the_other_way_a_conflict(
    client: Client,
) -> None:
    client.submit("j")
    with pytest.raises(JobConflict):
        client.complete("j", "succeeded")  # never handed out
    client.next()
    first = client.complete("j", "failed")
    assert client.complete("j", "failed") == first
    with pytest.raises(JobConflict):
        client.complete("j", "succeeded")


@pytest.mark.parametrize("job_id", ["a/b", "a//b", "50%", "q?x#y", "sp ace", "été", "next-ish"])
def test_any_id_round_trips_through_the_path(client: Client, job_id: str) -> None:
    client.submit(job_id)
    assert client.get(job_id).job_id == job_id


def test_unknown_jobs_are_not_found(client: Client) -> None:
    with pytest.raises(JobNotFound, match="nope"):
        client.get("nope")
    with pytest.raises(JobNotFound):
        client.complete("nope", "succeeded")


@pytest.mark.parametrize(
    ("job_id", "data", "names"),
    [
        ("", None, "jobId"),
        ("x" * 257, None, "jobId"),
        ("tab\there", None, "jobId"),
        ("submit", None, "reserved"),
        ("ok", [1, 2], "data"),
    ],
)
def test_invalid_submissions_are_refused(
    client: Client, job_id: str, data: object, names: str
) -> None:
    with pytest.raises(InvalidRequest, match=names):
        client.submit(job_id, data=data)  # type: ignore[arg-type]
    assert client.stats().total == 0


def test_a_body_over_the_limit_is_too_large(client: Client) -> None:
    with pytest.raises(PayloadTooLarge):
        client.submit("big", data={"blob": "x" * 5000})


def test_list_and_iter_filter_and_page(client: Client) -> None:
    for i in range(7):
        client.submit(f"j{i}")
    client.next()
    client.next()
    client.complete("j0", "succeeded")

    assert [j.job_id for j in client.list_jobs(limit=3)] == ["j0", "j1", "j2"]
    assert [j.job_id for j in client.list_jobs(after="j4")] == ["j5", "j6"]
    assert [j.job_id for j in client.list_jobs("running")] == ["j1"]
    finished_or_running = client.list_jobs([JobState.SUCCEEDED, JobState.RUNNING])
    assert [j.job_id for j in finished_or_running] == ["j0", "j1"]
    assert [j.job_id for j in client.iter_jobs(page_size=2)] == [f"j{i}" for i in range(7)]
    waiting = client.iter_jobs(state="submitted", page_size=2, after="j2")
    assert [j.job_id for j in waiting] == ["j3", "j4", "j5", "j6"]
    with pytest.raises(InvalidRequest, match="state"):
        client.list_jobs("sleeping")
    with pytest.raises(InvalidRequest, match="limit"):
        client.list_jobs(limit=0)


def test_newest_first_paging_returns_every_job_once_in_reverse_order(client: Client) -> None:
    submitted = [f"j{i:02}" for i in range(23)]
    for job_id in submitted:
        client.submit(job_id)
    client.next()  # states do not change the order

    newest_first = [j.job_id for j in client.iter_jobs(page_size=5, order="desc")]

    assert newest_first == submitted[::-1]
    assert [j.job_id for j in client.list_jobs(limit=3, order="desc")] == ["j22", "j21", "j20"]
    assert [j.job_id for j in client.list_jobs(before="j03")] == ["j00", "j01", "j02"]
    before = client.iter_jobs(page_size=2, before="j05", order="desc")
    assert [j.job_id for j in before] == ["j04", "j03", "j02", "j01", "j00"]
    between = client.iter_jobs(page_size=2, after="j10", before="j16", order="desc")
    assert [j.job_id for j in between] == ["j15", "j14", "j13", "j12", "j11"]
    with pytest.raises(InvalidRequest, match="before"):
        client.list_jobs(before="missing")


def test_prefix_filters_in_either_order(client: Client) -> None:
    ids = ["inv-1", "other", "inv-2", "inv_3", "in", "inv-3", "50%_a", "50%b", "a b/c", "a+b"]
    for job_id in ids:
        client.submit(job_id)
    client.next()  # inv-1

    assert [j.job_id for j in client.list_jobs(prefix="inv-")] == ["inv-1", "inv-2", "inv-3"]
    newest = client.iter_jobs(page_size=1, order="desc", prefix="inv-")
    assert [j.job_id for j in newest] == ["inv-3", "inv-2", "inv-1"]
    assert [j.job_id for j in client.list_jobs("submitted", prefix="inv")] == [
        "inv-2",
        "inv_3",
        "inv-3",
    ]
    # `%` and `_` are ordinary characters, not LIKE wildcards; a space is not a `+`.
    assert [j.job_id for j in client.list_jobs(prefix="50%_")] == ["50%_a"]
    assert [j.job_id for j in client.list_jobs(prefix="a b/")] == ["a b/c"]
    assert [j.job_id for j in client.list_jobs(prefix="a+")] == ["a+b"]
    assert client.list_jobs(prefix="nothing") == []
    with pytest.raises(InvalidRequest, match="prefix"):
        client.list_jobs(prefix="")


def test_health(client: Client) -> None:
    assert client.health().status == "ok"


@pytest.mark.anyio
async def test_the_async_client_does_the_same(aclient: AsyncClient) -> None:
    await aclient.submit("a/1", "first")
    await aclient.submit("a/2", data={"n": 2})
    taken = await aclient.next()
    assert taken is not None
    assert taken.job_id == "a/1"
    assert (await aclient.complete("a/1", "succeeded")).state is JobState.SUCCEEDED
    assert (await aclient.get("a/2")).data == {"n": 2}
    assert [j.job_id async for j in aclient.iter_jobs(page_size=1)] == ["a/1", "a/2"]
    assert [j.job_id for j in await aclient.list_jobs("submitted")] == ["a/2"]
    newest = aclient.iter_jobs(page_size=1, order="desc", prefix="a/")
    assert [j.job_id async for j in newest] == ["a/2", "a/1"]
    assert [j.job_id for j in await aclient.list_jobs(before="a/2", prefix="a")] == ["a/1"]
    assert (await aclient.stats()).total == 2
    with pytest.raises(JobNotFound):
        await aclient.get("missing")
    with pytest.raises(JobConflict):
        await aclient.submit("a/2", data={"n": 3})


@pytest.mark.parametrize("job_id", [".", "..", "a/..", "%2E"])
def test_ids_made_of_dots_are_fetched_as_themselves(client: Client, job_id: str) -> None:
    client.submit(job_id, description=f"the job {job_id!r}")
    assert client.get(job_id).description == f"the job {job_id!r}"


def test_a_lease_is_renewed_fences_the_completion_and_then_is_lost(client: Client) -> None:
    client.submit("leased", max_attempts=5)
    taken = client.next(lease=60)
    assert taken is not None
    assert (taken.max_attempts, taken.lease_id is not None) == (5, True)
    assert taken.lease_expires_at is not None
    assert client.get("leased").lease_id is None  # only the worker's answers carry it

    renewed = client.heartbeat("leased", str(taken.lease_id), lease_seconds=600)
    assert renewed.lease_id == taken.lease_id
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > taken.lease_expires_at

    lease = str(taken.lease_id)
    done = client.complete("leased", "succeeded", lease_id=lease, result={"pages": [1, 2]})
    assert (done.state, done.result, done.lease_id) == (JobState.SUCCEEDED, {"pages": [1, 2]}, None)
    assert client.complete("leased", "succeeded", lease_id=lease, result={"pages": [1, 2]}) == done
    with pytest.raises(LeaseLost, match="lease lost"):
        client.heartbeat("leased", lease)
    with pytest.raises(LeaseLost):
        client.complete("leased", "succeeded", lease_id="not-the-lease")


def test_a_retried_failure_goes_back_to_the_queue_with_its_error(client: Client) -> None:
    client.submit("flaky", max_attempts=2)
    first = client.next()
    assert first is not None
    again = client.complete(
        "flaky", "failed", lease_id=first.lease_id, error="timed out", retry=True
    )
    assert again.state is JobState.SUBMITTED
    assert [(e.attempt, e.error) for e in again.errors] == [(1, "timed out")]


def test_a_long_poll_on_an_empty_queue_ends_with_none(client: Client) -> None:
    assert client.next(wait=0.1) is None


def test_an_invalid_lease_is_refused(client: Client) -> None:
    with pytest.raises(InvalidRequest, match="lease"):
        client.next(lease=0)
