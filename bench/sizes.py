"""Flat with size: `next`, `submit`, `complete` and `/stats` on a store of 1,000 jobs and on one
of 1,000,000 (``--size``), with queues and priorities in use, in one run; each figure as the ratio
large over small.

    .venv/bin/python bench/sizes.py [--size 1000000] [--duration 10] [--json PATH] [--markdown]

bench/run.py runs it too, as its last part. Both stores are written straight into the store's
own schema (no million HTTP calls) with the mix below; every case then starts a fresh `sq serve`
on a copy of each, so that what one case adds never weighs on the next. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from run import (
    FILL_RUNS,
    FILL_SECONDS,
    FILL_THREADS,
    HEADROOM,
    LEASE_SECONDS,
    QUICK_SECONDS,
    QUICK_SIZE,
    SIZE,
    BenchError,
    RanDry,
    Result,
    Row,
    Server,
    cpu_ratio,
    header,
    log_options,
    machine,
    render,
    wrk,
)

from simplequeue.models import MAX_BATCH
from simplequeue.store.sqlite import SqliteStore
from simplequeue.store.sqlite import _timestamp as stamp  # its queries compare this text

SMALL = 1000
"""Jobs in the small store: the 1,000 of "flat with size"."""
QUEUES = tuple(f"q{n}" for n in range(8))
QUEUE_WEIGHTS = (30, 20, 15, 10, 10, 8, 5, 2)
"""Each queue's share of the jobs, in percent: a few busy queues and a tail of quiet ones."""
PRIORITIES = (-10, 10)
"""Priorities are drawn from a triangle over this range, peaked at 0 (the default)."""
SHARES = (
    ("succeeded", 0.70),
    ("failed", 0.05),
    ("running", 0.005),
    ("scheduled", 0.10),
    ("due", 0.145),
)
"""What the stored jobs are: mostly finished; some running (under leases hours long); some
scheduled hours ahead (submitted, not yet due); the rest submitted and due, waiting. The finished
ones are the oldest; the others share the newest part of the history: the backlog of a queue
whose workers are behind, not jobs forgotten for days."""
FINISHED = ("succeeded", "failed")
HISTORY = timedelta(days=7)
"""The stored jobs were submitted over this long, up to now, in submission order."""
AHEAD = (1.0, 6.0)
"""Scheduled jobs fall due this many hours from now (uniformly)."""
SEED = 10
PREFILL_SECONDS = 900.0
"""The bound on writing one store: slower than that fails the run."""
FIRST_SUPPLY = 20_000
"""Jobs given to a case that uses them up before its probe; the probe then sizes the rest."""
PIECES = 4
"""Runs per size in each case (see `measure`)."""
PROBE_SECONDS = 1.0
"""The unmeasured run of each case on each server first: a warm-up, and the supply's gauge."""
COLUMNS = (
    "job_id, description, data, state, created_at, started_at, finished_at, attempts, "
    "max_attempts, run_at, lease_id, lease_seconds, lease_expires_at, result, errors, queue, "
    "priority, ready"
)
INSERT = f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join('?' * (COLUMNS.count(',') + 1))})"


@dataclass(frozen=True)
class Case:
    """One endpoint measured at both sizes."""

    name: str
    script: str
    kind: str
    """health, stats, submit (makes jobs), next (takes due ones) or complete (ends running
    ones)."""
    queues: tuple[str, ...] = ()
    """For next: the queues named (none: any queue)."""

    def args(self) -> list[str]:
        return ["&".join(f"queue={name}" for name in self.queues)]


CASES = (
    Case("health", "health.lua", "health"),
    Case("stats", "stats.lua", "stats"),
    Case("submit (queue, priority)", "submit_mixed.lua", "submit"),
    Case("next", "next_in.lua", "next"),
    Case("next?queue=q3", "next_in.lua", "next", ("q3",)),
    Case("next?queue=q1&queue=q5", "next_in.lua", "next", ("q1", "q5")),
    Case("complete", "complete.lua", "complete"),
)


