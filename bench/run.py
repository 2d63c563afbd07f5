"""Where simplequeue stands against issue 9's goals: real `sq serve` processes, one table.

    .venv/bin/python bench/run.py [--duration 10] [--quick] [--size 1000000] [--json PATH]
    .venv/bin/python bench/run.py --compare        # the ASGI candidates' endpoints, then the above
    .venv/bin/python bench/run.py --server NAME    # one candidate's endpoints only

Each server runs as its own process on 127.0.0.1 with a fresh SQLite file; wrk (Debian's
``wrk``) drives it with the Lua scripts beside this file, and producer processes drive it
through the SDK. The parts, in order: the endpoints beside /health (single and batch), durable
vs not, the access log on vs off, ``Client.submit_many``, then the endpoints at 1,000 and at
``--size`` jobs stored (bench/sizes.py). See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simplequeue.models import MAX_BATCH, MAX_CLAIM_COUNT

FILL_RUNS = itertools.count()

BENCH = Path(__file__).resolve().parent
CANDIDATES = [
    "uvicorn-h11",
    "uvicorn-standard",
    "granian-embed",
    "granian-embed-uvloop",
    "granian-worker",
]
HEADROOM = 2.5
"""Before a run that uses up jobs (next takes queued ones, complete running ones), its supply is
topped up to this many times what it can use, judged by a short probe of the same load."""
QUIET = ("--log-level", "warning")
"""How bench servers log unless told otherwise: warnings only, no access log."""
LEASE_SECONDS = "43200"
"""The servers' default lease (the longest allowed), so that no job taken during a run comes back
to the queue in the middle of a later one and upsets its counts."""
STORED = 1000
"""Jobs stored (queued) before the endpoints are measured: the small end of "flat with size"."""
ARRAY = 100
"""Items per array in the batch runs under wrk (submit and complete)."""
CLAIM = 10
"""``count`` of the batch ``next`` run under wrk."""
FILL_THREADS = 4
"""Concurrent requests while the bench fills a store through the batch endpoints."""
FILL_SECONDS = 900.0
"""The bound on filling a store (``--size`` jobs included): slower than that fails the run."""
SDK_CHUNK = 5 * MAX_BATCH
"""Jobs per ``Client.submit_many`` call in the SDK part."""
SIZE = 1_000_000
QUICK_SIZE = 20_000
QUICK_SECONDS = 2.0


class BenchError(RuntimeError):
    pass


class RanDry(BenchError):
    """A run used up its supply of jobs (or ids): its figures would count idle answers."""


@dataclass
class Result:
    server: str
    endpoint: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float
    items: int | None = None
    """Jobs counted inside the answers by a batch script; ``None`` for a one-job script."""
    short: int = 0

    @property
    def jobs(self) -> int:
        return self.requests if self.items is None else self.items

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per request: unlike req/s, barely moved by other load."""
        return self.cpu_seconds / self.requests * 1e6


@dataclass(frozen=True)
class Load:
    """One kind of wrk run: what it is called in the table, and what it does to the store."""

    name: str
    script: str
    kind: str
    """health, submit (makes jobs), next (takes queued ones) or complete (ends running ones)."""
    per: int = 1
    """Jobs per request; above 1 it is a batch, reported in jobs/s."""
    args: tuple[str, ...] = ()


HEALTH = Load("health", "health.lua", "health")
SUBMIT = Load("submit", "submit.lua", "submit")
NEXT = Load("next", "next.lua", "next")
COMPLETE = Load("complete", "complete.lua", "complete")
SUBMIT_ARRAY = Load(f"submit[{ARRAY}]", "submit_many.lua", "submit", ARRAY)
NEXT_COUNT = Load(f"next?count={CLAIM}", "next_many.lua", "next", CLAIM, (str(CLAIM),))
COMPLETE_ARRAY = Load(f"complete[{ARRAY}]", "complete_many.lua", "complete", ARRAY)
SUPPLY = {"next": "submitted", "complete": "running"}
"""The jobs each kind of run uses up: the state they must be in beforehand."""


