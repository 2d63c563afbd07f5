"""The systems bench/cycle.py runs side by side: simplequeue, RQ, beanstalkd and RabbitMQ.

For each one, a *session* (in the bench's own process) starts or reaches its server, reads the
server's CPU time and checks its counts by the system's own means; and a *producer* and
*workers* (each in a process of its own, started by cycle.py) submit, take and complete jobs
through the system's usual Python client. The processes get a `Target`: everything they need,
picklable. See bench/README.md.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFETCH = 100
"""Jobs a batched worker holds ahead, by default (``--prefetch``): simplequeue's
``work(prefetch=)`` and RabbitMQ's ``basic_qos(prefetch_count=)``. 100 is the most one
``next?count=`` hands out."""
BATCH = 1000
"""Jobs per call of a batched producer: simplequeue's ``submit_many`` (the most one
``POST /jobs/submit`` takes) and RQ's ``enqueue_many`` in one pipeline."""
POLL = 1
"""Seconds a worker waits on an empty queue (a long-poll, beanstalkd's reserve timeout, pika's
event loop) before it looks at its stop event again: how late a worker may notice the end."""
CHECK = 0.005
"""Seconds between two looks at a count the bench is waiting for."""
START = 30.0
"""Seconds a server the bench starts has to accept connections."""
RABBITMQ = ("127.0.0.1", 5672)
REDIS = ("127.0.0.1", 6379)


class BenchError(RuntimeError):
    """The run is wrong (a job lost or done twice, a count that does not match, a server that
    failed): the bench stops and exits non-zero."""


class Skip(Exception):
    """This system cannot run here (its server, binary or client package is absent)."""


@dataclass(frozen=True)
class Target:
    """What a producer or worker process needs to reach one system."""

    kind: str
    """sq, rq, beanstalkd or rabbitmq."""
    host: str
    port: int
    queue: str
    """RQ's queue, beanstalkd's tube, RabbitMQ's queue; also the prefix of the job ids."""
    batched: bool = False
    rq_worker: str = "simple"
    """RQ's worker class: ``simple`` (SimpleWorker, the job runs in the worker's process) or
    ``fork`` (Worker, RQ's default: a forked child per job)."""
    prefetch: int = PREFETCH
    ports: tuple[int, ...] = ()
    """Several servers sharing one queue (simplequeue on PostgreSQL): the producer spreads its
    calls over them in turn and worker ``i`` uses ``ports[i % len(ports)]``. Empty: ``port``."""

    @property
    def servers(self) -> tuple[int, ...]:
        return self.ports or (self.port,)


def job_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


# ---------------------------------------------------------------- the producer and worker processes


class Tally:
    """What one worker did: the ids it took, and when its last completion was answered
    (``time.monotonic``: one clock for every process on the machine). ``counts[index]`` is its
    running total, shared with the bench, which watches the sum."""

    def __init__(self, counts: Any, index: int) -> None:
        self.counts = counts
        self.index = index
        self.ids: list[str] = []
        self.last = 0.0

    def took(self, job_id: str) -> None:
        self.ids.append(job_id)
        self.counts[self.index] += 1

    def completed(self) -> None:
        self.last = time.monotonic()


def producer_main(target: Target, n: int, box: Any, go: Any, limit: float) -> None:
    """A producer process: submit ``n`` jobs as fast as it can once ``go`` is set; report the
    time of the first submit and of the last answer, and the CPU time it spent between."""
    try:
        ready = Ready(box, go, "producer", limit)
        t0, t1 = PRODUCE[target.kind](target, job_ids(target.queue, n), ready)
        box.put(("produced", "producer", (t0, t1, ready.cpu())))
    except BaseException:
        box.put(("error", "producer", traceback.format_exc()))


