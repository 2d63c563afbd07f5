"""The store for several servers: one PostgreSQL database (``--db postgresql://...``).

Any number of `sq serve` processes share the database, each with a pool of connections
(`simplequeue.store.postgres_database`, which also holds the schema, the clock and the LISTEN).
Every operation is one statement or one short transaction: a claim takes jobs ``FOR UPDATE SKIP
LOCKED``, so claimers never wait for each other nor take the same job; every other change is a
conditional UPDATE that cannot act on a stale lease. The schema, the counters behind /stats and
the reasons for them are in postgres.sql.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from simplequeue.models import (
    POOL_MAX,
    STORE_TIMEOUT,
    ClaimedJob,
    JobState,
    Stats,
    StoredJob,
)
from simplequeue.store.base import (
    EXPIRE_BATCH,
    NO_TOTALS,
    PROMOTE_BATCH,
    PRUNE_BYTES,
    Ending,
    Finish,
    Finished,
    Loaded,
    Move,
    Moved,
    MovedChunk,
    NewJob,
    Outcome,
    Record,
    Selection,
    Tombstone,
    Totals,
    UnknownCursor,
)
from simplequeue.store.postgres_database import (
    CLAIM_ANY,
    CLAIM_IN,
    EXPIRE,
    FINISH,
    QUERIES,
    SCHEMA_VERSION,
    SUBMIT,
    Connection,
    Database,
    SchemaTooNew,
    fetch_all,
    fetch_one,
    list_query,
)
from simplequeue.store.postgres_rows import (
    Row,
    as_claimed,
    as_finished,
    as_job,
    as_pruned,
    as_stats,
    as_tombstone,
    endings_params,
    error_params,
    prefix_end,
    record_params,
    tombstone_params,
)

__all__ = ["SCHEMA_VERSION", "PostgresStore", "SchemaTooNew"]


class PostgresStore:
    def __init__(
        self, url: str, *, pool_max: int = POOL_MAX, timeout: float = STORE_TIMEOUT
    ) -> None:
        self._db = Database(url, pool_max=pool_max, timeout=timeout)

    async def open(self) -> None:
        """Connect, and create or migrate the schema under an advisory lock. A database that
        cannot be reached or used raises `StoreUnusable` with one line naming it."""
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    def now(self) -> datetime:
        """The time the servers on this database agree on: the database's clock."""
        return self._db.now()

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process may have made a job available (a NOTIFY),
        or may have while this was not listening; until cancelled."""
        await self._db.watch(wake)

    # -- the queue's operations --------------------------------------------------------------

    async def submit(self, job: NewJob) -> tuple[StoredJob | Tombstone, bool]:
        return (await self.submit_many([job]))[0]

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob | Tombstone, bool]]:
        job_ids = [new.job_id for new in jobs]
        params = {
            "job_ids": job_ids,
            "descriptions": [
                None if new.description is None else new.description.encode() for new in jobs
            ],
            "data": [None if new.data is None else new.data.decode() for new in jobs],
            "created_at": [new.created_at for new in jobs],
            "max_attempts": [new.max_attempts for new in jobs],
            "queues": [new.queue for new in jobs],
            "priorities": [new.priority for new in jobs],
            "run_at": [new.due for new in jobs],
        }

        async def insert_or_read(
            conn: Connection,
        ) -> tuple[dict[str, Row], dict[str, Row], dict[str, Row]]:
            # One statement inserts them all (atomic: no transaction needed); the ids it did not
            # insert (stored, repeated in the batch, or pruned) are read back.
            inserted = {row[0]: row for row in await fetch_all(conn, SUBMIT, params)}
            return inserted, *await self._others(conn, job_ids, inserted)

        inserted, stored, buried = await self._db.run(insert_or_read)
        answers: list[tuple[StoredJob | Tombstone, bool]] = []
        for new in jobs:
            if (row := inserted.pop(new.job_id, None)) is not None:
                stored[new.job_id] = row
                answers.append((as_job(row), True))
            elif (row := stored.get(new.job_id)) is not None:
                answers.append((as_job(row), False))
            else:
                answers.append((as_tombstone(buried[new.job_id]), False))
        return answers

    @classmethod
    async def _others(
        cls, conn: Connection, job_ids: list[str], done: dict[str, Row]
    ) -> tuple[dict[str, Row], dict[str, Row]]:
        """The ids a statement did not return (``done``): their jobs as stored, and the
        tombstones of those with no job."""
        rest = [job_id for job_id in job_ids if job_id not in done]
        stored = await cls._rows(conn, QUERIES["get_many"], rest)
        buried = [job_id for job_id in rest if job_id not in stored]
        return stored, await cls._rows(conn, QUERIES["tombstones"], buried)

    @staticmethod
    async def _rows(conn: Connection, query: str, job_ids: list[str]) -> dict[str, Row]:
        if not job_ids:
            return {}
        return {row[0]: row for row in await fetch_all(conn, query, {"job_ids": job_ids})}

    async def claim(
        self,
        now: datetime,
        *,
        lease_seconds: int,
        limit: int = 1,
        queues: Collection[str] = (),
    ) -> list[ClaimedJob]:
        named = sorted(set(queues))
        params = {
            "now": now,
            "until": now + timedelta(seconds=lease_seconds),
            "limit": limit,
            "lease_seconds": lease_seconds,
            "lease_ids": [secrets.token_urlsafe(18) for _ in range(limit)],
            "queues": named,
        }
        promote = {"now": now, "limit": PROMOTE_BATCH}

        async def claim(conn: Connection) -> list[Row]:
            # Scheduled jobs that fell due join the order first, in the same transaction; one
            # pipeline sends it all at once.
            async with conn.pipeline(), conn.transaction():
                await conn.execute(QUERIES["promote"], promote)
                return await fetch_all(conn, CLAIM_IN if named else CLAIM_ANY, params)

        rows = await self._db.run(claim)
        rows.sort(key=lambda row: (-row[13], row[14], row[-1]))  # priority, run_at, seq
        return [as_claimed(row) for row in rows]

    async def heartbeat(
        self, job_id: str, lease_id: str, now: datetime, lease_seconds: int | None
    ) -> Finished:
        params = {
            "job_id": job_id,
            "lease_id": lease_id,
            "now": now,
            "lease_seconds": lease_seconds or None,  # none: its own length
        }

        async def renew(conn: Connection) -> Finished:
            if (row := await fetch_one(conn, QUERIES["renew"], params)) is not None:
                return Finished(Finish.APPLIED, as_claimed(row))
            # Not its current lease: whatever the job does next, that lease never comes back.
            row = await fetch_one(conn, QUERIES["get"], params)
            return (
                Finished(Finish.UNKNOWN, None)
                if row is None
                else Finished(Finish.LEASE_LOST, as_job(row))
            )

        return await self._db.run(renew)

    async def finish(
        self, job_id: str, lease_id: str | None, outcome: Outcome, now: datetime
    ) -> Finished:
        return (await self.finish_many([Ending(job_id, lease_id, outcome)], now))[0]

    async def finish_many(self, endings: Sequence[Ending], now: datetime) -> list[Finished]:
        # Endings of distinct jobs go in one statement; a job named twice needs the second
        # to see the first, so then each goes in a statement of its own (one transaction).
        distinct = len({ending.job_id for ending in endings}) == len(endings)
        groups = [list(endings)] if distinct else [[ending] for ending in endings]
        common = error_params(now)

        async def finish(conn: Connection) -> list[list[Row]]:
            if len(groups) == 1:
                return [await fetch_all(conn, FINISH, {**common, **endings_params(groups[0])})]
            async with conn.transaction():
                return [
                    await fetch_all(conn, FINISH, {**common, **endings_params(g)}) for g in groups
                ]

        answers = []
        for group, rows in zip(groups, await self._db.run(finish), strict=True):
            by_item = {row[0]: row for row in rows}
            for n, ending in enumerate(group, 1):
                answers.append(as_finished(ending, by_item.get(n)))
        return answers

    async def release(self, job_id: str, lease_id: str) -> None:
        params = {"job_id": job_id, "lease_id": lease_id}
        await self._db.run(lambda conn: conn.execute(QUERIES["release"], params))

    async def expire(self, now: datetime, outcome: Outcome) -> int:
        params = {
            **error_params(now, outcome.error),
            "limit": EXPIRE_BATCH,
            "then": outcome.then.value,
            "otherwise": outcome.otherwise.value,
            "run_at": outcome.run_at,
        }
        return int(await self._db.run(lambda conn: _scalar(conn, EXPIRE, params)))

    async def next_due(self, now: datetime) -> datetime | None:
        row = await self._db.run(lambda conn: fetch_one(conn, QUERIES["next_due"], {"now": now}))
        return None if row is None else row[0]

    async def move(self, job_ids: Sequence[str], move: Move, now: datetime) -> list[Moved]:
        ids = list(dict.fromkeys(job_ids))

        async def apply(conn: Connection) -> tuple[dict[str, Row], dict[str, Row], dict[str, Row]]:
            seqs = [seq for (seq,) in await fetch_all(conn, QUERIES["seqs"], {"job_ids": ids})]
            moved = {row[0]: row for row in await _move(conn, seqs, move, now, move.sources)}
            return moved, *await self._others(conn, ids, moved)

        moved, stored, buried = await self._db.run(apply)
        answers = []
        for job_id in job_ids:
            if (row := moved.pop(job_id, None)) is not None:
                stored[job_id] = row  # a repeat of the id finds it moved, and moves it no more
                answers.append(Moved(as_job(row), True))
            elif (row := stored.get(job_id)) is not None:
                answers.append(Moved(as_job(row), False))
            else:
                buried_row = buried.get(job_id)
                answers.append(
                    Moved(None, False, None if buried_row is None else as_tombstone(buried_row))
                )
        return answers

    async def move_matching(
        self, selection: Selection, move: Move, now: datetime, *, after: int, limit: int
    ) -> MovedChunk:
        states = selection.states & move.sources
        params: dict[str, Any] = {"after": after, "limit": limit}
        # A window of one state's jobs (the queue asks one state at a time): it walks only the
        # jobs the action could change, never the history of finished ones.
        if len(states) == 1:
            window, params["state"] = QUERIES["window_in_state"], next(iter(states)).value
        else:
            window = QUERIES["window_all"]
        queue, prefix = selection.queue, selection.prefix

        async def apply(conn: Connection) -> MovedChunk:
            rows = await fetch_all(conn, window, params)
            seqs = [
                seq
                for seq, state, job_id, in_queue in rows
                if state in states
                and (queue is None or in_queue == queue)
                and (prefix is None or job_id.startswith(prefix))
            ]
            moved = len(await _move(conn, seqs, move, now, states))
            return MovedChunk(moved, rows[-1][0] if len(rows) == limit else None)

        return await self._db.run(apply)

    async def promote(self, now: datetime, limit: int) -> int:
        params = {"now": now, "limit": limit}

        async def promote(conn: Connection) -> int:
            return (await conn.execute(QUERIES["promote"], params)).rowcount

        return await self._db.run(promote)

    async def max_attempts_sent(self, job_id: str) -> int | None:
        query, params = QUERIES["max_attempts_sent"], {"job_id": job_id}
        row = await self._db.run(lambda conn: fetch_one(conn, query, params))
        return None if row is None else int(row[0])

    async def prune(self, state: JobState, finished_before: datetime, limit: int) -> int:
        read = {
            "state": state.value,
            "before": finished_before,
            "limit": limit,
            "bytes": PRUNE_BYTES,
        }
        rows = await self._db.run(lambda conn: fetch_all(conn, QUERIES["prunable"], read))
        if not rows:
            return 0
        # Fingerprinted here, between the read and the delete, holding no lock: hashing a large
        # job's canonical data takes a while.
        buried = [as_pruned(row) for row in rows]
        params = {
            **tombstone_params(buried),
            "state": state.value,
            "seqs": [row[0] for row in rows],
        }
        return int(await self._db.run(lambda conn: _scalar(conn, QUERIES["bury"], params)))

    async def load(
        self,
        records: Sequence[Record],
        tombstones: Sequence[Tombstone],
        now: datetime,
        *,
        extra: Totals = NO_TOTALS,
    ) -> Loaded:
        jobs = {**record_params(records), "now": now}
        buried = tombstone_params(tombstones)

        async def load(conn: Connection) -> Loaded:
            async with conn.transaction():
                added = (await conn.execute(QUERIES["load"], jobs)).rowcount
                kept = (await conn.execute(QUERIES["load_tombstones"], buried)).rowcount
                if kept or extra != NO_TOTALS:
                    params = {"tombstones": kept, "submitted": extra[0], "completed": extra[1]}
                    await conn.execute(QUERIES["load_totals"], params)
            return Loaded(added + kept, len(records) + len(tombstones) - added - kept)

        return await self._db.run(load)

    # -- reads -------------------------------------------------------------------------------

    async def tombstone(self, job_id: str) -> Tombstone | None:
        rows = await self._db.run(lambda conn: self._rows(conn, QUERIES["tombstones"], [job_id]))
        return None if job_id not in rows else as_tombstone(rows[job_id])

    async def get(self, job_id: str) -> StoredJob | None:
        row = await self._db.run(lambda conn: fetch_one(conn, QUERIES["get"], {"job_id": job_id}))
        return None if row is None else as_job(row)

    async def list_jobs(
        self,
        states: Collection[JobState],
        limit: int,
        after: str | None,
        *,
        before: str | None = None,
        newest_first: bool = False,
        prefix: str | None = None,
        queues: Collection[str] = (),
    ) -> list[StoredJob]:
        query = list_query(bool(states), bool(queues), prefix is not None, newest_first)
        params: dict[str, Any] = {
            "limit": limit,
            "states": [state.value for state in states],
            "queues": sorted(set(queues)),
        }
        if prefix is not None:
            params.update(prefix=prefix, prefix_end=prefix_end(prefix))

        async def seq_of(conn: Connection, job_id: str | None, otherwise: int) -> int:
            if job_id is None:
                return otherwise
            if (row := await fetch_one(conn, QUERIES["seq_of"], {"job_id": job_id})) is None:
                raise UnknownCursor(job_id)
            return int(row[0])

        async def read(conn: Connection) -> list[Row]:
            # A job's seq never changes: the cursors need no snapshot shared with the page.
            params["after_seq"] = await seq_of(conn, after, 0)
            params["before_seq"] = await seq_of(conn, before, _MAX_SEQ)
            return await fetch_all(conn, query, params)

        return [as_job(row) for row in await self._db.run(read)]

    async def stats(self, now: datetime) -> Stats:
        async def read(conn: Connection) -> tuple[list[Row], Row]:
            # One snapshot, so that the counts, the ages and the totals are of one moment.
            async with conn.pipeline(), conn.transaction():
                await conn.execute(QUERIES["snapshot"])
                counts = await fetch_all(conn, QUERIES["stats"])
                return counts, (await fetch_all(conn, QUERIES["totals"]))[0]

        counts, totals = await self._db.run(read)
        return as_stats(counts, Totals(*totals), now)

    async def totals(self) -> Totals:
        return Totals(*(await self._db.run(lambda conn: fetch_all(conn, QUERIES["totals"])))[0])

    async def export(self, after: int, limit: int) -> tuple[list[Record], int | None]:
        params = {"after": after, "limit": limit}
        rows = await self._db.run(lambda conn: fetch_all(conn, QUERIES["export"], params))
        records = [Record(as_job(row), row[15], row[16], row[17]) for row in rows]
        return records, rows[-1][18] if len(rows) == limit else None

    async def export_tombstones(self, after: str | None, limit: int) -> list[Tombstone]:
        params = {"after": "" if after is None else after, "limit": limit}  # no id is empty
        rows = await self._db.run(
            lambda conn: fetch_all(conn, QUERIES["export_tombstones"], params)
        )
        return [as_tombstone(row) for row in rows]


_MAX_SEQ = 2**63 - 1


async def _scalar(conn: Connection, query: str, params: dict[str, Any]) -> Any:
    return (await fetch_all(conn, query, params))[0][0]


async def _move(
    conn: Connection, seqs: list[int], move: Move, now: datetime, sources: Collection[JobState]
) -> list[Row]:
    """Apply ``move`` to the jobs of ``seqs`` still in one of ``sources`` (checked as each is
    locked: another server may have moved it since it was read)."""
    if not seqs:
        return []
    params: dict[str, Any] = {
        "seqs": seqs,
        "sources": [state.value for state in sources],
        "now": now,
    }
    if move.target == JobState.FAILED:
        params.update(error_params(now, move.error))
        return await fetch_all(conn, QUERIES["move_to_failed"], params)
    return await fetch_all(conn, QUERIES["move_to_submitted"], params)