@dataclass
class Row:
    """One line of the table: a rate (or a size in MB) with what it is compared with."""

    part: str
    server: str
    measure: str
    value: float
    unit: str
    cpu_us: float | None = None
    """Server CPU per request (per job for jobs/s)."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio: float | None = None
    cpu_ratio: float | None = None
    """The same comparison in CPU per request (per job): what the ratio would be if both were
    bound by the same CPU, and steadier than req/s on a shared machine."""
    of: str = ""
    goal: str = ""
    met: bool | None = None
    stored: int | None = None
    """Jobs in the store when the run started."""
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, op: str, bound: float, *, on: str = "ratio") -> Row:
        """Set the goal ``<on> <op> <bound>`` and whether this row meets it."""
        figure = self.ratio if on == "ratio" else self.value
        self.goal = f"{'' if on == 'ratio' else self.unit + ' '}{op} {bound:g}"
        if figure is not None:
            self.met = figure >= bound if op == ">=" else figure < bound
        return self


def cpu_ratio(cheap: Row, dear: Row) -> float | None:
    """``cheap``'s CPU per request (or job) over ``dear``'s."""
    if cheap.cpu_us is None or not dear.cpu_us:
        return None
    return cheap.cpu_us / dear.cpu_us


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (granian's workers, if any), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children.get(pid, [])
    return pids


class Server:
    """One server process; ``name`` is ``sq`` (the real ``sq serve``) or a bench candidate."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        synchronous: str,
        *,
        release: Path | None = None,
        share: Server | None = None,
        options: Sequence[str] = QUIET,
        label: str = "",
        db: Path | None = None,
    ) -> None:
        """``release``: the root of another source tree (an earlier release, bench/leases.py)
        whose ``sq serve`` runs instead, with this venv's Python and packages. ``share``: serve
        that server's file, as a second process beside it. ``options``: more `sq serve` options
        (logging by default). ``label`` tells apart the files of servers otherwise alike.
        ``db``: a file filled beforehand (bench/sizes.py) instead of a new one."""
        tag = f"{name}-{synchronous}" if release is None else f"{name}-{release.name}-{synchronous}"
        tag += "" if share is None else f"-beside-{share.port}"
        tag += f"-{label}" if label else ""
        self.workdir = workdir
        self.tag = tag
        self.port: int = free_port()
        self.db: Path = share.db if share is not None else db or workdir / f"{tag}.db"
        self.log = workdir / f"{tag}.log"
        # `sq serve` as shipped, or one of the candidates, with the same port, file and durability.
        if name == "sq":
            program = ["-m", "simplequeue", "serve", *options]
        else:
            program = [str(BENCH / "candidates.py"), name]
        place = ["--port", str(self.port), "--db", str(self.db), "--synchronous", synchronous]
        argv = [sys.executable, *program, *place]
        # PYTHONPATH comes before the venv's editable install of this tree on sys.path.
        env = None if release is None else {**os.environ, "PYTHONPATH": str(release / "src")}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        self.batches = False
        """Whether it answers the arrays of CONTRACT §10 (see `probe_batches`)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise BenchError(f"{name} exited with {self.process.returncode}: {tail}")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"{name} did not answer /health within 30 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process and its children (granian's workers)."""
        total = 0
        for pid in process_tree(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) of the server process and its children, in MB (10^6 B)."""
        kib = 0
        for pid in process_tree(self.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            kib += int(found.group(1)) if found else 0
        return kib * 1024 / 1e6

    def stats(self) -> dict[str, int]:
        """The counts in all: /stats without its per-queue part, whose ages move on every read
        (so that two reads of an idle store are equal)."""
        stats: dict[str, Any] = self.http.get("/stats").raise_for_status().json()
        return {name: n for name, n in stats.items() if name != "queues"}

    def settled_stats(self) -> dict[str, int]:
        """The counts once the requests wrk left in flight (at most one per connection, a
        batch's taking a few hundred ms) have landed: three reads 0.3 s apart agree (a group
        commit of them all could take one gap), for 10 s at most."""
        counts, same = self.stats(), 0
        for _ in range(33):
            time.sleep(0.3)
            counts, before = self.stats(), counts
            same = same + 1 if counts == before else 0
            if same == 2:
                break
        return counts

    def running_ids(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, str | int] = {"state": "running", "limit": 1000}
        while True:
            page = self.http.get("/jobs", params=params).raise_for_status().content
            # The bench's job ids hold no quote, and its data no "jobId" key.
            ids += [m.decode() for m in re.findall(rb'"jobId":"([^"]*)"', page)]
            if page.count(b'"jobId":"') < 1000:
                return ids
            params["after"] = ids[-1]

    def probe_batches(self) -> bool:
        """Whether the server takes §10's arrays: a one-job array, taken, then completed. A
        server that predates them answers the array with 400 (and this leaves nothing behind)."""
        job = {"jobId": f"probe-{self.port}", "description": "bench", "data": {"n": 0}}
        sent = self.http.post("/jobs/submit", json=[job])
        if sent.status_code == 400:
            return False
        sent.raise_for_status()
        taken = self.http.get("/jobs/next", params={"count": 1}).raise_for_status()
        done = self.http.post(
            "/jobs/complete", json=[{"jobId": job["jobId"], "status": "succeeded"}]
        )
        self.batches = isinstance(taken.json(), list) and done.status_code == 200
        return self.batches

    def submit_jobs(self, count: int, deadline: float) -> None:
        """Store ``count`` new jobs (queued) through arrays of MAX_BATCH, several at a time."""
        prefix = f"fill{next(FILL_RUNS)}"

        def send(start: int) -> None:
            if time.monotonic() > deadline:
                raise BenchError(f"filling the store took over {FILL_SECONDS:.0f} s")
            size = min(MAX_BATCH, count - start)
            body = ",".join(
                f'{{"jobId":"{prefix}-{n}","description":"bench","data":{{"n":{n}}}}}'
                for n in range(start, start + size)
            )
            answer = self.http.post(
                "/jobs/submit", content=f"[{body}]", headers={"Content-Type": "application/json"}
            ).raise_for_status()
            if answer.content.count(b'"status":201') != size:
                raise BenchError(f"a batch submit of {size} did not store them all")

        with ThreadPoolExecutor(FILL_THREADS) as pool:
            list(pool.map(send, range(0, count, MAX_BATCH)))

    def take_jobs(self, count: int) -> None:
        """Make ``count`` queued jobs running through ``next?count=``, several at a time."""
        left = count
        lock = threading.Lock()

        def take() -> None:
            nonlocal left
            while True:
                with lock:
                    want = min(MAX_CLAIM_COUNT, left)
                    left -= want
                if want == 0:
                    return
                answer = self.http.get("/jobs/next", params={"count": want}).raise_for_status()
                if answer.content.count(b'"jobId":"') != want:
                    raise BenchError(f"next?count={want} found fewer jobs than the counts said")

        with ThreadPoolExecutor(FILL_THREADS) as pool:
            list(pool.map(lambda _: take(), range(FILL_THREADS)))

    def stop(self) -> int:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wrk(
    server: Server, script: str, seconds: float, connections: int, threads: int, *args: str
) -> Result:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / script),
        server.url,
        "--",
        *args,
    ]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise BenchError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    summary = json.loads(line.removeprefix("BENCH "))
    if summary.get("used_up", 0) > 0:
        raise RanDry(f"{script} against {server.url} used up the ids it was given")
    errors = {k: v for k, v in summary.items() if k.endswith(("errors", "timeouts")) and v > 0}
    if errors:
        tail = server.log.read_text(errors="replace").strip().splitlines()[-3:]
        raise BenchError(
            f"{script} against {server.url}: {errors} of {summary['requests']}; "
            f"the server's log ends: {tail}"
        )
    items = summary.get("items", -1)
    return Result(
        server="",
        endpoint=script.removesuffix(".lua"),
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        cpu_seconds=server.cpu_seconds() - cpu_before,
        items=None if items < 0 else items,
        short=max(0, summary.get("short", 0)),
    )


def fill(server: Server, state: str, want: float, rps: float, args: argparse.Namespace) -> None:
    """Submit (for ``submitted``) or take (for ``running``) jobs, unmeasured, until ``want``.

    ``rps`` is a first guess of the rate; each round then uses what the one before achieved.
    Through wrk's one-job scripts, for servers without batches (and bench/leases.py).
    """
    script = {"submitted": "submit.lua", "running": "next.lua"}[state]
    for _ in range(8):
        have = server.stats()[state]
        if have >= want:
            return
        if state == "running":
            fill(server, "submitted", (want - have) * 1.5 + args.connections, rps, args)
        seconds = min(60.0, (want - have) / rps * 1.1 + 1)
        prefix = f"fill{next(FILL_RUNS)}"
        rps = wrk(server, script, seconds, args.connections, args.threads, prefix).rps
    raise BenchError(f"could not fill {want:.0f} {state} jobs")


def top_up(server: Server, state: str, want: int, args: argparse.Namespace) -> None:
    """At least ``want`` jobs in ``state`` (submitted or running): through the batch endpoints
    when the server has them, else through wrk."""
    have = server.stats()[state]
    if have >= want:
        return
    if not server.batches:
        fill(server, state, want, 1000, args)
        return
    if state == "running":
        top_up(server, "submitted", want - have + args.connections, args)
        server.take_jobs(want - have)
    else:
        server.submit_jobs(want - have, time.monotonic() + FILL_SECONDS)


def measure(
    server: Server, load: Load, seconds: float, args: argparse.Namespace
) -> tuple[Result, int]:
    """One wrk run of ``load``, checked against the store's counts; and the jobs stored when it
    began. Raises `RanDry` if it used up its supply, `BenchError` on any other mismatch."""
    c, t = args.connections, args.threads
    before = server.settled_stats()  # first, so the ids below are all still running
    extra = list(load.args)
    if load.kind == "submit":
        extra = [f"s{next(FILL_RUNS)}", str(load.per)]
    elif load.kind == "complete":
        ids = server.workdir / f"{server.tag}-running.txt"
        ids.write_text("\n".join(server.running_ids()) + "\n")
        extra = [str(ids), str(t), str(load.per)]
    result = wrk(server, load.script, seconds, c, t, *extra)
    result.endpoint = load.name
    after = server.settled_stats()
    jobs, slack = result.jobs, c * load.per  # wrk does not count the last request of each
    if load.kind == "next" and (after["submitted"] == 0 or result.short):
        raise RanDry(f"{load.name} ran the queue low: {result.short} short answers")
    if load.per > 1 and load.kind != "next" and jobs != result.requests * load.per:
        raise BenchError(f"{load.name}: {jobs} items accepted in {result.requests} arrays")
    changed = {
        "health": 0,
        "submit": after["total"] - before["total"],
        "next": before["submitted"] - after["submitted"],
        "complete": after["succeeded"] - before["succeeded"],
    }[load.kind]
    if load.kind != "health" and not 0 <= changed - jobs <= slack:
        raise BenchError(f"{load.name}: {jobs} jobs in 2xx answers, the store's counts {changed}")
    return result, before["total"]


def supplied(
    server: Server, load: Load, seconds: float, guess: float, args: argparse.Namespace
) -> tuple[Result, int]:
    """``measure``, after topping up the jobs it uses up to HEADROOM times what a one-second
    probe of the same load used (the probe's own supply grows fourfold until it lasts)."""
    state = SUPPLY.get(load.kind)
    if state is None:
        return measure(server, load, seconds, args)
    need = max(1000, int(guess))
    for _ in range(5):
        top_up(server, state, need, args)
        try:
            probe, _ = measure(server, load, 1, args)
            break
        except RanDry:
            need *= 4
    else:
        raise BenchError(f"{load.name}: no supply lasted a one-second probe")
    rate = probe.jobs / probe.seconds
    top_up(server, state, int(HEADROOM * rate * seconds) + args.connections * load.per, args)
    return measure(server, load, seconds, args)


def run_loads(
    server: Server, loads: Sequence[Load], args: argparse.Namespace, part: str, label: str
) -> list[Row]:
    """Each of ``loads`` on ``server`` in turn (the first /health after a warm-up): one row
    each, its ratio to this server's /health (to the one-job load of the same kind, for a
    batch)."""
    rows: list[Row] = []
    d, c, t = args.duration, args.connections, args.threads
    by_kind: dict[str, Row] = {}
    for load in loads:
        print(f"   {label}: {load.name}", file=sys.stderr, flush=True)
        if load.kind == "health":
            wrk(server, "health.lua", min(2, d), c, t)  # warm-up
        # A first guess of the probe's supply: the fastest rate seen on this server so far.
        guess = 2 * max([r.value for r in rows if r.unit != "MB"] + [1000])
        result, stored = supplied(server, load, d, guess, args)
        batch = load.per > 1
        row = Row(
            part,
            label,
            load.name,
            result.jobs / result.seconds if batch else result.rps,
            "jobs/s" if batch else "req/s",
            result.cpu_seconds / max(1, result.jobs) * 1e6,
            result.p50_ms,
            result.p99_ms,
            stored=stored,
            extra={"requests": result.requests, "jobs": result.jobs, "seconds": result.seconds},
        )
        base = by_kind.get("health" if not batch else load.kind)
        if base is not None:
            row.ratio, row.of = row.value / base.value, f"{base.measure} (req/s)"
            row.cpu_ratio = cpu_ratio(base, row)
        if not batch:
            by_kind[load.kind] = row
        rows.append(row)
    return rows


def serve(
    name: str,
    synchronous: str,
    workdir: Path,
    label: str,
    body: Callable[[Server], list[Row]],
    *,
    options: Sequence[str] = QUIET,
) -> list[Row]:
    """Start a server, run ``body`` against it, stop it: ``sq serve`` must then exit 0."""
    print(f"-- {label}", file=sys.stderr, flush=True)
    if name == "sq":
        options = [*options, "--lease-seconds", LEASE_SECONDS]
    started = time.monotonic()
    server = Server(name, workdir, synchronous, options=options, label=str(next(FILL_RUNS)))
    try:
        rows = body(server)
    finally:
        code = server.stop()
    print(f"   ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    # uvicorn re-raises the signal after its clean shutdown, so only `sq serve` must exit 0.
    if code != 0 and name == "sq":
        raise BenchError(f"{label} exited with {code} on SIGTERM: see {server.log}")
    return rows


def batch_loads(server: Server, loads: Sequence[Load]) -> list[Load]:
    """``loads``, without the batch ones if the server does not take arrays (said once)."""
    if server.batches or server.probe_batches():
        return list(loads)
    print("   (no batches: the server answers a JSON array with 400; skipped)", file=sys.stderr)
    return [load for load in loads if load.per == 1]


def part_endpoints(name: str, workdir: Path, args: argparse.Namespace, log: Options) -> list[Row]:
    """The endpoints beside /health, on a store holding STORED jobs; batches if the server
    has them."""
    label = f"{name}, full"

    def body(server: Server) -> list[Row]:
        loads = batch_loads(
            server, [HEALTH, SUBMIT, NEXT, COMPLETE, SUBMIT_ARRAY, NEXT_COUNT, COMPLETE_ARRAY]
        )
        top_up(server, "submitted", STORED, args)
        rows = run_loads(server, loads, args, "endpoints", label)
        goals = {"next": 0.5, "submit": 0.33, "complete": 0.33}
        for row in rows:
            if row.measure in goals:
                row.check(">=", goals[row.measure])
        return rows

    return serve(name, "full", workdir, label, body, options=log.off)


def part_durable(
    workdir: Path, args: argparse.Namespace, full: list[Row], log: Options
) -> list[Row]:
    """submit (single and array) at --synchronous normal; the ratio is full's rate to this."""

    def body(server: Server) -> list[Row]:
        loads = batch_loads(server, [HEALTH, SUBMIT, SUBMIT_ARRAY])
        return run_loads(server, loads, args, "durable", "sq, normal")

    rows = serve("sq", "normal", workdir, "sq, normal", body, options=log.off)
    for row in rows:
        twin = next((r for r in full if r.measure == row.measure), None)
        if twin is not None and row.measure != "health":
            row.ratio, row.of = twin.value / row.value, "full / normal"
            row.cpu_ratio = cpu_ratio(row, twin)
            row.check(">=", 0.8)
    return rows


def part_log(workdir: Path, args: argparse.Namespace, full: list[Row], log: Options) -> list[Row]:
    """The same loads with the access log on; the ratio is on to off (the endpoints part)."""
    label = "sq, full, access log on"

    def body(server: Server) -> list[Row]:
        top_up(server, "submitted", STORED, args)
        return run_loads(server, [HEALTH, SUBMIT, NEXT], args, "access log", label)

    rows = serve("sq", "full", workdir, label, body, options=log.on)
    for row in rows:
        twin = next(r for r in full if r.measure == row.measure)
        row.ratio, row.of = row.value / twin.value, "on / off"
        row.cpu_ratio = cpu_ratio(twin, row)
    return rows


def produce(url: str, prefix: str, seconds: float, go: Any, out: Any) -> None:
    """One producer process of the SDK part: ``submit_many`` in chunks until ``seconds`` pass,
    then (jobs, start, end, refused items) on ``out``. Runs in a child process."""
    from simplequeue import Client

    with Client(url) as client:
        go.wait()
        start, made, refused = time.monotonic(), 0, 0
        while time.monotonic() - start < seconds:
            jobs = [
                {"job_id": f"{prefix}-{n}", "description": "bench", "data": {"n": n}}
                for n in range(made, made + SDK_CHUNK)
            ]
            results = client.submit_many(jobs)
            refused += len(jobs) - len(results) + sum(item.status != 201 for item in results)
            made += len(jobs)
        out.put((made, start, time.monotonic(), refused))


def part_sdk(workdir: Path, args: argparse.Namespace, log: Options) -> list[Row]:
    """``Client.submit_many`` from 1 and from 2 producer processes, on one fresh server."""
    import simplequeue

    if not hasattr(simplequeue.Client, "submit_many"):
        print("-- SDK: skipped, simplequeue.Client has no submit_many yet", file=sys.stderr)
        return []
    label = "sq, full, SDK"

    def body(server: Server) -> list[Row]:
        wrk(server, "health.lua", min(2, args.duration), args.connections, args.threads)
        rows = []
        spawn = multiprocessing.get_context("spawn")
        for producers in (1, 2):
            print(f"   {label}: {producers} producer(s)", file=sys.stderr, flush=True)
            go, out = spawn.Event(), spawn.Queue()
            children = [
                spawn.Process(
                    target=produce,
                    args=(server.url, f"sdk{producers}-{p}", args.duration, go, out),
                )
                for p in range(producers)
            ]
            for child in children:
                child.start()
            time.sleep(1)  # their imports, before the clock starts
            before, cpu = server.settled_stats(), server.cpu_seconds()
            go.set()
            reports = [out.get(timeout=args.duration + 300) for _ in children]
            cpu = server.cpu_seconds() - cpu
            for child in children:
                child.join()
                if child.exitcode != 0:
                    raise BenchError(f"an SDK producer exited with {child.exitcode}")
            made = sum(r[0] for r in reports)
            refused = sum(r[3] for r in reports)
            seconds = max(r[2] for r in reports) - min(r[1] for r in reports)
            stored = server.settled_stats()["total"] - before["total"]
            if refused or stored != made:
                raise BenchError(f"submit_many: {made} sent, {refused} refused, {stored} stored")
            row = Row(
                "SDK",
                label,
                f"submit_many, {producers} producer{'s' * (producers > 1)}",
                made / seconds,
                "jobs/s",
                cpu / made * 1e6,
                stored=before["total"],
            )
            rows.append(row.check(">=", 30_000, on="value"))
        return rows

    return serve("sq", "full", workdir, label, body, options=log.off)


def part_size(workdir: Path, args: argparse.Namespace, log: Options) -> list[Row]:
    """bench/sizes.py: the endpoints at 1,000 and at ``--size`` jobs stored, with queues and
    priorities in use, each as the ratio of the two."""
    import sizes  # it imports this module, as `run`: see the end of this file

    return sizes.part_size(workdir, args, log.off)


@dataclass(frozen=True)
class Options:
    """`sq serve`'s logging options with the access log off and on."""

    off: tuple[str, ...]
    on: tuple[str, ...]


def log_options(override: str | None) -> Options:
    """From ``sq serve --help`` as it is now: with an ``--access-log`` flag, the server as
    shipped (``--log-level info``) without it and with it; before that flag, ``--log-level
    info`` turned the per-request access log on, and ``warning`` off."""
    if override:
        return Options(QUIET, tuple(shlex.split(override)))
    argv = [sys.executable, "-m", "simplequeue", "serve", "--help"]
    env = {**os.environ, "COLUMNS": "200"}
    text = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    if "--access-log" not in text:
        return Options(QUIET, ("--log-level", "info"))
    return Options(("--log-level", "info"), ("--log-level", "info", "--access-log"))


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    git = ["git", "-C", str(BENCH.parent)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    )
    dirty = subprocess.run(
        [*git, "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "nproc": os.cpu_count(),
        "cpu": model.group(1) if model else platform.processor(),
        "kernel": platform.release(),
        "load": os.getloadavg(),
        "commit": head.stdout.strip(),
        "uncommitted": bool(dirty.stdout.strip()),
    }


def header(info: dict[str, Any], args: argparse.Namespace, log: Options) -> str:
    load = " ".join(f"{x:.2f}" for x in info["load"])
    return (
        f"{info['date']}  nproc {info['nproc']}, {info['cpu']}, Linux {info['kernel']}, "
        f"load average {load} at the start\n"
        f"commit {info['commit']}{' with uncommitted changes' if info['uncommitted'] else ''}; "
        f"wrk {args.threads} threads, {args.connections} connections, {args.duration:g} s a run "
        f"(sharing the cores with the server); access log off: {' '.join(log.off)}, "
        f"on: {' '.join(log.on)}"
    )


def table(results: list[Result]) -> str:
    """bench/leases.py's table: results beside their server's /health."""
    rows = [
        f"{'server':<36} {'endpoint':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ceiling':>7} {'CPU us/req':>10}"
    ]
    ceiling = {r.server: r.rps for r in results if r.endpoint == "health"}
    for r in results:
        ratio = r.rps / ceiling[r.server]
        rows.append(
            f"{r.server:<36} {r.endpoint:<12} {r.rps:>8.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{ratio:>7.2f} {r.cpu_us:>10.0f}"
        )
    return "\n".join(rows)


COLUMNS = (
    ("part", "<10"),
    ("server", "<28"),
    ("measure", "<28"),
    ("rate", ">8"),
    ("unit", "<6"),
    ("CPU us", ">7"),
    ("p50 ms", ">7"),
    ("p99 ms", ">7"),
    ("stored", ">9"),
    ("ratio", ">6"),
    ("(CPU)", ">6"),
    ("of", "<18"),
    ("goal", "<15"),
    ("met", "<3"),
)


def render(rows: list[Row], *, markdown: bool = False) -> str:
    """The table: CPU us per request (per job for jobs/s) beside the rate and the ratio."""

    def num(x: float | None, spec: str) -> str:
        return "" if x is None else format(x, spec)

    cells = [[name for name, _ in COLUMNS]]
    for r in rows:
        met = {None: "", True: "yes", False: "NO"}[r.met]
        cells.append(
            [
                *(r.part, r.server, r.measure, f"{r.value:.0f}", r.unit),
                *(num(r.cpu_us, ".0f"), num(r.p50_ms, ".2f"), num(r.p99_ms, ".2f")),
                *(num(r.stored, ","), num(r.ratio, ".2f"), num(r.cpu_ratio, ".2f")),
                *(r.of, r.goal, met),
            ]
        )
    if markdown:
        rule = ["---:" if spec[0] == ">" else "---" for _, spec in COLUMNS]
        return "\n".join(f"| {' | '.join(line)} |" for line in [cells[0], rule, *cells[1:]])
    specs = [spec for _, spec in COLUMNS]
    return "\n".join(
        " ".join(format(cell, spec) for cell, spec in zip(line, specs, strict=True)).rstrip()
        for line in cells
    )


def run_parts(workdir: Path, args: argparse.Namespace, log: Options, rows: list[Row]) -> None:
    """Every part asked for, in order, each adding its rows to ``rows`` as it ends (so that a
    failure still shows the figures before it)."""
    names = CANDIDATES if args.compare else [] if args.server == "sq" else [args.server]
    for name in names:
        rows += part_endpoints(name, workdir, args, log)
    if args.server != "sq" and not args.compare:
        return
    full = part_endpoints("sq", workdir, args, log)
    rows += full
    if "durable" not in args.skip:
        rows += part_durable(workdir, args, full, log)
    if "log" not in args.skip:
        rows += part_log(workdir, args, full, log)
    if "sdk" not in args.skip:
        rows += part_sdk(workdir, args, log)
    if args.size:
        rows += part_size(workdir, args, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="sq",
        choices=["sq", *CANDIDATES],
        help="sq: every part against `sq serve`; otherwise one candidate's endpoints",
    )
    parser.add_argument(
        "--compare", action="store_true", help="every candidate's endpoints, then every part"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds a run (10)")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_SECONDS:g} s a run, small sizes"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help=f"jobs stored for the size part ({SIZE:,}; {QUICK_SIZE:,} with --quick; 0 skips)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["durable", "log", "sdk"],
        help="leave out a part (repeatable); --size 0 leaves out the size part",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--access-log",
        metavar="OPTIONS",
        help="`sq serve` options that turn the access log on, as one string after '=' "
        "(default: read from `sq serve --help`)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures there")
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (bench/README.md)"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = QUICK_SECONDS
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else SIZE
    if shutil.which("wrk") is None:
        sys.exit("bench/run.py needs wrk: apt-get install -y wrk")

    info = machine()
    log = log_options(args.access_log)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sq-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            run_parts(Path(tmp), args, log, rows)
        except (BenchError, httpx.HTTPError, subprocess.SubprocessError) as exc:
            print(render(rows), file=sys.stderr)
            sys.exit(f"FAILED: {exc}")
    info["seconds"] = round(time.monotonic() - started)
    info["load_end"] = os.getloadavg()
    print(header(info, args, log))
    print(render(rows, markdown=args.markdown))
    verdicts = [r.met for r in rows if r.met is not None]
    print(
        f"goals: {verdicts.count(True)} met, {verdicts.count(False)} not; "
        f"{info['seconds']} s in all, load average {info['load_end'][0]:.2f} at the end"
    )
    if args.json:
        figures = {"run": info, "args": vars(args) | {"json": str(args.json)}, "rows": rows}
        args.json.write_text(json.dumps(figures, default=asdict, indent=1) + "\n")


if __name__ == "__main__":
    # As the module `run`, which sizes.py imports: one copy of each class (BenchError's
    # `except` must catch what sizes.py raises).
    import run

    run.main()