def worker_main(
    target: Target, index: int, counts: Any, box: Any, go: Any, stop: Any, limit: float
) -> None:
    """A worker process: take and complete jobs from ``go`` until ``stop`` (set by the bench, or
    by the guard after ``limit`` seconds, so that no worker outlives a run gone wrong)."""
    name = f"worker {index}"
    try:
        guard = threading.Thread(target=lambda: stop.wait(limit) or stop.set(), daemon=True)
        guard.start()
        tally = Tally(counts, index)
        ready = Ready(box, go, name, limit)
        WORK[target.kind](target, tally, ready, stop)
        box.put(("done", name, (tally.ids, tally.last, ready.cpu())))
    except BaseException:
        box.put(("error", name, traceback.format_exc()))


class Ready:
    """Called once the process is connected: say so, wait for ``go``, answer the time it was
    set. The process's CPU time from then on is what it spent on the measured part (its
    imports and connecting are left out)."""

    def __init__(self, box: Any, go: Any, name: str, limit: float) -> None:
        self.box, self.go, self.name, self.limit = box, go, name, limit
        self.start = 0.0

    def __call__(self) -> float:
        self.box.put(("ready", self.name, None))
        if not self.go.wait(self.limit):
            raise TimeoutError(f"{self.name}: not told to start within {self.limit:g} s")
        self.start = time.process_time()
        return time.monotonic()

    def cpu(self) -> float:
        return time.process_time() - self.start


def produce_sq(target: Target, ids: list[str], ready: Callable[[], float]) -> tuple[float, float]:
    from simplequeue import Client

    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(Client(f"http://{target.host}:{port}")) for port in target.servers
        ]
        for client in clients:
            client.health()
        turns = itertools.cycle(clients)  # each call to the next server
        t0 = ready()
        if target.batched:
            for client, chunk in zip(turns, chunks(ids, BATCH), strict=False):
                results = client.submit_many({"job_id": job_id} for job_id in chunk)
                refused = [result for result in results if not result.ok]
                if len(results) != len(chunk) or refused:
                    raise BenchError(f"submit_many: {len(results)} answers, refused {refused[:3]}")
        else:
            for client, job_id in zip(turns, ids, strict=False):
                client.submit(job_id)
        return t0, time.monotonic()


def work_sq(target: Target, tally: Tally, ready: Callable[[], float], stop: Any) -> None:
    import httpx

    from simplequeue import Client

    servers = target.servers
    url = f"http://{target.host}:{servers[tally.index % len(servers)]}"
    if not target.batched:
        with Client(url) as client:
            client.health()
            ready()
            while not stop.is_set():
                job = client.next(wait=POLL)
                if job is not None:
                    client.complete(job.job_id, "succeeded", lease_id=job.lease_id)
                    tally.took(job.job_id)
                    tally.completed()
        return

    def answered(response: httpx.Response) -> None:
        # work() completes in batches, after the handler: the time its completions were answered.
        if response.request.method == "POST" and response.request.url.path == "/jobs/complete":
            response.read()
            tally.completed()

    with httpx.Client(base_url=url, event_hooks={"response": [answered]}) as http:
        client = Client(url, http=http)
        client.health()
        ready()
        client.work(
            lambda job: tally.took(job.job_id),
            concurrency=1,
            prefetch=target.prefetch,
            wait=POLL,
            stop=stop,
        )


def produce_rq(target: Target, ids: list[str], ready: Callable[[], float]) -> tuple[float, float]:
    import trivial
    from redis import Redis
    from rq import Queue

    with Redis(target.host, target.port) as redis:
        queue = Queue(target.queue, connection=redis)
        redis.ping()
        t0 = ready()
        if target.batched:
            for chunk in chunks(ids, BATCH):
                with redis.pipeline() as pipe:
                    data = [Queue.prepare_data(trivial.job, job_id=job_id) for job_id in chunk]
                    queue.enqueue_many(data, pipeline=pipe)
                    pipe.execute()
        else:
            for job_id in ids:
                queue.enqueue(trivial.job, job_id=job_id)
        return t0, time.monotonic()