class Mix:
    """Draws what the stored jobs have: queues, priorities, states, ids."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)

    def queue(self, among: tuple[str, ...] = QUEUES) -> str:
        weights = [QUEUE_WEIGHTS[QUEUES.index(name)] for name in among]
        return self.rng.choices(among, weights)[0]

    def priority(self) -> int:
        low, high = PRIORITIES
        return round(self.rng.triangular(low, high, 0))

    def state(self, shares: list[tuple[str, float]]) -> str:
        states, weights = zip(*shares, strict=True)
        state: str = self.rng.choices(states, weights)[0]
        return state

    def job_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"  # as random as a UUID's


def jobs(size: int, now: datetime, deadline: float) -> Iterator[tuple[Any, ...]]:
    """``size`` rows of the mix, in COLUMNS' order and in submission order."""
    mix = Mix()
    done = sum(share for state, share in SHARES if state in FINISHED)
    finished = [(state, share / done) for state, share in SHARES if state in FINISHED]
    pending = [(state, share / (1 - done)) for state, share in SHARES if state not in FINISHED]
    lease_ends = stamp(now + timedelta(seconds=int(LEASE_SECONDS)))
    step = HISTORY / size
    for n in range(size):
        if n % 10_000 == 0 and time.monotonic() > deadline:
            raise BenchError(f"writing {size:,} jobs took over {PREFILL_SECONDS:.0f} s")
        created = now - HISTORY + step * n
        at = stamp(created)
        kind = mix.state(finished if n < done * size else pending)
        job_id, queue, priority = mix.job_id(), mix.queue(), mix.priority()
        data = f'{{"n":{n},"kind":"email","to":"user{n % 5000}@example.com"}}'
        row: tuple[Any, ...]
        if kind in ("succeeded", "failed"):
            ended = stamp(created + timedelta(seconds=2))
            if kind == "succeeded":
                row = ("succeeded", at, at, ended, 1, 3, at, None, None, None, '{"ok":true}', "[]")
            else:
                errors = json.dumps(
                    [{"attempt": a, "at": ended, "error": "boom"} for a in (1, 2, 3)]
                )
                row = ("failed", at, at, ended, 3, 3, at, None, None, None, None, errors)
            ready = 1
        elif kind == "running":
            row = ("running", at, at, None, 1, 3, at, f"lease-{n}", int(LEASE_SECONDS))
            row += (lease_ends, None, "[]")
            ready = 1
        else:
            due = at
            if kind == "scheduled":
                due = stamp(now + timedelta(hours=mix.rng.uniform(*AHEAD)))
            row = ("submitted", at, None, None, 0, 3, due, None, None, None, None, "[]")
            ready = int(kind == "due")
        yield (job_id, "bench", data, *row, queue, priority, ready)


def prefill(path: Path, size: int, now: datetime) -> float:
    """Write a new store at ``path`` holding ``size`` jobs of the mix: the seconds it took.

    The schema is the store's own (SqliteStore creates it); the rows go in through one INSERT
    in one transaction, its triggers keeping the counts. Nobody serves the file yet, so it is
    written with no journal and no sync: `sq serve` sets WAL and its own sync when it opens it.
    """
    start = time.monotonic()
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()

    async def create() -> None:
        store = SqliteStore(str(path))
        await store.open()
        await store.close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the indexes' pages stay in memory
        conn.execute("BEGIN")
        conn.executemany(INSERT, jobs(size, now, start + PREFILL_SECONDS))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return time.monotonic() - start


def supply(server: Server, count: int, queues: tuple[str, ...], mix: Mix) -> None:
    """Submit ``count`` new due jobs to ``queues`` (the mix's among them), at the mix's
    priorities, through arrays of MAX_BATCH, several at a time."""
    deadline = time.monotonic() + FILL_SECONDS
    bodies = []
    for start in range(0, count, MAX_BATCH):
        items = [
            {
                "jobId": mix.job_id(),
                "description": "bench",
                "data": {"n": n},
                "queue": mix.queue(queues),
                "priority": mix.priority(),
            }
            for n in range(start, min(count, start + MAX_BATCH))
        ]
        bodies.append((len(items), json.dumps(items, separators=(",", ":"))))

    def send(body: tuple[int, str]) -> None:
        if time.monotonic() > deadline:
            raise BenchError(f"supplying {count:,} jobs took over {FILL_SECONDS:.0f} s")
        size, text = body
        answer = server.http.post(
            "/jobs/submit", content=text, headers={"Content-Type": "application/json"}
        ).raise_for_status()
        if answer.content.count(b'"status":201') != size:
            raise BenchError(f"a batch submit of {size} did not store them all")

    with ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(send, bodies))


def counts(server: Server) -> dict[str, dict[str, int]]:
    """Each queue's jobs per state (its age left out: it moves on every read), and ``*``, the
    totals."""
    stats = server.http.get("/stats").raise_for_status().json()
    per_queue = {
        name: {state: n for state, n in queue.items() if isinstance(n, int)}
        for name, queue in stats.pop("queues").items()
    }
    return {"*": stats, **per_queue}


