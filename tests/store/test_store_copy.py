"""`sq copy`'s part of the store contract, between every pair of backends: `export` and
`export_tombstones` read a store out in chunks, `load` adds what they read to another, and
`simplequeue.store.copy.copy` does both for a whole queue. A copy holds every job as it was
(state, attempts, errors, result, lease, due time, queue, priority, the maxAttempts its submit
sent, its place in the order), every tombstone and the counters; and from then on both stores
answer every step alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from simplequeue.models import JobState
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import NewJob, Store
from simplequeue.store import copy as store_copy
from simplequeue.store.base import (
    NO_TOTALS,
    Finish,
    Loaded,
    Outcome,
    Record,
    Tombstone,
    Totals,
    counted,
)
from simplequeue.store.copy import Copied, TargetNotEmpty, copy
from tests.store.conftest import BACKENDS, LEASE, all_jobs, at, new

pytestmark = pytest.mark.anyio

SUBMITTED, RUNNING, SUCCEEDED, FAILED = JobState
SUCCEED = Outcome(*TRANSITIONS[Event.SUCCEED], result=b'{"ok": true, "n": 1.50}')
FAIL = Outcome(*TRANSITIONS[Event.FAIL], error="boom\x00\nwith a second line")
EXPIRE = Outcome(*TRANSITIONS[Event.EXPIRE], error="lease expired")
CANCEL, RETRY = ACTIONS[Action.CANCEL], ACTIONS[Action.RETRY]
EXACT_DATA = b'{"n": 1.50, "big": 12345678901234567890, "nul": "\\u0000", "e": "\xc3\xa9"}'


@pytest.fixture(params=list(BACKENDS))
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A second, empty store of every backend, beside the `store` fixture's."""
    (tmp_path / "target").mkdir()
    opened = BACKENDS[request.param](tmp_path / "target")
    await opened.open()
    yield opened
    await opened.close()


async def taken(store: Store, job: NewJob, now: datetime, lease_seconds: int = LEASE) -> str:
    """Submit ``job`` in a queue of its own and claim it: its lease id."""
    await store.submit(job)
    (claimed,) = await store.claim(now, lease_seconds=lease_seconds, queues=(job.queue,))
    assert claimed.job_id == job.job_id
    return claimed.lease_id


async def fill(store: Store) -> dict[str, str]:
    """Jobs in every state and every way to get there, and two tombstones. Returns the leases
    of the jobs that hold one: a running job's, and the one that finished a job."""
    for job_id, outcome in (("pruned-ok", SUCCEED), ("pruned-failed", FAIL)):
        await taken(store, new(job_id, -20, description=job_id, queue="p"), at(-20))
        await store.finish(job_id, None, outcome, at(-19))
    assert await store.prune(SUCCEEDED, at(-18), 10) == 1
    assert await store.prune(FAILED, at(-18), 10) == 1
    await store.submit(NewJob("exact", "first\tjob é", EXACT_DATA, at(0)))
    await store.submit(new("urgent", 1, queue="mail", priority=5, max_attempts=7))
    await store.submit(new("scheduled", 2, run_at=1000, priority=-3))
    leases = {"running": await taken(store, new("running", 3, queue="r"), at(10))}
    await taken(store, new("retried", 4, queue="t"), at(11))
    retry = Outcome(*TRANSITIONS[Event.RETRY], error="try later", run_at=at(500))
    assert (await store.finish("retried", None, retry, at(12))).finish is Finish.APPLIED
    leases["done"] = await taken(store, new("done", 5, queue="d", data={"a": [1]}), at(13))
    await store.finish("done", leases["done"], SUCCEED, at(14))
    await taken(store, new("failed", 6, queue="f"), at(15))
    await store.finish("failed", None, FAIL, at(16))
    await store.submit(new("cancelled", 7, description="stop"))
    await store.move(["cancelled"], CANCEL, at(17))
    # Failed with its only attempt, then sent back by an operator: maxAttempts rises to 2, and
    # the counters hold a completion that no job shows any more.
    await taken(store, new("reopened", 8, queue="o", max_attempts=1), at(18))
    await store.finish("reopened", None, FAIL, at(19))
    await store.move(["reopened"], RETRY, at(20))
    await store.submit(new("last", 31, data={"x": None}))
    return leases


async def everything(store: Store, chunk: int = 1000) -> tuple[list[Record], list[Tombstone]]:
    records: list[Record] = []
    after: int | None = 0
    while after is not None:
        page, after = await store.export(after, chunk)
        records += page
    tombstones: list[Tombstone] = []
    while True:
        buried = await store.export_tombstones(tombstones[-1].job_id if tombstones else None, chunk)
        tombstones += buried
        if len(buried) < chunk:
            return records, tombstones


def clock(seconds: float) -> Callable[[], datetime]:
    """The copy's clock, fixed at ``at(seconds)`` (the machine's is far ahead of the tests')."""
    return lambda: at(seconds)


