"""Several real `sq serve` processes on one PostgreSQL database (CONTRACT §4, issue 12): the
queue keeps its promises across servers as on one. Every job is handed out and completed once,
``/stats`` is the same whichever server answers, a server killed with SIGKILL or PostgreSQL
restarting loses nothing acknowledged, and a long-poll on one server hears of a submit on
another: at once by NOTIFY, or by the server's look (``--look-interval``) while it cannot
listen.

The workers are SDK ``Client.work`` loops in child processes (`WORKER`), one process per server;
each prints a line per handler call and per 5xx answer it got, which the test reads (`Tally`),
so it knows what ran where without trusting the servers' own account.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest

from simplequeue import Client, ConnectionFailed, Job, JobState, Unavailable
from simplequeue.store.postgres_database import RECONNECT_FIRST, RECONNECT_MAX, Q
from tests import postgres
from tests.postgres import Cluster, Role, backends_of, restarts_postgres, role_owning
from tests.servers import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

postgres_db = postgres.postgres_db
"""A fresh database for each test (pytest finds a fixture among the module's names)."""

SERVERS = 3
WORKERS = 16
"""``Client.work`` loops in all, spread over the servers' worker processes."""
JOBS = 5_000
BATCH = 100
"""Jobs per submit request: a client's batch, small enough that several are in flight when a
server dies or the database restarts."""
LEASE = "5"
"""Seconds a lease lasts where a test waits for leases to end: short, so that the jobs a dead
server's workers held come back soon, yet several heartbeats long on a busy machine."""
MAX_ATTEMPTS = "10"
"""Where leases are short: a job whose lease ran out on a busy machine is handed out again, and
must not run out of attempts because of it (its outcome is still recorded once)."""
GIVE_UP = 120.0
"""Seconds any one phase (submitting, working off the queue) may take before the test fails."""
PAUSE = 0.2
"""Seconds a submitter waits before sending a batch no server took to the next one."""
WAKE_BOUND = 0.5
"""A long-poll on one server is answered within this of a submit on another (issue 12)."""
WAKES = 3
"""Times a test checks `WAKE_BOUND` in a row, one right after another. Where only the NOTIFY
can wake a long-poll that soon, a server's look may still land in the first check's half
second; the next check then starts right after that look, too soon for another."""
RARE_LOOK = 5.0
"""``--look-interval`` where only the NOTIFY may wake a long-poll within `WAKE_BOUND`: the look
lands in one such half second one time in ten."""
FALLBACK_LOOK = 2.0
"""``--look-interval`` of servers whose LISTEN connection is cut: with `FALLBACK_MARGIN`, short
of the watcher's failed tries to reconnect once they are `RECONNECT_MAX` apart (each wakes the
long-polls too), yet four times `WAKE_BOUND`, for the checks once it listens again."""
FALLBACK_MARGIN = 1.0
"""Seconds past `FALLBACK_LOOK` that the look's own work, and a busy machine, may take."""
WATCHER_FAILED = "listening for other servers' jobs failed"
"""What a server logs each time its watcher loses its connection or fails to reconnect."""
SETTLE = 0.5
"""Seconds given a long-poll to join its server's line before the submit that should wake it.
No answer tells when it has; if it has not, it finds the job on its first look and the test is
weaker, never wrong."""

WORKER = """
import sys, threading
import httpx
from simplequeue import Client

url, server, loops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()

def say(line):
    with lock:  # one whole line at a time: the loops run in threads
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

def seen(response):
    if response.status_code >= 500:
        after = response.headers.get("retry-after", "-")
        say(f"http {response.status_code} {after} {response.request.url.path}")

go = threading.Event()
go.set()

def handler(job):
    say("job " + job.job_id)
    if not go.is_set():
        say("held " + job.job_id)
        go.wait()
    return {"server": server}

stop = threading.Event()

def loop():
    with httpx.Client(event_hooks={"response": [seen]}) as http, Client(url, http=http) as queue:
        queue.work(handler, wait=1, stop=stop)

threads = [threading.Thread(target=loop) for _ in range(loops)]
for thread in threads:
    thread.start()
say("ready")
for order in sys.stdin:  # until the test closes it: then stop, finishing the jobs in hand
    if order == "hold\\n":  # handlers from now on wait for "go"
        go.clear()
    elif order == "go\\n":
        go.set()
go.set()
stop.set()
for thread in threads:
    thread.join()
"""


class Tally:
    """What the clients saw: submits acknowledged, handler calls per job id and by which
    server's workers (and those held, `Crew.order`), and every 5xx answer (status, Retry-After
    or ``-``, path)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.invoked: Counter[str] = Counter()
        self.invoked_by: dict[int, set[str]] = {n: set() for n in range(SERVERS)}
        self.held: dict[int, set[str]] = {n: set() for n in range(SERVERS)}
        self.server_errors: list[tuple[int, str, str]] = []
        self.acknowledged = 0
        """Jobs whose submit was acknowledged."""
        self.ready = 0
        """Worker processes that have started their loops."""
        self.ended: list[int] = []
        """The servers whose worker processes have ended (only `Crew.stop` ends them)."""

    def read(self, server: int, stream: IO[str]) -> None:
        for line in stream:
            kind, _, rest = line.rstrip("\n").partition(" ")
            assert kind in {"ready", "job", "held", "http"}, f"a worker printed {line!r}"
            with self.changed:
                if kind == "ready":
                    self.ready += 1
                elif kind == "job":
                    self.invoked[rest] += 1
                    self.invoked_by[server].add(rest)
                elif kind == "held":
                    self.held[server].add(rest)
                else:
                    status, after, path = rest.split(" ", 2)
                    self.server_errors.append((int(status), after, path))
                self.changed.notify_all()
        with self.changed:
            self.ended.append(server)
            self.changed.notify_all()

    def saw(self, response: httpx.Response) -> None:
        """An httpx response hook, for the test's own clients."""
        if response.status_code >= 500:
            after = response.headers.get("retry-after", "-")
            with self.changed:
                self.server_errors.append((response.status_code, after, response.url.path))

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self.changed:
            self.changed.wait_for(lambda: predicate() or self.ended, GIVE_UP)
            assert not self.ended, f"the workers of server {self.ended} ended (worker-N.log)"
            assert predicate(), f"{what} within {GIVE_UP:g} s"

    def unexpected_answers(self) -> list[tuple[int, str, str]]:
        """The 5xx answers that were not 503 with a Retry-After: none may be (§12)."""
        with self.changed:
            return [e for e in self.server_errors if e[0] != 503 or e[1] == "-"]


class Crew:
    """The worker processes, one per server, and the threads reading what they print."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.tally = Tally()
        self.processes: list[subprocess.Popen[str]] = []
        self.readers: list[threading.Thread] = []

    def spread(self, servers: list[ServerProcess]) -> Tally:
        """`WORKERS` loops over ``servers``, as evenly as they go, once all have started."""
        for n, server in enumerate(servers):
            loops = WORKERS // len(servers) + (n < WORKERS % len(servers))
            with open(self.logs / f"worker-{n}.log", "w") as log:
                process = subprocess.Popen(
                    [sys.executable, "-c", WORKER, server.url, str(n), str(loops)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            assert process.stdout is not None
            reader = threading.Thread(target=self.tally.read, args=(n, process.stdout))
            reader.start()
            self.processes.append(process)
            self.readers.append(reader)
        self.tally.wait_for(lambda: self.tally.ready == len(servers), "the workers started")
        return self.tally

    def order(self, server: int, order: str) -> None:
        """``hold``: the handlers of ``server``'s workers wait (each saying which job it holds)
        until ``go``."""
        stdin = self.processes[server].stdin
        assert stdin is not None
        stdin.write(order + "\n")
        stdin.flush()

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin and not process.stdin.closed:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a worker of a dead server, still retrying
                process.kill()
                process.wait(timeout=10)
        for reader in self.readers:
            reader.join(timeout=10)
        for process in self.processes:
            assert process.stdout is not None
            process.stdout.close()


@pytest.fixture
def crew(tmp_path: Path) -> Iterator[Crew]:
    workers = Crew(tmp_path)
    yield workers
    workers.stop()


@pytest.fixture
def fleet(
    postgres_db: str, serve: Callable[..., ServerProcess]
) -> Callable[..., list[ServerProcess]]:
    """``fleet(n, *options)``: ``n`` real `sq serve` processes on this test's database."""
    return lambda n, *options: [serve(postgres_db, *options) for _ in range(n)]


@contextmanager
def client(url: str, tally: Tally) -> Iterator[Client]:
    with (
        httpx.Client(event_hooks={"response": [tally.saw]}) as http,
        Client(url, http=http) as queue,
    ):
        yield queue


def job_ids() -> list[str]:
    return [f"job-{n:04d}" for n in range(JOBS)]


def submit_share(servers: list[ServerProcess], first: int, ids: list[str], tally: Tally) -> None:
    """Submit ``ids`` in batches through ``servers[first]``. A batch a server does not take (it
    is dead, or busy beyond the client's own retries) goes to the next one, as a load balancer
    would send it, until one acknowledges every job in it (201, or 200: it was already in)."""
    deadline = time.monotonic() + GIVE_UP
    at = first
    with ExitStack() as stack:
        clients = [stack.enter_context(client(server.url, tally)) for server in servers]
        for start in range(0, len(ids), BATCH):
            batch = [{"job_id": job_id} for job_id in ids[start : start + BATCH]]
            while True:
                try:
                    results = clients[at].submit_many(batch)
                    break
                except (ConnectionFailed, Unavailable):
                    assert time.monotonic() < deadline, f"no server took a batch in {GIVE_UP} s"
                    at = (at + 1) % len(servers)
                    time.sleep(PAUSE)
            assert [r.status for r in results if r.status not in {200, 201}] == []
            with tally.changed:
                tally.acknowledged += len(batch)
                tally.changed.notify_all()


@contextmanager
def submitting(servers: list[ServerProcess], tally: Tally) -> Iterator[None]:
    """While inside, the `JOBS` jobs are being submitted, a share through each server at once;
    leaving waits until every one is acknowledged (and re-raises what a submitter raised)."""
    ids = job_ids()
    with ThreadPoolExecutor(len(servers)) as pool:
        shares = [
            pool.submit(submit_share, servers, n, ids[n :: len(servers)], tally)
            for n in range(len(servers))
        ]
        yield
        for share in shares:
            share.result()


def settled(server: ServerProcess, tally: Tally) -> list[Job]:
    """Every job, once none is waiting or running any more (the last completions are sent a
    little after their handlers return, so this polls), and every handler call is read."""
    deadline = time.monotonic() + GIVE_UP
    with client(server.url, tally) as queue:
        while (stats := queue.stats()).succeeded + stats.failed < JOBS:
            assert time.monotonic() < deadline, f"not all jobs finished in {GIVE_UP:g} s: {stats}"
            time.sleep(0.1)
        jobs = list(queue.iter_jobs(page_size=1000))
    tally.wait_for(lambda: len(tally.invoked) == JOBS, "every job's handler call read")
    return jobs


def assert_once(jobs: list[Job], tally: Tally) -> None:
    """Every job succeeded, its outcome recorded once: each attempt before its last ended with
    the lease running out (taken back, never failed), and its result is from a worker that ran
    it."""
    assert sorted(job.job_id for job in jobs) == job_ids()
    for job in jobs:
        assert job.state is JobState.SUCCEEDED, job
        assert {error.error for error in job.errors} <= {"lease expired"}, job
        assert job.attempts == 1 + len(job.errors), job
        assert job.job_id in tally.invoked_by[job.result["server"]], job
    assert tally.unexpected_answers() == []


def stats_everywhere(servers: list[ServerProcess]) -> list[dict[str, Any]]:
    return [httpx.get(f"{server.url}/stats").json() for server in servers]


FINISHED = {
    "submitted": 0,
    "running": 0,
    "succeeded": JOBS,
    "failed": 0,
    "total": JOBS,
    "queues": {
        "default": {
            "submitted": 0,
            "running": 0,
            "succeeded": JOBS,
            "failed": 0,
            "oldestDueAgeSeconds": None,
        }
    },
    "submittedEver": JOBS,
    "completedEver": JOBS,
}
"""``GET /stats`` once every job succeeded (a lease that ran out finished no job)."""


def test_three_servers_hand_out_and_complete_every_job_once(
    fleet: Callable[..., list[ServerProcess]], crew: Crew
) -> None:
    servers = fleet(SERVERS)
    tally = crew.spread(servers)
    with submitting(servers, tally):
        pass  # the workers take the jobs as they come
    jobs = settled(servers[0], tally)
    assert_once(jobs, tally)
    assert tally.invoked == Counter(job_ids())  # each handler call once, on one server only
    assert [job for job in jobs if job.attempts != 1] == []
    assert all(tally.invoked_by.values()), "a server's workers got no job"
    assert stats_everywhere(servers) == [FINISHED] * SERVERS


def test_a_killed_server_loses_nothing_and_its_workers_jobs_come_back(
    fleet: Callable[..., list[ServerProcess]], crew: Crew
) -> None:
    servers = fleet(SERVERS, "--lease-seconds", LEASE, "--max-attempts", MAX_ATTEMPTS)
    tally = crew.spread(servers)
    doomed = SERVERS - 1
    with submitting(servers, tally):
        # Mid-run (on this machine, batches are still in flight), while a worker of the doomed
        # server is running a job: then its workers can no longer complete anything.
        tally.wait_for(lambda: len(tally.invoked) >= JOBS // 5, "a fifth of the jobs run")
        crew.order(doomed, "hold")
        tally.wait_for(lambda: bool(tally.held[doomed]), "a job running on the doomed server")
        servers[doomed].kill()  # its submitter's batches go to the next server from now on
        crew.order(doomed, "go")
    survivors = servers[:doomed]
    jobs = settled(survivors[0], tally)
    assert_once(jobs, tally)
    # The jobs the dead server's workers had in hand (running, like those held, or about to)
    # could not be completed through it: each was taken back when its lease ran out, and
    # finished by another server's worker.
    came_back = {
        job.job_id: job
        for job in jobs
        if job.job_id in tally.invoked_by[doomed] and job.result != {"server": doomed}
    }
    assert tally.held[doomed] <= came_back.keys()
    assert [job for job in came_back.values() if not job.errors] == []
    assert stats_everywhere(survivors) == [FINISHED] * len(survivors)


def long_poll_woken(waiter: ServerProcess, submitter: ServerProcess, job_id: str) -> float:
    """Seconds from the answer to a submit on ``submitter`` to the answer, with that job, of a
    long-poll (``wait=10``) already waiting on ``waiter``."""
    with ThreadPoolExecutor(1) as pool:
        polled = pool.submit(
            lambda: (httpx.get(f"{waiter.url}/jobs/next?wait=10", timeout=20), time.monotonic())
        )
        time.sleep(SETTLE)
        assert not polled.done()
        submitted = httpx.post(f"{submitter.url}/jobs/submit", json={"jobId": job_id})
        answered = time.monotonic()
        assert submitted.status_code == 201, submitted.text
        response, woken = polled.result(timeout=20)
    assert response.status_code == 200, response.text
    assert response.json()["jobId"] == job_id
    return woken - answered


def listeners(db: str, server: ServerProcess) -> list[int]:
    """The pids of the PostgreSQL backends serving ``server``'s LISTEN connection: one while it
    listens. PostgreSQL shows no other session's LISTENs, so it is known by its last statement:
    its LISTEN, or the reading of the database's clock that only it repeats once the server is
    up (`Database.watch`)."""
    assert server.process is not None
    watching = ("LISTEN ", Q["clock"])
    return [
        backend.pid
        for backend in backends_of(db, server.process.pid)
        if backend.query.startswith(watching)
    ]


def until(predicate: Callable[[], bool], what: str) -> None:
    """Returns once ``predicate()`` holds, checking every 50 ms for at most `GIVE_UP` s."""
    deadline = time.monotonic() + GIVE_UP
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {GIVE_UP:g} s"
        time.sleep(0.05)


def listening(db: str, server: ServerProcess, instead_of: int | None = None) -> int:
    """The pid of ``server``'s LISTEN backend once it has one, and only one, other than
    ``instead_of``."""
    found: list[int] = []

    def one_new() -> bool:
        found[:] = listeners(db, server)
        return len(found) == 1 and found != [instead_of]

    until(one_new, "the server listening")
    return found[0]


def watcher_failures(server: ServerProcess) -> int:
    """How many times ``server`` has logged that its watcher lost its connection or could not
    connect (each time, it woke its waiters)."""
    assert server.log_path is not None
    return server.log_path.read_text().count(WATCHER_FAILED)


def test_a_submit_on_one_server_wakes_a_long_poll_on_another(
    fleet: Callable[..., list[ServerProcess]],
) -> None:
    # Their looks are too rare to wake a long-poll that soon: only the NOTIFY can.
    waiter, submitter = fleet(2, "--look-interval", f"{RARE_LOOK:g}")
    for n in range(WAKES):
        assert long_poll_woken(waiter, submitter, f"job-{n}") <= WAKE_BOUND


@pytest.fixture
def role(postgres_db: str) -> Iterator[Role]:
    """A role of the test's own, owning its database (servers connect as it)."""
    with role_owning(postgres_db) as made:
        yield made


def test_a_server_that_cannot_listen_still_looks_then_listens_again(
    postgres_db: str, role: Role, serve: Callable[..., ServerProcess]
) -> None:
    look = ("--look-interval", f"{FALLBACK_LOOK:g}")
    waiter, submitter = serve(role.url, *look), serve(role.url, *look)
    listener = listening(postgres_db, waiter)

    # Its LISTEN connection cut, and no new connection allowed (the pools keep theirs). Each
    # failed try to reconnect wakes the waiters too; once those tries are `RECONNECT_MAX`
    # apart, right after one, only the look can wake a long-poll within the bound.
    role.login(False)
    failed = watcher_failures(waiter)
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listener,))
    # The connection lost, then tries after 0.1 s, 0.2 s, ... doubling up to the most.
    spaced = failed + 1 + math.ceil(math.log2(RECONNECT_MAX / RECONNECT_FIRST))
    until(lambda: watcher_failures(waiter) >= spaced, "the watcher's tries spaced out")
    assert long_poll_woken(waiter, submitter, "looked") <= FALLBACK_LOOK + FALLBACK_MARGIN

    # Let in again, it listens on a new connection, which wakes it as before.
    role.login(True)
    again = listening(postgres_db, waiter, instead_of=listener)
    for n in range(WAKES):
        assert long_poll_woken(waiter, submitter, f"notified-{n}") <= WAKE_BOUND
    assert listeners(postgres_db, waiter) == [again]


