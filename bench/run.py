"""Requests per second of submit, next and complete against a real server, beside /health.

    .venv/bin/python bench/run.py [--server sq|NAME] [--compare] [--duration 10] [--connections 32]

Each server runs as its own process on 127.0.0.1 with a fresh SQLite file; wrk (Debian's
``wrk``) drives it with the Lua scripts beside this file. See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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
"""Before /jobs/next (/jobs/complete) runs, the queued (running) jobs are topped up to this many
times what the run before it did, so the measured run never runs out of jobs."""


class BenchError(RuntimeError):
    pass


@dataclass
class Result:
    server: str
    endpoint: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per request: unlike req/s, barely moved by other load."""
        return self.cpu_seconds / self.requests * 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    ) -> None:
        """``release``: the root of another source tree (an earlier release, bench/leases.py)
        whose ``sq serve`` runs instead, with this venv's Python and packages. ``share``: serve
        that server's file, as a second process beside it."""
        tag = f"{name}-{synchronous}" if release is None else f"{name}-{release.name}-{synchronous}"
        tag += "" if share is None else f"-beside-{share.port}"
        self.port: int = free_port()
        self.db: Path = workdir / f"{tag}.db" if share is None else share.db
        self.log = workdir / f"{tag}.log"
        # `sq serve` as shipped, or one of the candidates, with the same port, file and durability.
        if name == "sq":
            program = ["-m", "simplequeue", "serve", "--log-level", "warning"]
        else:
            program = [str(BENCH / "candidates.py"), name]
        options = ["--port", str(self.port), "--db", str(self.db), "--synchronous", synchronous]
        argv = [sys.executable, *program, *options]
        # PYTHONPATH comes before the venv's editable install of this tree on sys.path.
        env = None if release is None else {**os.environ, "PYTHONPATH": str(release / "src")}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{name} exited with {self.process.returncode}: {self.log}")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"{name} did not answer /health within 30 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process and its children (granian's workers)."""
        children: dict[int, list[int]] = {}
        ticks: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            ticks[pid] = int(fields[11]) + int(fields[12])
        total, todo = 0, [self.process.pid]
        while todo:
            pid = todo.pop()
            total += ticks.get(pid, 0)
            todo += children.get(pid, [])
        return total / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.http.get("/stats").raise_for_status().json()
        return stats

    def running_ids(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, str | int] = {"state": "running", "limit": 1000}
        while True:
            page = self.http.get("/jobs", params=params).raise_for_status().json()
            ids += [job["jobId"] for job in page]
            if len(page) < 1000:
                return ids
            params["after"] = ids[-1]

    def stop(self) -> int:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
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
    errors = {k: v for k, v in summary.items() if k.endswith(("errors", "timeouts")) and v}
    if errors:
        raise BenchError(f"{script} against {server.url}: {errors} of {summary['requests']}")
    return Result(
        server="",
        endpoint=script.removesuffix(".lua"),
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        cpu_seconds=server.cpu_seconds() - cpu_before,
    )


def fill(server: Server, state: str, want: float, rps: float, args: argparse.Namespace) -> None:
    """Submit (for ``submitted``) or take (for ``running``) jobs, unmeasured, until ``want``.

    ``rps`` is a first guess of the rate; each round then uses what the one before achieved.
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


def bench_server(
    name: str, synchronous: str, workdir: Path, args: argparse.Namespace, *, full: bool
) -> list[Result]:
    """The ceiling, then submit; with ``full``, also next and complete on the jobs just made."""
    label = name if synchronous == "full" else f"{name} (synchronous=normal)"
    print(f"-- {label}", file=sys.stderr, flush=True)
    server = Server(name, workdir, synchronous)
    d, c, t = args.duration, args.connections, args.threads
    try:
        wrk(server, "health.lua", 2, c, t)  # warm-up
        results = [wrk(server, "health.lua", d, c, t), wrk(server, "submit.lua", d, c, t, "s")]
        # wrk stops counting at the deadline: up to one request per connection is answered
        # by the server but not counted, so the store may hold up to `c` more than reported.
        made = server.stats()["submitted"]
        if not 0 <= made - results[-1].requests <= c:
            raise BenchError(f"{results[-1].requests} submits answered 2xx, {made} jobs queued")
        if full:
            # Neither /jobs/next nor /jobs/complete may run out of work (a 204 from an empty
            # queue counts as a success in wrk): before each, top up its supply to HEADROOM
            # times what the run before it managed, then check afterwards that some was left.
            fill(server, "submitted", HEADROOM * made, results[-1].rps, args)
            queued = server.stats()["submitted"]
            taken = wrk(server, "next.lua", d, c, t)
            left = server.stats()["submitted"]
            if left == 0 or not 0 <= queued - left - taken.requests <= c:
                raise BenchError(f"/jobs/next ran the queue empty: {queued} queued, {left} left")
            fill(server, "running", HEADROOM * taken.requests, taken.rps, args)
            running = server.running_ids()
            ids = workdir / f"{name}-running.txt"
            ids.write_text("\n".join(running) + "\n")
            done = wrk(server, "complete.lua", d, c, t, str(ids), str(t))
            if not 0 <= server.stats()["succeeded"] - done.requests <= c:
                raise BenchError("the completed jobs do not match the 2xx answers")
            print(
                f"   next: {queued} queued, {taken.requests} taken, {left} left; "
                f"complete: {len(running)} running, {done.requests} completed",
                file=sys.stderr,
            )
            results += [taken, done]
    finally:
        code = server.stop()
    # uvicorn re-raises the signal after its clean shutdown, so only `sq serve` must exit 0.
    if code != 0 and name == "sq":
        raise BenchError(f"{label} exited with {code} on SIGTERM: see {server.log}")
    for result in results:
        result.server = label
    return results


def table(results: list[Result]) -> str:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="sq",
        choices=["sq", *CANDIDATES],
        help="sq: the real `sq serve`; otherwise one of bench/candidates.py",
    )
    parser.add_argument(
        "--compare", action="store_true", help="run every candidate server, then `sq serve`"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/run.py needs wrk: apt-get install -y wrk")

    names = [*CANDIDATES, "sq"] if args.compare else [args.server]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="sq-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            for name in names:
                results += bench_server(name, "full", Path(tmp), args, full=True)
            results += bench_server(names[-1], "normal", Path(tmp), args, full=False)
        except BenchError as exc:
            print(table(results), file=sys.stderr)
            sys.exit(f"FAILED: {exc}")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} cores (shared with wrk), "
        f"{args.connections} connections, {args.threads} wrk threads, {args.duration:g} s each"
    )
    print(table(results))


if __name__ == "__main__":
    main()