def comparable(answer: Any) -> Any:
    """A store's answer without the lease ids a claim makes anew in each store."""
    plain = msgspec.json.decode(msgspec.json.encode(answer))
    for job in plain if isinstance(plain, list) else [plain]:
        if isinstance(job, dict):
            job.pop("leaseId", None)
    return plain


async def steps(store: Store, leases: dict[str, str]) -> list[Any]:
    """The same steps, in either store after a copy: what each answered."""
    beat = await store.heartbeat("running", leases["running"], at(40), None)
    repeat = await store.finish("done", leases["done"], SUCCEED, at(41))
    resubmits = [
        await store.submit(new("pruned-ok", 42, description="pruned-ok", queue="p")),
        await store.submit(new("exact", 42)),
        await store.submit(new("new", 42)),
    ]
    first = await store.claim(at(50), lease_seconds=LEASE, limit=100)
    expired = await store.expire(at(100), EXPIRE)  # the renewed lease ends at 100
    later = await store.claim(at(1000), lease_seconds=LEASE, limit=100)
    return [
        (beat.finish, comparable(beat.job)),
        (repeat.finish, comparable(repeat.job)),
        [(comparable(job), created) for job, created in resubmits],
        comparable(first),
        expired,
        comparable(later),
        comparable(await store.stats(at(1000))),
        comparable(await all_jobs(store)),
    ]


async def test_a_copy_holds_every_job_tombstone_and_counter_and_goes_on_alike(
    store: Store, target: Store
) -> None:
    leases = await fill(store)
    progress: list[Copied] = []
    copied = await copy(store, target, chunk=3, progress=progress.append, clock=clock(35))
    assert copied == Copied(jobs=10, tombstones=2, skipped=0, source_changed=False)
    assert len(progress) == 5  # four chunks of jobs (3, 3, 3, 1), one of tombstones
    assert await everything(target) == await everything(store)
    assert await target.stats(at(35)) == await store.stats(at(35))
    assert await target.totals() == await store.totals() == Totals(12, 6)
    for record in (await everything(store))[0]:
        assert await target.max_attempts_sent(record.job.job_id) == record.max_attempts_sent
    reopened = await target.get("reopened")
    assert reopened is not None
    assert (reopened.max_attempts, await target.max_attempts_sent("reopened")) == (2, 1)
    assert await steps(target, leases) == await steps(store, leases)


async def test_a_copy_keeps_the_exact_text_of_data_and_result(store: Store, target: Store) -> None:
    await fill(store)
    await copy(store, target, clock=clock(35))
    exact, done = await target.get("exact"), await target.get("done")
    assert exact is not None
    assert done is not None
    assert (exact.description, bytes(exact.data or b"")) == ("first\tjob é", EXACT_DATA)
    assert bytes(done.result or b"") == SUCCEED.result