def work_rq(target: Target, tally: Tally, ready: Callable[[], float], stop: Any) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker, Worker

    base = SimpleWorker if target.rq_worker == "simple" else Worker

    class Counted(base):
        """RQ's worker as is; the tally is kept once RQ has recorded the job as finished."""

        def execute_job(self, job: Any, queue: Any) -> None:
            super().execute_job(job, queue)
            tally.took(job.id)
            tally.completed()

    with Redis(target.host, target.port) as redis:
        queue = Queue(target.queue, connection=redis)
        worker = Counted([queue], connection=redis, name=f"{target.queue}-w{tally.index}")
        ready()

        def stop_worker() -> None:
            # RQ's own way to stop a worker: SIGTERM, a warm shutdown (the job in hand finishes).
            stop.wait()
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=stop_worker, daemon=True).start()
        worker.work(burst=False, logging_level="WARNING")


def produce_beanstalkd(
    target: Target, ids: list[str], ready: Callable[[], float]
) -> tuple[float, float]:
    import greenstalk

    with greenstalk.Client((target.host, target.port), use=target.queue) as client:
        client.stats()
        t0 = ready()
        for job_id in ids:
            client.put(job_id)
        return t0, time.monotonic()


def work_beanstalkd(target: Target, tally: Tally, ready: Callable[[], float], stop: Any) -> None:
    import greenstalk

    with greenstalk.Client((target.host, target.port), watch=target.queue) as client:
        client.stats()
        ready()
        while not stop.is_set():
            try:
                job = client.reserve(timeout=POLL)
            except greenstalk.TimedOutError:
                continue
            client.delete(job)
            tally.took(str(job.body))
            tally.completed()


def _rabbitmq(target: Target) -> Any:
    import pika

    credentials = pika.PlainCredentials("guest", "guest")
    return pika.BlockingConnection(
        pika.ConnectionParameters(target.host, target.port, credentials=credentials)
    )


def produce_rabbitmq(
    target: Target, ids: list[str], ready: Callable[[], float]
) -> tuple[float, float]:
    import pika

    connection = _rabbitmq(target)
    try:
        channel = connection.channel()
        # With confirms on, each basic_publish returns once the broker has the message (for a
        # persistent message on a durable queue: written to disk), and raises if it is refused.
        channel.confirm_delivery()
        persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        t0 = ready()
        for job_id in ids:
            channel.basic_publish("", target.queue, job_id.encode(), persistent, mandatory=True)
        return t0, time.monotonic()
    finally:
        connection.close()


def work_rabbitmq(target: Target, tally: Tally, ready: Callable[[], float], stop: Any) -> None:
    connection = _rabbitmq(target)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=target.prefetch)

        def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            channel.basic_ack(method.delivery_tag)
            tally.took(body.decode())
            tally.completed()

        ready()
        channel.basic_consume(target.queue, on_message)
        while not stop.is_set():
            connection.process_data_events(time_limit=POLL)
        channel.close()
    finally:
        connection.close()


PRODUCE: dict[str, Callable[[Target, list[str], Callable[[], float]], tuple[float, float]]] = {
    "sq": produce_sq,
    "rq": produce_rq,
    "beanstalkd": produce_beanstalkd,
    "rabbitmq": produce_rabbitmq,
}
WORK: dict[str, Callable[[Target, Tally, Callable[[], float], Any], None]] = {
    "sq": work_sq,
    "rq": work_rq,
    "beanstalkd": work_beanstalkd,
    "rabbitmq": work_rabbitmq,
}