def settled(server: Server) -> dict[str, dict[str, int]]:
    """``counts`` once the requests wrk left in flight have landed: three reads 0.3 s apart
    agree, for 10 s at most (as `Server.settled_stats`)."""
    now, same = counts(server), 0
    for _ in range(33):
        time.sleep(0.3)
        now, before = counts(server), now
        same = same + 1 if now == before else 0
        if same == 2:
            break
    return now


def due_in(found: dict[str, dict[str, int]], queues: tuple[str, ...]) -> int:
    """The submitted jobs (due or not) of ``queues`` (every queue when empty)."""
    if not queues:
        return found["*"]["submitted"]
    return sum(found.get(name, {}).get("submitted", 0) for name in queues)


class Side:
    """One size's server for one case, on a fresh copy of its store."""

    def __init__(self, label: str, base: Path, workdir: Path, options: tuple[str, ...]) -> None:
        self.label = label
        self.db = workdir / f"{base.stem}-{next(FILL_RUNS)}.db"
        shutil.copyfile(base, self.db)
        self.server = Server(
            "sq",
            workdir,
            "full",
            options=[*options, "--lease-seconds", LEASE_SECONDS],
            label=self.db.stem,
            db=self.db,
        )
        self.added = 0
        """Jobs this case supplied that its runs have not used up yet."""
        self.rss_mb = 0.0

    def close(self) -> None:
        code = self.server.stop()
        for path in self.db.parent.glob(f"{self.db.stem}.*"):
            path.unlink()
        if code != 0:
            raise BenchError(f"{self.label} exited with {code} on SIGTERM: see {self.server.log}")

    def run(self, case: Case, seconds: float, args: argparse.Namespace) -> tuple[Result, int]:
        """One wrk run of ``case``, checked against the store's counts; and the jobs stored
        when it began."""
        c, t = args.connections, args.threads
        before = settled(self.server)
        extra = case.args()
        if case.kind == "submit":
            mix = Mix(next(FILL_RUNS))
            queues = ",".join(mix.queue() for _ in range(100))
            priorities = ",".join(str(mix.priority()) for _ in range(101))
            extra = [f"s{next(FILL_RUNS)}", queues, priorities]
        elif case.kind == "complete":
            ids = self.db.with_suffix(".running")
            ids.write_text("\n".join(self.server.running_ids()) + "\n")
            extra = [str(ids), str(t)]
        result = wrk(self.server, case.script, seconds, c, t, *extra)
        result.server, result.endpoint = self.label, case.name
        after = settled(self.server)
        self.rss_mb = max(self.rss_mb, self.server.rss_mb())
        if result.short:
            raise RanDry(f"{case.name} on {self.label}: {result.short} empty answers")
        jobs = result.jobs
        changed = {
            "health": 0,
            "stats": 0,
            "submit": after["*"]["total"] - before["*"]["total"],
            "next": due_in(before, case.queues) - due_in(after, case.queues),
            "complete": after["*"]["succeeded"] - before["*"]["succeeded"],
        }[case.kind]
        # wrk does not count the last request of each connection.
        if case.kind not in ("health", "stats") and not 0 <= changed - jobs <= c:
            raise BenchError(
                f"{case.name}: {jobs} jobs in 2xx answers, the store's counts {changed}"
            )
        self.added = max(0, self.added - changed)
        return result, before["*"]["total"]

    def top_up(self, case: Case, want: int, mix: Mix) -> None:
        """At least ``want`` supplied jobs left for ``case`` to use up."""
        if case.kind not in ("next", "complete") or self.added >= want:
            return
        count = want - self.added
        supply(self.server, count, case.queues or QUEUES, mix)
        if case.kind == "complete":
            self.server.take_jobs(count)
        self.added = want


def measure(
    case: Case, sides: list[Side], args: argparse.Namespace
) -> list[tuple[list[Result], int]]:
    """``case`` on each side in PIECES runs of a PIECES-th of ``--duration`` each, in the order
    small, large, large, small, small, large, ... (so that other load on the machine, coming
    and going, weighs on both alike), after a probe on each: the supply, the same for both, is
    HEADROOM times what the faster probe used up in a piece. Each side's runs, and the jobs
    stored when its first began."""
    mix = Mix(next(FILL_RUNS))
    rate = 0.0
    for side in sides:
        side.top_up(case, FIRST_SUPPLY, mix)
        probe, _ = side.run(case, PROBE_SECONDS, args)
        rate = max(rate, probe.jobs / probe.seconds)
    piece = piece_seconds(args)
    want = int(HEADROOM * rate * piece) + args.connections
    pieces: dict[int, list[Result]] = {}
    stored: dict[int, int] = {}
    for k in range(PIECES):
        for n in (0, 1) if k % 2 == 0 else (1, 0):
            sides[n].top_up(case, want, mix)
            result, at = sides[n].run(case, piece, args)
            pieces.setdefault(n, []).append(result)
            stored.setdefault(n, at)
    return [(pieces[n], stored[n]) for n in (0, 1)]


