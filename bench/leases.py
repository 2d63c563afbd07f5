"""The cost of leases beside the last release, and how soon a long-poll wakes after a submit.

    .venv/bin/python bench/leases.py [--release c0da673] [--duration 10] [--rounds 2]
                                     [--wakeups 300] [--cross-wakeups 100]

1. The worker's cycle under wrk (``cycle.lua``: next, then complete for the job it got): this
   tree with leases (``next?lease=60``, complete naming the ``leaseId``) and without naming them,
   and the ``sq serve`` of the last release (or of each ``--release`` ref: its source taken with
   ``git archive``, run by this venv's Python), each beside its own /health, in one run.
2. Long-poll wake-up: a worker waits in ``GET /jobs/next?wait=30`` on an empty queue and another
   client submits: submit sent -> next answered, many times. Then again with the submit sent to
   a second ``sq serve`` on the same file, which the waiter's server finds only by its periodic
   check. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from run import BENCH, HEADROOM, BenchError, Result, Server, fill, table, wrk

from simplequeue.queue import LOOK_INTERVAL

RELEASE = "c0da673"
"""The last release before leases (issue 8): the commit whose `sq serve` the cycle is held to."""
WAIT = 30
"""Seconds a long-poll waits (``next?wait=``): far more than any wake-up should take."""
SETTLE = 0.05
"""Seconds between the waiter's request being sent and the submit: time for the server to
read it and find the queue empty. A submit that comes sooner is still found (a waiter joining
the line looks once more), by a slightly different path."""
WARM_UP = 2
"""Seconds of unmeasured cycling before a server's first measured one: it also gives the rate
that the queue is filled for."""


def extract(ref: str, workdir: Path) -> Path:
    """The source tree of ``ref`` (read from git, the checkout untouched) in ``workdir``."""
    tree = workdir / f"release-{ref.replace('/', '_')}"
    tree.mkdir()
    archive = tree.with_suffix(".tar")
    repo = BENCH.parent
    subprocess.run(["git", "-C", str(repo), "archive", "-o", str(archive), ref], check=True)
    subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(tree)], check=True)
    return tree


def finish_running(server: Server) -> None:
    """Complete the jobs a cycle took and had not completed when wrk stopped, so that none of
    them comes back (its lease expired) in the middle of a later run and upsets its counts.

    First wait for the requests wrk left in flight to land (at most one per connection, done
    in milliseconds): until two reads of the counts 0.2 s apart agree, for 5 s at most."""
    counts = server.stats()
    for _ in range(25):
        time.sleep(0.2)
        counts, before = server.stats(), counts
        if counts == before:
            break
    for job_id in server.running_ids():
        body = {"jobId": job_id, "status": "succeeded"}
        server.http.post("/jobs/complete", json=body).raise_for_status()


def cycle(server: Server, mode: str, rate: float, args: argparse.Namespace) -> Result:
    """One measured run of cycle.lua (``mode``: lease or plain), on a queue filled for ``rate``
    jobs a second, then checked against the store's counts."""
    d, c, t = args.duration, args.connections, args.threads
    fill(server, "submitted", HEADROOM * rate * d + c, 1000, args)
    before = server.stats()
    result = wrk(server, "cycle.lua", d, c, t, mode)
    after = server.stats()
    done = after["succeeded"] - before["succeeded"]
    taken = done + after["running"] - before["running"]
    # Every 2xx answer took a job or completed one (a 204 would mean an empty queue); wrk does
    # not count the answers in flight at its deadline, at most one per connection.
    if after["submitted"] == 0 or not 0 <= taken + done - result.requests <= c:
        raise BenchError(f"cycle {mode}: {result.requests} answers, {taken} taken, {done} done")
    if taken - done > 2 * c:
        raise BenchError(f"cycle {mode}: {taken - done} jobs taken and never completed")
    finish_running(server)
    result.endpoint = "cycle+lease" if mode == "lease" else "cycle"
    return result


def bench_cycles(
    releases: dict[str, Path], workdir: Path, args: argparse.Namespace
) -> list[Result]:
    """All servers run side by side; each round measures each one's ceiling and cycles.
    ``releases``: the source tree of each git ref to hold this tree to."""
    d, c, t = args.duration, args.connections, args.threads
    servers: dict[str, tuple[Server, list[str]]] = {}
    rates: dict[tuple[str, str], float] = {}
    results: list[Result] = []
    try:
        for ref, tree in releases.items():
            servers[f"git {ref}"] = (Server("sq", workdir, "full", release=tree), ["plain"])
        servers["this tree"] = (Server("sq", workdir, "full"), ["lease", "plain"])
        # PYTHONPATH could lose to an install of this tree: check which code each one runs.
        for label, (server, _) in servers.items():
            leases = "/jobs/heartbeat" in server.http.get("/schema/openapi.json").json()["paths"]
            if leases != (label == "this tree"):
                raise BenchError(f"{label}: /jobs/heartbeat {'is' if leases else 'is not'} served")
        for label, (server, modes) in servers.items():
            wrk(server, "health.lua", 2, c, t)
            for mode in modes:
                fill(server, "submitted", 3000, 1000, args)
                done = server.stats()["succeeded"]
                wrk(server, "cycle.lua", WARM_UP, c, t, mode)
                rates[label, mode] = (server.stats()["succeeded"] - done) / WARM_UP
                finish_running(server)
        for round_no in range(1, args.rounds + 1):
            for label, (server, modes) in servers.items():
                print(f"-- round {round_no}: {label}", file=sys.stderr, flush=True)
                ran = [wrk(server, "health.lua", d, c, t)]
                for mode in modes:
                    ran.append(cycle(server, mode, rates[label, mode], args))
                    rates[label, mode] = ran[-1].rps / 2
                for result in ran:
                    result.server = f"{label}, round {round_no}"
                results += ran
    finally:
        codes = {label: server.stop() for label, (server, _) in servers.items()}
    if any(codes.values()):
        raise BenchError(f"exit codes on SIGTERM: {codes}")
    return results