# ------------------------------------------------------------ the sessions, in the bench's process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_stat(stat: Path) -> tuple[int, int] | None:
    """The parent and the user + system CPU ticks of one /proc/PID/stat (``None``: gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        found = proc_stat(stat)
        if found is None:
            continue
        child = int(stat.parent.name)
        children.setdefault(found[0], []).append(child)
        ticks[child] = found[1]
    if pid not in ticks:
        raise BenchError(f"process {pid} is gone")
    total, todo = 0, [pid]
    while todo:
        one = todo.pop()
        total += ticks.get(one, 0)
        todo += children.get(one, [])
    return total / os.sysconf("SC_CLK_TCK")


def readable_pid(pid: int | None) -> int | None:
    """``pid`` if its CPU time can be read (a server the machine runs may belong to another
    user, or live in another PID namespace), else ``None``."""
    if pid is None:
        return None
    try:
        Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return pid


def wait_for(what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {seconds:g} s")
        time.sleep(CHECK)


class Process:
    """A server the bench starts: its own log file, stopped with SIGTERM at the end."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START
        while True:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace").splitlines()[-20:]
                raise BenchError(
                    f"{name} exited with {self.process.returncode}:\n" + "\n".join(tail)
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"{name} did not listen on port {port} within {START:g} s")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Session:
    """One system, reached or started for one scenario, with a queue of its own."""

    target: Target
    pid: int | None = None
    """The queue server's process, if its CPU time can be read."""

    def cpu(self) -> dict[str, float]:
        """CPU seconds the server has used so far, per part of it when it has several (e.g.
        ``sq serve`` and PostgreSQL); empty if they cannot be read."""
        return {} if self.pid is None else {"server": cpu_seconds(self.pid)}

    def queued(self, n: int) -> None:
        """Check, by the system's own count, that ``n`` jobs wait (after produce)."""

    def settled(self, n: int, seconds: float) -> None:
        """Wait until the system's own count says ``n`` jobs were completed (a worker may count
        a job it handled before its batch of completions is answered)."""

    def verify(self, n: int) -> None:
        """After the workers stopped: ``n`` jobs completed, none left or failed."""

    def close(self) -> None:
        pass


class SqSession(Session):
    """``sq serve`` of this tree on a fresh SQLite file; subclasses start several on one
    database (``_start``)."""

    def __init__(self, workdir: Path, synchronous: str, *, batched: bool) -> None:
        db = workdir / f"sq-{synchronous}-{secrets.token_hex(3)}.db"
        self._start(workdir, [["--db", str(db), "--synchronous", synchronous]], batched)

    def _start(self, workdir: Path, servers: list[list[str]], batched: bool) -> None:
        """One ``sq serve`` per item of ``servers`` (its own options), one after the other."""
        import httpx

        self.servers: list[Process] = []
        self.http: list[httpx.Client] = []
        sq = Path(sys.executable).with_name("sq")
        if not sq.exists():
            raise Skip(f"no {sq}: install this tree into the venv")
        ports = tuple(free_port() for _ in servers)
        try:
            for port, options in zip(ports, servers, strict=True):
                argv = [str(sq), "serve", "--port", str(port), "--log-level", "warning", *options]
                self.servers.append(Process(f"sq-{port}", argv, workdir, port))
                self.http.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        several = ports if len(ports) > 1 else ()
        queue = f"sq{secrets.token_hex(3)}"
        self.target = Target("sq", "127.0.0.1", ports[0], queue, batched, ports=several)

    def cpu(self) -> dict[str, float]:
        return {"server": sum(cpu_seconds(server.pid) for server in self.servers)}

    def stats(self, server: int = 0) -> dict[str, int]:
        stats: dict[str, int] = self.http[server].get("/stats").raise_for_status().json()
        return stats

    def _expect(self, want: dict[str, int]) -> None:
        """Every server's ``/stats`` (several share one database) says ``want``."""
        for server in range(len(self.http)):
            stats = self.stats(server)
            if {key: stats.get(key) for key in want} != want:
                raise BenchError(f"simplequeue /stats of server {server}: {stats}, want {want}")

    def queued(self, n: int) -> None:
        self._expect({"submitted": n, "running": 0, "total": n})

    def settled(self, n: int, seconds: float) -> None:
        wait_for("simplequeue: all succeeded", lambda: self.stats()["succeeded"] >= n, seconds)

    def verify(self, n: int) -> None:
        self._expect({"submitted": 0, "running": 0, "succeeded": n, "failed": 0, "total": n})

    def close(self) -> None:
        for http in self.http:
            http.close()
        failed = [server for server in self.servers if server.stop() != 0]
        if failed:
            logs = ", ".join(str(server.log) for server in failed)
            raise BenchError(f"sq serve exited non-zero on SIGTERM: see {logs}")