@pytest.fixture
def cluster(postgres_db: str) -> Iterator[Cluster]:
    """The PostgreSQL cluster serving this test's database, up again when the test ends."""
    serving = Cluster.serving(postgres_db)
    yield serving
    serving.ensure_up()


def started_at(db: str) -> datetime:
    """When the PostgreSQL server holding ``db`` last started."""
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


@restarts_postgres
def test_servers_ride_out_a_postgres_restart(
    fleet: Callable[..., list[ServerProcess]], crew: Crew, cluster: Cluster, postgres_db: str
) -> None:
    servers = fleet(SERVERS, "--lease-seconds", LEASE, "--max-attempts", MAX_ATTEMPTS)
    tally = crew.spread(servers)
    first_started = started_at(postgres_db)
    with submitting(servers, tally):
        tally.wait_for(lambda: tally.acknowledged >= JOBS // 3, "a third of the jobs submitted")
        cluster.restart()  # while submits, hand-outs, heartbeats and completions are in flight
    jobs = settled(servers[0], tally)
    assert started_at(postgres_db) > first_started
    # Only 503s with Retry-After (or connections the SDK retried), and nothing lost.
    assert_once(jobs, tally)
    assert [
        server for server in servers if server.process and server.process.poll() is not None
    ] == []
    assert stats_everywhere(servers) == [FINISHED] * SERVERS