async def wakeups(
    waiter_url: str, submit_url: str, n: int, prefix: str, jitter: float
) -> tuple[list[float], list[float]]:
    """``n`` times: a long-poll on ``waiter_url``, then a submit to ``submit_url``; seconds
    from sending the submit to the long-poll's answer (with the job just submitted), and to the
    submit's own answer (its commit is part of the wake-up's time). Each submit waits up to
    ``jitter`` seconds more, at random, so that a loop as long as the server's periodic check
    does not always submit at the same moment of it."""
    delays: list[float] = []
    submits: list[float] = []
    async with (
        httpx.AsyncClient(base_url=waiter_url, timeout=WAIT + 10) as waiter,
        httpx.AsyncClient(base_url=submit_url, timeout=30) as submitter,
    ):
        for i in range(n):
            sent = asyncio.Event()

            async def trace(event: str, info: dict[str, Any], sent: asyncio.Event = sent) -> None:
                if event == "http11.send_request_body.complete":
                    sent.set()

            async def next_job() -> tuple[httpx.Response, float]:
                params = {"wait": WAIT, "lease": 60}
                answer = await waiter.get("/jobs/next", params=params, extensions={"trace": trace})
                return answer, time.perf_counter()

            waiting = asyncio.create_task(next_job())
            async with asyncio.timeout(10):
                await sent.wait()
            await asyncio.sleep(SETTLE + random.uniform(0, jitter))
            job_id = f"{prefix}-{i}"
            start = time.perf_counter()
            (await submitter.post("/jobs/submit", json={"jobId": job_id})).raise_for_status()
            submits.append(time.perf_counter() - start)
            answer, answered = await waiting
            if answer.status_code != 200 or answer.json()["jobId"] != job_id:
                raise BenchError(f"long-poll answered {answer.status_code}: {answer.text[:200]}")
            delays.append(answered - start)
            lease = answer.json()["leaseId"]
            body = {"jobId": job_id, "status": "succeeded", "leaseId": lease}
            (await waiter.post("/jobs/complete", json=body)).raise_for_status()
    return delays, submits


def bench_wakeups(workdir: Path, args: argparse.Namespace) -> list[str]:
    """On a fresh, idle server (an empty queue), and then beside a second process on its file."""
    lines = []
    workdir = workdir / "wake-up"  # a file of its own: the cycles' file is full of jobs
    workdir.mkdir()
    first = Server("sq", workdir, "full")
    second = None
    try:
        runs = [("same process", first, args.wakeups, 0.0)]
        if args.cross_wakeups:
            second = Server("sq", workdir, "full", share=first)
            runs.append(("submit to another process", second, args.cross_wakeups, LOOK_INTERVAL))
        for label, submit_to, n, jitter in runs:
            print(f"-- long-poll wake-up: {label}", file=sys.stderr, flush=True)
            prefix = label.replace(" ", "-")
            delays, submits = asyncio.run(wakeups(first.url, submit_to.url, n, prefix, jitter))
            ms = [x * 1e3 for x in delays]
            p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
            lines.append(
                f"long-poll wake-up, {label}: {n} wake-ups, median {statistics.median(ms):.1f} ms, "
                f"p99 {p99:.1f} ms, min {min(ms):.1f} ms, max {max(ms):.1f} ms "
                f"(the submit's own answer: median {statistics.median(submits) * 1e3:.1f} ms)"
            )
    finally:
        codes = [server.stop() for server in (second, first) if server is not None]
    if any(codes):
        raise BenchError(f"exit codes on SIGTERM: {codes}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--release",
        action="append",
        help=f"git ref of an earlier release to compare with (repeatable; default {RELEASE})",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every cycle")
    parser.add_argument("--wakeups", type=int, default=300, help="long-polls woken by a submit")
    parser.add_argument(
        "--cross-wakeups", type=int, default=100, help="the same via a second process (0: none)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/leases.py needs wrk: apt-get install -y wrk")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="sq-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            if args.rounds:
                releases = {ref: extract(ref, Path(tmp)) for ref in args.release or [RELEASE]}
                results = bench_cycles(releases, Path(tmp), args)
            wake = bench_wakeups(Path(tmp), args) if args.wakeups else []
        except BenchError as exc:
            print(table(results), file=sys.stderr)
            sys.exit(f"FAILED: {exc}")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} cores (shared with wrk), "
        f"{args.connections} connections, {args.threads} wrk threads, {args.duration:g} s each; "
        "a cycle is two requests (next, complete)"
    )
    if results:
        print(table(results))
    print(*wake, sep="\n")
    print(f"(the server's fallback check for jobs from other processes: every {LOOK_INTERVAL} s)")


if __name__ == "__main__":
    main()