class RqSession(Session):
    """RQ on the machine's Redis (``own=False``) or on a redis-server the bench starts with
    ``appendonly yes``, ``appendfsync everysec`` (``own=True``)."""

    def __init__(self, workdir: Path, *, own: bool, batched: bool, worker: str) -> None:
        try:
            import rq  # noqa: F401
            from redis import Redis
        except ImportError as exc:
            raise Skip(f"no {exc.name} package: pip install -e '.[bench]'") from exc
        self.server: Process | None = None
        if own:
            binary = shutil.which("redis-server")
            if binary is None:
                raise Skip("no redis-server binary (apt-get install redis-server)")
            port = free_port()
            argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir)]
            argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            argv += ["--appendfilename", f"aof-{port}.aof", "--appenddirname", f"aof-{port}"]
            self.server = Process(f"redis-{port}", argv, workdir, port)
            host = "127.0.0.1"
        else:
            host, port = REDIS
        self.redis = Redis(host, port)
        try:
            self.redis.ping()
        except Exception as exc:
            self.close()
            raise Skip(f"no Redis answers on {host}:{port} ({type(exc).__name__})") from exc
        info = self.redis.info("persistence")
        if own and not info.get("aof_enabled"):
            raise BenchError("the bench's redis-server runs without its append-only file")
        self.pid = readable_pid(self.redis.info("server").get("process_id"))
        prefix = f"sqbench{secrets.token_hex(4)}"
        self.target = Target("rq", host, port, prefix, batched, worker)

    def _counts(self) -> dict[str, int]:
        from rq import Queue

        queue = Queue(self.target.queue, connection=self.redis)
        return {
            "queued": queue.count,
            "started": queue.started_job_registry.count,
            "finished": queue.finished_job_registry.count,
            "failed": queue.failed_job_registry.count,
        }

    def queued(self, n: int) -> None:
        counts = self._counts()
        if counts != {"queued": n, "started": 0, "finished": 0, "failed": 0}:
            raise BenchError(f"RQ after produce: {counts}, expected {n} queued")

    def settled(self, n: int, seconds: float) -> None:
        wait_for("RQ: all finished", lambda: self._counts()["finished"] >= n, seconds)

    def verify(self, n: int) -> None:
        counts = self._counts()
        if counts != {"queued": 0, "started": 0, "finished": n, "failed": 0}:
            raise BenchError(f"RQ: {counts}, expected {n} finished")

    def close(self) -> None:
        """Delete every key of this session's queue, jobs and workers (all carry its prefix)."""
        with contextlib.suppress(Exception):
            prefix = self.target.queue
            keys = list(self.redis.scan_iter(match=f"*{prefix}*", count=1000))
            for chunk in range(0, len(keys), 1000):
                self.redis.delete(*keys[chunk : chunk + 1000])
            for key in (b"rq:queues", b"rq:workers"):
                members = [m for m in self.redis.smembers(key) if prefix.encode() in m]
                if members:
                    self.redis.srem(key, *members)
        with contextlib.suppress(Exception):
            self.redis.close()
        if self.server is not None:
            self.server.stop()


