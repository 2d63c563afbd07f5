"""The full job cycle through each system's Python client, side by side in one run: simplequeue
(on SQLite, and on PostgreSQL with 1, 2 or 3 servers), RQ, beanstalkd and RabbitMQ.

    .venv/bin/python bench/cycle.py [--jobs 20000] [--workers 4] [--only NAME] [--skip NAME]
                                    [--postgres URL] [--json PATH]

Two scenarios for every system (each skipped with one line when its server, binary or package
is absent):

- **full cycle**: 1 producer process submits ``--jobs`` trivial jobs as fast as it can while
  ``--workers`` worker processes take and complete them: jobs/s from the first submit to the
  last completion;
- **produce-then-drain**: the producer submits them all (jobs/s), then the workers drain them
  (jobs/s from the start signal to the last completion).

Every job must be completed exactly once: the ids the workers saw are checked against the ids
submitted, and the system's own counts against the number of jobs; otherwise the run fails
(non-zero exit). Every server the bench starts listens on 127.0.0.1 on a free port, in a
temporary directory on disk (or a fresh PostgreSQL database, dropped after), and is stopped at
the end. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import peers
from peers import (
    BeanstalkdSession,
    BenchError,
    RabbitSession,
    RqSession,
    Session,
    Skip,
    SqSession,
    Target,
)
from pg import POSTGRES, PgSession

CTX = multiprocessing.get_context("spawn")
"""Fresh processes, not forks of the bench (with its sockets and servers' pipes)."""
READY = 60.0
"""Seconds the producer and workers have to start and connect."""
FINISH = 30.0
"""Seconds the workers have, once told to stop, to report and exit."""
FULL_CYCLE, PRODUCE, DRAIN = "full cycle", "produce", "drain"
REFERENCE = "rq-mem"
"""The variant every figure is divided by, in the same scenario: RQ on the machine's Redis."""


@dataclass
class Row:
    key: str
    system: str
    variant: str
    scenario: str
    jobs: int
    seconds: float
    cpu: dict[str, float]
    """CPU seconds of the queue server over the measured part, per part (``Session.cpu``)."""
    clients_cpu: float
    """CPU seconds of the producer and worker processes over the measured part."""
    busy: float | None
    """The share of all the machine's CPUs busy over the measured part, whatever ran."""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def cpu_us(self) -> float | None:
        return sum(self.cpu.values()) / self.jobs * 1e6 if self.cpu else None

    @property
    def clients_cpu_us(self) -> float:
        return self.clients_cpu / self.jobs * 1e6


@dataclass(frozen=True)
class Variant:
    key: str
    system: str
    label: str
    open: Callable[[Path, argparse.Namespace], Session]
    scenarios: tuple[str, ...] = (FULL_CYCLE, PRODUCE)
    """``PRODUCE`` stands for produce-then-drain (two rows); ``DRAIN`` alone for a drain of jobs
    produced unmeasured."""
    missing: Callable[[], str | None] = lambda: None
    """Why it cannot run here, found before anything starts (``None``: it can)."""
    jobs: Callable[[argparse.Namespace], int] = lambda args: args.jobs

    @property
    def family(self) -> str:
        return self.key.split("-")[0]


def sdk_batches() -> str | None:
    import inspect

    from simplequeue import Client

    if not hasattr(Client, "submit_many"):
        return "this tree's SDK has no Client.submit_many yet"
    if "prefetch" not in inspect.signature(Client.work).parameters:
        return "this tree's Client.work takes no prefetch yet"
    return None


def on_postgres(servers: int, *, batched: bool) -> Callable[[Path, argparse.Namespace], Session]:
    """``servers`` ``sq serve`` on one fresh database made from ``--postgres``."""
    return lambda workdir, args: PgSession(workdir, args.postgres, servers, batched=batched)


VARIANTS = [
    Variant(
        "sq-call",
        "simplequeue",
        "one call per job; synchronous=full",
        lambda d, _: SqSession(d, "full", batched=False),
    ),
    Variant(
        "sq-batch",
        "simplequeue",
        "batched; synchronous=full",
        lambda d, _: SqSession(d, "full", batched=True),
        missing=sdk_batches,
    ),
    Variant(
        "sq-batch-normal",
        "simplequeue",
        "batched; synchronous=normal",
        lambda d, _: SqSession(d, "normal", batched=True),
        missing=sdk_batches,
    ),
    Variant(
        "sq-pg-call",
        "simplequeue",
        "PostgreSQL, 1 server; one call per job",
        on_postgres(1, batched=False),
    ),
    *(
        Variant(
            f"sq-pg-{servers}",
            "simplequeue",
            f"PostgreSQL, {servers} server{'s' if servers > 1 else ''}; batched",
            on_postgres(servers, batched=True),
            missing=sdk_batches,
        )
        for servers in (1, 2, 3)
    ),
    Variant(
        "rq-mem",
        "RQ",
        "Redis in memory; enqueue",
        lambda d, _: RqSession(d, own=False, batched=False, worker="simple"),
    ),
    Variant(
        "rq-mem-many",
        "RQ",
        "Redis in memory; enqueue_many",
        lambda d, _: RqSession(d, own=False, batched=True, worker="simple"),
    ),
    Variant(
        "rq-aof",
        "RQ",
        "Redis AOF everysec; enqueue",
        lambda d, _: RqSession(d, own=True, batched=False, worker="simple"),
    ),
    Variant(
        "rq-aof-many",
        "RQ",
        "Redis AOF everysec; enqueue_many",
        lambda d, _: RqSession(d, own=True, batched=True, worker="simple"),
    ),
    Variant(
        "rq-fork",
        "RQ",
        "Redis in memory; enqueue; forking Worker",
        lambda d, _: RqSession(d, own=False, batched=False, worker="fork"),
        scenarios=(DRAIN,),
        jobs=lambda args: min(args.jobs, args.fork_jobs),
    ),
    Variant("beanstalkd-mem", "beanstalkd", "in memory", lambda d, _: BeanstalkdSession(d, None)),
    Variant(
        "beanstalkd-binlog",
        "beanstalkd",
        "binlog, fsync at most every 50 ms",
        lambda d, _: BeanstalkdSession(d, 50),
    ),
    Variant(
        "beanstalkd-fsync",
        "beanstalkd",
        "binlog, fsync every write",
        lambda d, _: BeanstalkdSession(d, 0),
    ),
    Variant(
        "rabbitmq",
        "RabbitMQ",
        "durable, persistent, confirms, acks",
        lambda d, _: RabbitSession(),
    ),
]


def notes(args: argparse.Namespace) -> list[str]:
    """What the table's short variant names stand for."""
    return [
        "simplequeue: `sq serve` of this tree, fresh SQLite file on disk, --log-level warning; "
        "one call per job = Client.submit per job, workers loop next(wait) + complete(leaseId); "
        f"batched = Client.submit_many in calls of {peers.BATCH}, workers Client.work("
        f"concurrency=1, prefetch={args.prefetch}) (next(count=), complete_many)",
        "simplequeue on PostgreSQL: N `sq serve --db postgresql://...` sharing one fresh database "
        "(created and dropped by the bench); the producer sends its calls to the servers in "
        "turn, worker i uses server i % N; server CPU = sq serve processes + PostgreSQL's "
        "(its server process, background processes and the fresh database's connections)",
        "RQ: SimpleWorker (the job runs in the worker's process) except 'forking Worker' "
        f"(RQ's default Worker, a fork per job: {min(args.jobs, args.fork_jobs)} jobs); "
        f"enqueue_many = {peers.BATCH} jobs per pipeline; 'in memory' = the machine's Redis "
        "(no AOF, no RDB); 'AOF everysec' = a redis-server started by the bench with "
        "appendonly yes, appendfsync everysec",
        "beanstalkd: started by the bench; in memory = no -b; binlog = -b DIR with -f 50 "
        "(its default) or -f 0; put / reserve / delete",
        "RabbitMQ: the machine's, durable classic queue, persistent messages (delivery_mode 2), "
        "publisher confirms (each publish waits for its confirm), manual ack per message, "
        f"basic_qos prefetch {args.prefetch}",
        "vs RQ: jobs/s over RQ's on its in-memory Redis (enqueue, SimpleWorker), same scenario; "
        "server CPU: user+system of the queue server's process over the measured part, per job "
        "(two parts: their sum = sq serve + PostgreSQL); clients CPU: the producer's and workers' "
        "processes, the same way; machine busy: of all CPUs, from /proc/stat (anything else "
        "running included)",
    ]


class Crew:
    """The producer and worker processes of one phase, and the messages they send."""

    def __init__(self, target: Target, limit: float) -> None:
        self.target = target
        self.limit = limit
        self.box: Any = CTX.Queue()
        self.go = CTX.Event()
        self.stop = CTX.Event()
        self.processes: dict[str, Any] = {}
        self.counts: Any = None
        self.inbox: dict[tuple[str, str], Any] = {}

    def start_producer(self, n: int) -> None:
        args = (self.target, n, self.box, self.go, self.limit)
        self._start("producer", peers.producer_main, args)

    def start_workers(self, workers: int) -> None:
        self.counts = CTX.Array("q", workers, lock=False)
        for i in range(workers):
            args = (self.target, i, self.counts, self.box, self.go, self.stop, self.limit)
            self._start(f"worker {i}", peers.worker_main, args)

    def _start(self, name: str, main: Callable[..., None], args: tuple[Any, ...]) -> None:
        process = CTX.Process(target=main, args=args, name=name, daemon=True)
        process.start()
        self.processes[name] = process

    @property
    def workers(self) -> list[str]:
        return [name for name in self.processes if name.startswith("worker")]

    def _read(self, timeout: float) -> None:
        """Take one message (if any within ``timeout``) into the inbox; a child's error ends
        the run, and so does a child that died without a word."""
        try:
            kind, name, payload = self.box.get(timeout=timeout)
        except queue.Empty:
            dead = [n for n, p in self.processes.items() if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"{', '.join(dead)} died") from None
            return
        if kind == "error":
            raise BenchError(f"{name} failed:\n{payload}")
        self.inbox[kind, name] = payload

    def expect(self, kind: str, names: list[str], seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while not all((kind, name) in self.inbox for name in names):
            if time.monotonic() > deadline:
                late = [name for name in names if (kind, name) not in self.inbox]
                raise BenchError(f"no '{kind}' from {', '.join(late)} within {seconds:g} s")
            self._read(0.05)
        return {name: self.inbox[kind, name] for name in names}

    def completed(self) -> int:
        return sum(self.counts)

    def wait_completed(self, n: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.completed() < n:
            if time.monotonic() > deadline:
                raise BenchError(f"{self.completed()} of {n} jobs completed in {seconds:g} s")
            if not self.box.empty():
                self._read(0)
            time.sleep(peers.CHECK)
        if self.completed() > n:
            raise BenchError(f"{self.completed()} completions of {n} jobs")

    def finish(self) -> Done:
        """Stop the workers; what each took, and its last completion's time."""
        self.stop.set()
        done = self.expect("done", self.workers, FINISH)
        for process in self.processes.values():
            process.join(FINISH)
        return done

    def close(self) -> None:
        self.stop.set()
        for process in self.processes.values():
            process.join(FINISH if process.exitcode is None else 0)
            if process.exitcode is None:
                process.kill()
                process.join()


Done = dict[str, tuple[list[str], float, float]]
"""Per worker: the ids it took, its last completion's time, its CPU seconds."""


def check_ids(done: Done, prefix: str, n: int) -> float:
    """Every job completed exactly once; the time of the last completion."""
    seen = Counter(job_id for ids, _, _ in done.values() for job_id in ids)
    expected = set(peers.job_ids(prefix, n))
    twice = sorted(job_id for job_id, times in seen.items() if times > 1)
    lost = expected - seen.keys()
    strange = seen.keys() - expected
    if twice or lost or strange:
        raise BenchError(
            f"{len(lost)} jobs lost, {len(twice)} done more than once ({twice[:3]}), "
            f"{len(strange)} never submitted ({sorted(strange)[:3]})"
        )
    return max(last for _, last, _ in done.values())


def machine_ticks() -> tuple[int, int]:
    """All CPUs' busy and total ticks since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


class Meter:
    """The server's CPU time and the machine's busy share, from its start to ``read``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cpu = session.cpu()
        self.ticks = machine_ticks()

    def read(self) -> tuple[dict[str, float], float | None]:
        cpu, (busy, total) = self.session.cpu(), machine_ticks()
        spent = {part: cpu[part] - self.cpu[part] for part in cpu.keys() & self.cpu.keys()}
        busy, total = busy - self.ticks[0], total - self.ticks[1]
        return spent, busy / total if total else None


def full_cycle(session: Session, n: int, args: argparse.Namespace) -> dict[str, Row]:
    crew = Crew(session.target, args.timeout + READY + FINISH)
    try:
        crew.start_workers(args.workers)
        crew.start_producer(n)
        crew.expect("ready", [*crew.workers, "producer"], READY)
        meter = Meter(session)
        crew.go.set()
        crew.wait_completed(n, args.timeout)
        session.settled(n, FINISH)
        cpu, busy = meter.read()
        t0, t1, clients = crew.expect("produced", ["producer"], FINISH)["producer"]
        done = crew.finish()
        end = check_ids(done, session.target.queue, n)
    finally:
        crew.close()
    session.verify(n)
    clients += sum(worker for _, _, worker in done.values())
    extra = {"producer jobs/s": n / (t1 - t0)}
    return {FULL_CYCLE: Row("", "", "", FULL_CYCLE, n, end - t0, cpu, clients, busy, extra)}


def produce(session: Session, n: int, args: argparse.Namespace) -> Row:
    crew = Crew(session.target, args.timeout + READY)
    try:
        crew.start_producer(n)
        crew.expect("ready", ["producer"], READY)
        meter = Meter(session)
        crew.go.set()
        t0, t1, clients = crew.expect("produced", ["producer"], args.timeout)["producer"]
        cpu, busy = meter.read()
    finally:
        crew.close()
    session.queued(n)
    return Row("", "", "", PRODUCE, n, t1 - t0, cpu, clients, busy)


def drain(session: Session, n: int, args: argparse.Namespace) -> Row:
    crew = Crew(session.target, args.timeout + READY + FINISH)
    try:
        crew.start_workers(args.workers)
        crew.expect("ready", crew.workers, READY)
        meter = Meter(session)
        t0 = time.monotonic()
        crew.go.set()
        crew.wait_completed(n, args.timeout)
        session.settled(n, FINISH)
        cpu, busy = meter.read()
        done = crew.finish()
        end = check_ids(done, session.target.queue, n)
    finally:
        crew.close()
    session.verify(n)
    clients = sum(worker for _, _, worker in done.values())
    return Row("", "", "", DRAIN, n, end - t0, cpu, clients, busy)


def produce_then_drain(session: Session, n: int, args: argparse.Namespace) -> dict[str, Row]:
    return {PRODUCE: produce(session, n, args), DRAIN: drain(session, n, args)}


def drain_only(session: Session, n: int, args: argparse.Namespace) -> dict[str, Row]:
    produce(session, n, args)
    return {DRAIN: drain(session, n, args)}


SCENARIOS = {FULL_CYCLE: full_cycle, PRODUCE: produce_then_drain, DRAIN: drain_only}


def run_variant(variant: Variant, workdir: Path, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    n = variant.jobs(args)
    for scenario in variant.scenarios:
        name = "produce-then-drain" if scenario == PRODUCE else scenario
        print(f"-- {variant.system}, {variant.label}: {name}", file=sys.stderr, flush=True)
        session = variant.open(workdir, args)  # a Skip here skips the whole variant
        session.target = replace(session.target, prefetch=args.prefetch)
        try:
            measured = SCENARIOS[scenario](session, n, args)
        except BaseException:
            with contextlib.suppress(Exception):
                session.close()
            raise
        session.close()
        for row in measured.values():
            row.key, row.system, row.variant = variant.key, variant.system, variant.label
            rows.append(row)
    return rows


def selected(args: argparse.Namespace) -> list[Variant]:
    """``--only``/``--skip`` name a variant (``rq-aof``) or a whole system (``sq`` or
    ``simplequeue``, ``rq``, ``beanstalkd``, ``rabbitmq``)."""

    def named(variant: Variant, names: list[str]) -> bool:
        names = [name.lower().replace("simplequeue", "sq") for name in names]
        return variant.key in names or variant.family in names

    known = {v.key for v in VARIANTS} | {v.family for v in VARIANTS} | {"simplequeue"}
    unknown = [name for name in args.only + args.skip if name.lower() not in known]
    if unknown:
        sys.exit(f"unknown system or variant: {', '.join(unknown)} (known: {sorted(known)})")
    return [
        v for v in VARIANTS if (not args.only or named(v, args.only)) and not named(v, args.skip)
    ]


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "kernel": os.uname().release,
        "load": os.getloadavg()[0],
    }


def table(rows: list[Row]) -> str:
    reference = {row.scenario: row.rate for row in rows if row.key == REFERENCE}
    lines = [
        "| system | variant | scenario | jobs/s | vs RQ | server CPU us/job "
        "| clients CPU us/job | machine busy |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = row.rate / reference[row.scenario] if row.scenario in reference else None
        server = "n/a" if row.cpu_us is None else f"{row.cpu_us:.0f}"
        if len(row.cpu) > 1:
            server += " = " + " + ".join(f"{s / row.jobs * 1e6:.0f}" for s in row.cpu.values())
        lines.append(
            f"| {row.system} | {row.variant} | {row.scenario} | {row.rate:.0f} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'} | {server} | "
            f"{row.clients_cpu_us:.0f} | {'n/a' if row.busy is None else f'{row.busy:.0%}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per scenario")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument(
        "--fork-jobs",
        type=int,
        default=2_000,
        help="jobs for RQ's forking Worker (one process per job: slow), at most --jobs",
    )
    parser.add_argument(
        "--only", action="append", default=[], help="a system or variant to run (repeatable)"
    )
    parser.add_argument(
        "--skip", action="append", default=[], help="a system or variant to leave out"
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=peers.PREFETCH,
        help="jobs a batched simplequeue worker and a RabbitMQ consumer hold ahead",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a phase may take before it fails"
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES,
        help="PostgreSQL database the bench connects to, to create a fresh one per scenario "
        "(env SIMPLEQUEUE_BENCH_POSTGRES; now %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    if args.jobs < 1 or args.workers < 1:
        sys.exit("--jobs and --workers must be 1 or more")

    variants = selected(args)
    rows: list[Row] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sq-cycle-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            for variant in variants:
                reason = variant.missing()
                try:
                    if reason is not None:
                        raise Skip(reason)
                    rows += run_variant(variant, Path(tmp), args)
                except Skip as exc:
                    skipped.append(f"skipped {variant.system} ({variant.label}): {exc}")
                    print(skipped[-1], file=sys.stderr, flush=True)
        except (BenchError, KeyboardInterrupt) as exc:
            print(table(rows), file=sys.stderr)
            sys.exit(f"FAILED: {exc or 'interrupted'}")
    box = machine()
    print(
        f"{box['date']}  nproc {box['nproc']}, {box['cpu']}, kernel {box['kernel']}, "
        f"load average {box['load']:.1f}; 1 producer, {args.workers} worker processes, "
        f"{args.jobs} jobs (RQ's forking Worker: {min(args.jobs, args.fork_jobs)})"
    )
    print(table(rows))
    print(*notes(args), *skipped, sep="\n")
    if args.json:
        figures = [
            {
                **asdict(row),
                "jobs_per_second": row.rate,
                "cpu_us_per_job": row.cpu_us,
                "clients_cpu_us_per_job": row.clients_cpu_us,
            }
            for row in rows
        ]
        report = {
            "machine": box,
            "workers": args.workers,
            "rows": figures,
            "notes": notes(args),
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