def piece_seconds(args: argparse.Namespace) -> int:
    """Seconds of one run of a case: wrk counts whole seconds."""
    duration: float = args.duration
    return max(1, round(duration / PIECES))


def joined(halves: list[Result]) -> Result:
    """One result of several runs: their sums; the p50 weighted by their requests, the highest
    p99."""
    requests = sum(r.requests for r in halves)
    items = [r.items for r in halves if r.items is not None]
    return Result(
        server=halves[0].server,
        endpoint=halves[0].endpoint,
        requests=requests,
        seconds=sum(r.seconds for r in halves),
        p50_ms=sum(r.p50_ms * r.requests for r in halves) / requests,
        p99_ms=max(r.p99_ms for r in halves),
        cpu_seconds=sum(r.cpu_seconds for r in halves),
        items=sum(items) if items else None,
        short=sum(r.short for r in halves),
    )


def row(case: Case, runs: list[Result], stored: int) -> Row:
    """One size's line: its runs of ``case`` together, each run's req/s and CPU us kept too."""
    result = joined(runs)
    return Row(
        "size",
        result.server,
        case.name,
        result.rps,
        "req/s",
        result.cpu_us,
        result.p50_ms,
        result.p99_ms,
        stored=stored,
        extra={
            "requests": result.requests,
            "seconds": result.seconds,
            "pieces": [(round(r.rps), round(r.cpu_us)) for r in runs],
        },
    )


def part_size(workdir: Path, args: argparse.Namespace, options: tuple[str, ...]) -> list[Row]:
    """Every case at SMALL and at ``args.size`` jobs stored: one row each, the large one with
    its ratio to the small; then each side's most RSS."""
    now = datetime.now(UTC)
    labels = (f"sq, full, {SMALL:,} stored", f"sq, full, {args.size:,} stored")
    bases = []
    for label, size in zip(labels, (SMALL, args.size), strict=True):
        base = workdir / f"stored-{size}.db"
        took = prefill(base, size, now)
        print(f"-- {label}: written in {took:.0f} s", file=sys.stderr, flush=True)
        bases.append(base)
    rows: list[Row] = []
    rss = [0.0, 0.0]
    for case in CASES:
        print(f"   {case.name}", file=sys.stderr, flush=True)
        with ExitStack() as stack:
            sides = []
            for label, base in zip(labels, bases, strict=True):
                side = Side(label, base, workdir, options)
                stack.callback(side.close)
                sides.append(side)
            results = measure(case, sides, args)
            rss = [max(old, side.rss_mb) for old, side in zip(rss, sides, strict=True)]
        small, large = (row(case, runs, at) for runs, at in results)
        large.ratio, large.of = large.value / small.value, f"{SMALL:,} stored"
        large.cpu_ratio = cpu_ratio(small, large)
        if case.kind != "health":
            large.check(">=", 0.9)
        rows += [small, large]
    for label, mb in zip(labels, rss, strict=True):
        rows.append(
            Row("size", label, "RSS, the most after a run", mb, "MB").check("<", 150, on="value")
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help=f"jobs in the large store ({SIZE:,})")
    parser.add_argument("--duration", type=float, default=10, help="seconds a run (10)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_SECONDS:g} s a run, {QUICK_SIZE:,} jobs in the large store",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures there")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    if args.quick:
        args.duration = QUICK_SECONDS
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else SIZE
    if shutil.which("wrk") is None:
        sys.exit("bench/sizes.py needs wrk: apt-get install -y wrk")
    info = machine()
    log = log_options(None)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sq-sizes-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            rows += part_size(Path(tmp), args, log.off)
        except (BenchError, httpx.HTTPError, sqlite3.Error, subprocess.SubprocessError) as exc:
            print(render(rows), file=sys.stderr)
            sys.exit(f"FAILED: {exc}")
    info["seconds"] = round(time.monotonic() - started)
    info["load_end"] = os.getloadavg()
    print(header(info, args, log))
    print(f"each case: {PIECES} runs of {piece_seconds(args)} s a size, alternating")
    print(render(rows, markdown=args.markdown))
    print(f"{info['seconds']} s in all, load average {info['load_end'][0]:.2f} at the end")
    if args.json:
        figures = {"run": info, "args": vars(args) | {"json": str(args.json)}, "rows": rows}
        args.json.write_text(json.dumps(figures, default=asdict, indent=1) + "\n")


if __name__ == "__main__":
    main()
