"""How release-0.2.0.db beside this file was made: with the previous release's own code (commit
2b4f56c, SQLite schema version 2: leases, retries, results; no queues yet), so that the migration
test opens a file that release wrote.

    git archive 2b4f56c | tar -x -C /tmp/sq-0.2.0
    cd tests/store/data && PYTHONPATH=/tmp/sq-0.2.0/src python make_release_0_2_0_file.py \
        release-0.2.0.db

What it holds (T0 = 2026-11-01T00:00:00Z; v2-N submitted at T0 + N seconds, in that order):

    v2-0  succeeded, with a result
    v2-1  failed (its one attempt failed: "bad input")
    v2-2  submitted, retried with a backoff that ends 2100-01-01: the migration compares due
          times with the real clock, so this one is still ahead whenever the test runs
    v2-3  submitted, due, taken back after its lease expired (attempts 1, "lease expired")
    v2-4  running, lease of 3600 s from T0 + 120 s
    v2-5  running, lease renewed at T0 + 150 s for 7200 s
    v2-6  submitted, with data
    v2-7  submitted
"""

# mypy: ignore-errors
# (It runs against the old release's API: stores had no queues, claim() no queues=.)
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from simplequeue.models import JobState
from simplequeue.store import NewJob, SqliteStore
from simplequeue.store.base import Outcome

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LATER = datetime(2100, 1, 1, tzinfo=UTC)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


async def main(path):
    store = SqliteStore(path)
    await store.open()
    for n in range(8):
        data = b'{"n": 6, "tiny": 0.5}' if n == 6 else None
        await store.submit(NewJob(f"v2-{n}", f"job {n}", data, at(n), 1 if n == 1 else 3))

    async def claim(job_id, now, lease_seconds=60):
        (job,) = await store.claim(at(now), lease_seconds=lease_seconds)
        assert job.job_id == job_id, job.job_id
        return job

    job = await claim("v2-0", 60)
    succeed = Outcome(JobState.SUCCEEDED, JobState.SUCCEEDED, result=b'{"ok": true, "n": 1.50}')
    await store.finish("v2-0", job.lease_id, succeed, at(61))
    job = await claim("v2-1", 60)
    fail = Outcome(JobState.FAILED, JobState.FAILED, error="bad input")
    await store.finish("v2-1", job.lease_id, fail, at(62))
    job = await claim("v2-2", 60)
    retry = Outcome(JobState.SUBMITTED, JobState.FAILED, error="try later", run_at=LATER)
    await store.finish("v2-2", job.lease_id, retry, at(63))
    await claim("v2-3", 120)
    await claim("v2-4", 120, lease_seconds=3600)
    job = await claim("v2-5", 120)
    await store.heartbeat("v2-5", job.lease_id, at(150), 7200)
    expire = Outcome(JobState.SUBMITTED, JobState.FAILED, error="lease expired")
    assert await store.expire(at(300), expire) == 1  # v2-3 only
    await store.close()


asyncio.run(main(sys.argv[1]))
