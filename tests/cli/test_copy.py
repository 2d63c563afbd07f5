"""`sq copy`: a SQLite file with jobs in every state, copied into a new SQLite file (and into a
new PostgreSQL database when ``$SIMPLEQUEUE_TEST_POSTGRES`` names a server), then served by a
real `sq serve`: the same jobs in the same order, the same counters; a pruned job's id is still
taken; a running job's lease still works, and one whose lease ended is taken back as before.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from typer.testing import CliRunner, Result

from simplequeue import Client
from simplequeue.models import JobState
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import NewJob, SqliteStore, Store, store_for
from simplequeue.store.base import Outcome, Record, Tombstone
from tests.postgres import fresh_database
from tests.servers import ServerProcess

cli_app = importlib.import_module("simplequeue.cli.app")

EXACT_DATA = b'{"n": 1.50, "nul": "\\u0000", "e": "\xc3\xa9"}'
HELD_LEASE = 300
JOBS = 9  # in the source, beside one pruned job's tombstone


def sq_copy(*args: str) -> Result:
    return CliRunner().invoke(cli_app.app, ["copy", *args])


async def build(path: str) -> dict[str, str]:
    """A queue with jobs in every state, by the machine's clock. Returns the lease of the job
    that is running (the one whose lease already ended is not needed: nobody holds it)."""
    store = SqliteStore(path, synchronous="normal")
    await store.open()
    try:
        now = store.now()
        past, later = now - timedelta(minutes=10), now + timedelta(hours=1)

        async def take(job: NewJob, at: datetime, lease_seconds: int = 60) -> str:
            await store.submit(job)
            (claimed,) = await store.claim(at, lease_seconds=lease_seconds, queues=(job.queue,))
            return claimed.lease_id

        def job(job_id: str, **fields: Any) -> NewJob:
            return NewJob(job_id, None, None, now, **fields)

        await take(NewJob("pruned", "gone", None, past, queue="p"), past)
        succeed = Outcome(*TRANSITIONS[Event.SUCCEED], result=b'{"size": 1.50}')
        await store.finish("pruned", None, succeed, past)
        assert await store.prune(JobState.SUCCEEDED, past + timedelta(seconds=1), 10) == 1
        await take(NewJob("lapsed", None, None, past, queue="lapsed"), past)  # ended 9 min ago
        await store.submit(NewJob("waiting", "first\tjob é", EXACT_DATA, now, priority=5))
        await store.submit(job("scheduled", queue="s", run_at=later))
        await take(job("retried", queue="t"), now)
        retry = Outcome(
            *TRANSITIONS[Event.RETRY], error="try later", run_at=now + timedelta(hours=1)
        )
        await store.finish("retried", None, retry, now)
        await take(job("done", queue="d"), now)
        await store.finish("done", None, succeed, now)
        await take(job("failed", queue="f"), now)
        await store.finish("failed", None, Outcome(*TRANSITIONS[Event.FAIL], error="boom"), now)
        await store.submit(job("cancelled"))
        await store.move(["cancelled"], ACTIONS[Action.CANCEL], now)
        await take(job("reopened", queue="o", max_attempts=1), now)
        await store.finish("reopened", None, Outcome(*TRANSITIONS[Event.FAIL]), now)
        await store.move(["reopened"], ACTIONS[Action.RETRY], now)
        return {"held": await take(job("held", queue="h"), now, HELD_LEASE)}
    finally:
        await store.close()


async def contents(db: str) -> tuple[list[Record], list[Tombstone], Any]:
    """Everything a store holds, and its counts and counters (without the ages, which move)."""
    store: Store = store_for(db)
    await store.open()
    try:
        records, after = await store.export(0, 1000)
        assert after is None
        stats = msgspec.to_builtins(await store.stats(store.now()))
        for figures in stats["queues"].values():
            del figures["oldestDueAgeSeconds"]
        return records, await store.export_tombstones(None, 1000), stats
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where to copy to: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "target.db")
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, dict[str, str]]:
    path = str(tmp_path / "source.db")
    return path, asyncio.run(build(path))


def wire(value: object) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


@pytest.mark.timeout(120)
def test_a_copied_queue_is_served_as_it_was(
    source: tuple[str, dict[str, str]], target: str, serve: Callable[..., ServerProcess]
) -> None:
    path, leases = source
    result = sq_copy("--from", path, "--to", target)
    assert result.exit_code == 0, result.stderr
    summary = f"copied {JOBS} jobs and 1 tombstone; 0 ids skipped (already taken in the target)"
    assert result.stdout == summary + "\n"
    assert result.stderr == ""  # no progress line when stderr is not a terminal
    copied, original = asyncio.run(contents(target)), asyncio.run(contents(path))
    assert copied == original
    records, _, counts = original
    assert (counts["total"], counts["submittedEver"], counts["completedEver"]) == (JOBS, 10, 5)

    server = serve(target)
    with Client(server.url) as client, httpx.Client(base_url=server.url) as http:
        listed = http.get("/jobs", params={"limit": 1000}).json()
        assert [job["jobId"] for job in listed] == [r.job.job_id for r in records]
        # The lapsed job's lease ended before the copy: the server may have taken it back.
        assert [job for job in listed if job["jobId"] != "lapsed"] == [
            wire(r.job) for r in records if r.job.job_id != "lapsed"
        ]
        stats = http.get("/stats").json()
        assert (stats["submittedEver"], stats["completedEver"]) == (10, 5)

        again = {"jobId": "pruned", "description": "gone", "queue": "p"}
        assert http.post("/jobs/submit", json=again).status_code == 200  # added once, still
        assert http.post("/jobs/submit", json={**again, "queue": "q"}).status_code == 409
        assert http.get("/jobs/pruned").status_code == 410

        assert client.next(queues=["s", "t"]) is None  # not due for an hour
        beat = client.heartbeat("held", leases["held"])
        assert beat.lease_expires_at is not None
        done = client.complete("held", "succeeded", lease_id=leases["held"], result=[1])
        assert (done.state, done.result) == (JobState.SUCCEEDED, [1])
        back = client.next(queues=["lapsed"], wait=10)
        assert back is not None
        assert (back.job_id, back.attempts, [e.error for e in back.errors]) == (
            "lapsed",
            2,
            ["lease expired"],
        )


def test_a_second_copy_into_the_same_target_is_refused(
    source: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    path, _ = source
    target = str(tmp_path / "target.db")
    assert sq_copy("--from", path, "--to", target).exit_code == 0
    again = sq_copy("--from", path, "--to", target)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert again.stderr == (
        "sq: error: the target is not empty (10 jobs were added to it): sq copy fills only a new "
        "store, so that nothing is overwritten and the counters stay exact (after a copy that "
        "stopped: delete the target file, or drop its sq_ tables)\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--from", "{tmp}/missing.db", "--to", "{tmp}/t.db"], 1, "--from: no SQLite file at"),
        (["--from", "{tmp}/text.db", "--to", "{tmp}/t.db"], 1, "cannot use the database"),
        (["--from", "{tmp}/text.db", "--to", "{tmp}/../{name}/text.db"], 2, "the same store"),
        (["--from", "{tmp}/text.db", "--to", ":memory:"], 2, "--to: :memory: is a queue"),
    ],
)
def test_a_store_that_cannot_be_copied_is_one_error_line(
    tmp_path: Path, args: list[str], code: int, line: str
) -> None:
    (tmp_path / "text.db").write_text("not a database, but a note\n" * 100)
    args = [arg.format(tmp=tmp_path, name=tmp_path.name) for arg in args]
    result = sq_copy(*args)
    assert result.exit_code == code
    assert result.stderr.count("\n") == 1, result.stderr
    assert line in result.stderr
    assert not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "t.db").exists()


def test_a_source_that_changed_during_the_copy_ends_it_with_an_error(
    source: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = source
    read = SqliteStore.export_tombstones

    async def meanwhile(self: SqliteStore, after: str | None, limit: int) -> list[Tombstone]:
        if self.path == path:  # a server on the source takes a job, say
            await self.submit(NewJob(f"meanwhile-{after}", None, None, self.now()))
        return await read(self, after, limit)

    monkeypatch.setattr(SqliteStore, "export_tombstones", meanwhile)
    result = sq_copy("--from", path, "--to", str(tmp_path / "target.db"))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"copied {JOBS} jobs and 1 tombstone;")
    assert result.stderr.startswith("sq: error: the source changed during the copy")
    assert result.stderr.count("\n") == 1