async def test_large_jobs_are_loaded_in_parts_of_bounded_size(
    store: Store, target: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chunk of large jobs would be one long transaction: it goes in several loads instead.
    monkeypatch.setattr(store_copy, "LOAD_BYTES", 2_000)
    big = {"blob": "x" * 900}
    await store.submit_many([new(f"big{n}", n, "large", big) for n in range(7)])
    loads: list[int] = []
    load = target.load

    async def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(len(args[0]))
        return await load(*args, **kwargs)

    monkeypatch.setattr(target, "load", counting)
    copied = await copy(store, target, clock=clock(10))
    assert copied.jobs == 7
    assert loads == [2, 2, 2, 1]  # two jobs of about 900 bytes fit in 2,000; three do not
    assert [job.job_id for job in await all_jobs(target)] == [f"big{n}" for n in range(7)]


async def test_a_running_job_copied_keeps_its_lease_and_loses_it_as_before(
    store: Store, target: Store
) -> None:
    lease = await taken(store, new("running", 0), at(0))
    await copy(store, target, clock=clock(1))
    late = await target.finish("running", "another lease", SUCCEED, at(2))
    assert late.finish is Finish.LEASE_LOST
    assert await target.expire(at(LEASE - 1), EXPIRE) == 0
    assert await target.expire(at(LEASE), EXPIRE) == 1
    gone = await target.heartbeat("running", lease, at(LEASE + 1), None)
    assert gone.finish is Finish.LEASE_LOST
    assert gone.job is not None
    assert (gone.job.state, [e.error for e in gone.job.errors]) == (SUBMITTED, ["lease expired"])


async def test_a_scheduled_job_copied_waits_for_its_time(store: Store, target: Store) -> None:
    await store.submit(new("later", 0, run_at=100))
    await store.submit(new("now", 1))
    await copy(store, target, clock=clock(2))
    assert await target.next_due(at(2)) == at(100)
    claimed = await target.claim(at(99), lease_seconds=LEASE, limit=10)
    assert [job.job_id for job in claimed] == ["now"]
    assert [job.job_id for job in await target.claim(at(100), lease_seconds=LEASE)] == ["later"]


async def test_a_copy_of_an_empty_store_is_empty(store: Store, target: Store) -> None:
    assert await copy(store, target, clock=clock(0)) == Copied()
    assert await everything(target) == ([], [])
    assert await target.totals() == NO_TOTALS


async def test_a_copy_is_refused_by_a_target_that_had_jobs(store: Store, target: Store) -> None:
    await fill(store)
    await target.submit(new("theirs", 0))
    with pytest.raises(TargetNotEmpty, match="not empty"):
        await copy(store, target, clock=clock(35))
    assert [job.job_id for job in await all_jobs(target)] == ["theirs"]
    assert await target.totals() == Totals(1, 0)


async def test_a_copy_says_when_the_source_changed_meanwhile(
    store: Store, target: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(store)
    read_tombstones = store.export_tombstones

    async def meanwhile(after: str | None, limit: int) -> list[Tombstone]:
        await store.submit(new(f"meanwhile-{after}", 40))  # a server on the source, say
        return await read_tombstones(after, limit)

    monkeypatch.setattr(store, "export_tombstones", meanwhile)
    copied = await copy(store, target, clock=clock(35))
    assert copied.source_changed
    assert await target.get("meanwhile-None") is None  # submitted after its chunk was read
    assert await target.totals() == Totals(12, 6)  # what the source had when the copy began


async def test_export_reads_in_submission_order_in_chunks(store: Store) -> None:
    for n in range(7):
        await store.submit(new(f"job-{6 - n}", n, priority=n % 3, run_at=100 - n))
    pages: list[list[str]] = []
    after: int | None = 0
    while after is not None:
        records, after = await store.export(after, 3)
        pages.append([record.job.job_id for record in records])
    assert pages == [["job-6", "job-5", "job-4"], ["job-3", "job-2", "job-1"], ["job-0"]]
    records, after = await store.export(0, 7)
    assert len(records) == 7
    assert after is not None  # a full chunk: the next one may hold more
    assert await store.export(after, 7) == ([], None)


async def test_tombstones_are_exported_in_the_byte_order_of_their_ids(store: Store) -> None:
    ids = ["b", "a", "é", "B", "a-", "a_", "\U0001f600", "\uffff"]
    for n, job_id in enumerate(ids):
        await taken(store, new(job_id, n, queue=f"q{n}"), at(n))
        await store.finish(job_id, None, SUCCEED, at(n))
    assert await store.prune(SUCCEEDED, at(100), 100) == len(ids)
    in_order = sorted(ids, key=str.encode)
    assert [t.job_id for t in await store.export_tombstones(None, 100)] == in_order
    assert [t.job_id for t in await store.export_tombstones("a", 3)] == in_order[2:5]
    assert await store.export_tombstones(in_order[-1], 3) == []


async def test_load_skips_every_id_taken_and_counts_what_it_added(
    store: Store, target: Store
) -> None:
    """Ids taken in the target, by a job or a tombstone, are skipped and never overwritten; the
    jobs loaded follow those already there, and the counters grow by what was added."""
    await fill(store)
    records, tombstones = await everything(store)
    await target.submit(new("exact", 0, description="theirs"))
    await target.submit(new("pruned-ok", 0, description="theirs too"))
    await target.submit(new("first", 0))
    await taken(target, new("urgent", 1, queue="u"), at(1))
    await target.finish("urgent", None, SUCCEED, at(2))
    assert await target.prune(SUCCEEDED, at(3), 10) == 1
    before = await target.totals()
    loaded = await target.load(records, tombstones, at(35), extra=Totals(0, 1))
    assert loaded == Loaded(added=9, skipped=3)  # jobs exact and urgent, tombstone pruned-ok
    jobs = {job.job_id: job for job in await all_jobs(target)}
    assert list(jobs)[:3] == ["exact", "pruned-ok", "first"]
    assert [job_id for job_id in jobs if job_id not in ("exact", "pruned-ok", "first")] == [
        record.job.job_id for record in records if record.job.job_id not in ("exact", "urgent")
    ]
    assert (jobs["exact"].description, jobs["pruned-ok"].description) == ("theirs", "theirs too")
    assert await target.get("urgent") is None
    buried = await target.tombstone("urgent")
    assert buried is not None
    assert buried.queue == "u"
    assert await target.tombstone("pruned-ok") is None
    added = counted(
        [r for r in records if r.job.job_id not in ("exact", "urgent")],
        [t for t in tombstones if t.job_id == "pruned-failed"],
    )
    assert await target.totals() == Totals(
        before.submitted + added.submitted, before.completed + added.completed + 1
    )
    stats = await target.stats(at(35))
    assert (stats.total, stats.submitted_ever) == (len(jobs), before.submitted + added.submitted)