class BeanstalkdSession(Session):
    """beanstalkd started by the bench: in memory (``binlog=None``), or with ``-b`` and ``-f
    binlog`` (fsync at most once every that many ms; 0: every write)."""

    def __init__(self, workdir: Path, binlog: int | None) -> None:
        try:
            import greenstalk
        except ImportError as exc:
            raise Skip("no greenstalk package: pip install -e '.[bench]'") from exc
        binary = shutil.which("beanstalkd")
        if binary is None:
            raise Skip("no beanstalkd binary (apt-get install beanstalkd)")
        port = free_port()
        argv = [binary, "-l", "127.0.0.1", "-p", str(port)]
        if binlog is not None:
            wal = workdir / f"beanstalkd-{port}"
            wal.mkdir()
            argv += ["-b", str(wal), "-f", str(binlog)]
        self.server = Process(f"beanstalkd-{port}", argv, workdir, port)
        self.pid = self.server.pid
        self.target = Target("beanstalkd", "127.0.0.1", port, "sqbench")
        # Using the tube keeps it (and its counts) alive once the producer and workers are gone.
        self.client = greenstalk.Client(("127.0.0.1", port), use=self.target.queue)

    def _tube(self) -> dict[str, Any]:
        import greenstalk

        try:
            stats: dict[str, Any] = self.client.stats_tube(self.target.queue)
        except greenstalk.NotFoundError:  # a tube exists only while it is used
            return {"total-jobs": 0, "current-jobs-ready": 0, "cmd-delete": 0}
        return stats

    def _expect(self, want: dict[str, int]) -> None:
        stats = self._tube()
        if {key: stats.get(key, 0) for key in want} != want:
            raise BenchError(f"beanstalkd stats-tube: {stats}, expected {want}")

    def queued(self, n: int) -> None:
        self._expect({"total-jobs": n, "current-jobs-ready": n, "current-jobs-reserved": 0})

    def settled(self, n: int, seconds: float) -> None:
        wait_for("beanstalkd: all deleted", lambda: self._tube()["cmd-delete"] >= n, seconds)

    def verify(self, n: int) -> None:
        self._expect(
            {
                "total-jobs": n,
                "cmd-delete": n,
                "current-jobs-ready": 0,
                "current-jobs-reserved": 0,
                "current-jobs-buried": 0,
                "current-jobs-delayed": 0,
            }
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        self.server.stop()


class RabbitSession(Session):
    """A durable queue of its own on the machine's RabbitMQ, deleted at the end."""

    def __init__(self) -> None:
        try:
            import pika  # noqa: F401
        except ImportError as exc:
            raise Skip("no pika package: pip install -e '.[bench]'") from exc
        self.target = Target("rabbitmq", *RABBITMQ, f"sqbench-{secrets.token_hex(4)}")
        try:
            self.connection = _rabbitmq(self.target)
        except Exception as exc:
            raise Skip(f"no RabbitMQ answers on {RABBITMQ[0]}:{RABBITMQ[1]} as guest") from exc
        self.channel = self.connection.channel()
        self.channel.queue_declare(self.target.queue, durable=True)
        self.pid = readable_pid(self._beam())

    @staticmethod
    def _beam() -> int | None:
        """The Erlang VM that runs RabbitMQ, if exactly one runs here."""
        found = subprocess.run(
            ["pgrep", "-x", "beam.smp"], capture_output=True, text=True, check=False
        )
        pids = found.stdout.split()
        return int(pids[0]) if len(pids) == 1 else None

    def _count(self) -> tuple[int, int]:
        ok = self.channel.queue_declare(self.target.queue, passive=True).method
        return ok.message_count, ok.consumer_count

    def queued(self, n: int) -> None:
        if self._count() != (n, 0):
            raise BenchError(f"RabbitMQ after produce: (messages, consumers) {self._count()}")

    def verify(self, n: int) -> None:
        # Once the consumers have closed their channels, an unacknowledged message would be
        # back in the queue: none may be.
        if self._count() != (0, 0):
            raise BenchError(f"RabbitMQ: (messages, consumers) {self._count()}, expected (0, 0)")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.queue_delete(self.target.queue)
        with contextlib.suppress(Exception):
            self.connection.close()
