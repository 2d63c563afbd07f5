"""How release-0.1.0.db beside this file was made: with the first release's own code (commit
c0da673, SQLite schema version 1), so that the migration test opens a file that release wrote.

    git archive c0da673 | tar -x -C /tmp/sq-0.1.0
    cd tests/store/data && PYTHONPATH=/tmp/sq-0.1.0/src python make_release_file.py release-0.1.0.db
"""

# mypy: ignore-errors
# (It runs against the old release's API: NewJob took a dict, stores had next() and complete().)
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from simplequeue.models import JobState
from simplequeue.store import NewJob, SqliteStore


async def main(path):
    store = SqliteStore(path)
    await store.open()
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(6):
        await store.submit(
            NewJob(
                f"old-{n}",
                f"job {n}",
                {"n": n, "tiny": 0.5} if n % 2 else None,
                t0 + timedelta(seconds=n),
            )
        )
    for _ in range(4):
        await store.next(t0 + timedelta(minutes=1))
    await store.complete("old-0", JobState.SUCCEEDED, t0 + timedelta(minutes=2))
    await store.complete("old-1", JobState.FAILED, t0 + timedelta(minutes=2))
    await store.close()


asyncio.run(main(sys.argv[1]))
