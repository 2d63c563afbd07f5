"""``sq watch``: sample the server every interval and redraw one Rich `Live` frame in place."""

from __future__ import annotations

import os
import select
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console
from rich.live import Live

from simplequeue.cli.rates import SPARKLINE_SECONDS
from simplequeue.cli.render import Snapshot, dashboard
from simplequeue.client import Client
from simplequeue.errors import JobNotFound, SimpleQueueError
from simplequeue.inert import one_line
from simplequeue.models import Stats

__all__ = ["Rates", "sample", "watch"]


class Rates:
    """The last minute of jobs submitted and completed per second.

    From the server's own history (``GET /stats/history``: per-second counts it samples from
    its store, so a new ``sq watch`` shows the last minute at once, and every process sharing
    the store agrees); from a server without that route, from the change in ``/stats``'
    counters between this command's samples: one entry per sample, starting empty.
    """

    def __init__(self) -> None:
        self._server_history = True
        self._last: tuple[float, tuple[int, int]] | None = None
        self._submitted: deque[float] = deque(maxlen=SPARKLINE_SECONDS)
        self._completed: deque[float] = deque(maxlen=SPARKLINE_SECONDS)

    def sample(
        self, client: Client, stats: Stats, at: float
    ) -> tuple[Sequence[float], Sequence[float]]:
        if self._server_history:
            try:
                history = client.stats_history(SPARKLINE_SECONDS)
            except JobNotFound:  # a server older than the route
                self._server_history = False
            else:
                per = history.interval
                return [n / per for n in history.submitted], [n / per for n in history.completed]
        return self.add(at, stats)

    def add(self, at: float, stats: Stats) -> tuple[Sequence[float], Sequence[float]]:
        """The rates with one more sample of the counters taken at ``at`` (monotonic seconds)."""
        counters = _counters(stats)
        if self._last is not None and at > self._last[0]:
            (last_at, (submitted, completed)) = self._last
            elapsed = at - last_at
            # Retention can lower the fallback counters (total): never a negative rate.
            self._submitted.append(max(0, counters[0] - submitted) / elapsed)
            self._completed.append(max(0, counters[1] - completed) / elapsed)
        self._last = (at, counters)
        return tuple(self._submitted), tuple(self._completed)


def _counters(stats: Stats) -> tuple[int, int]:
    """Jobs ever submitted and completed; from a server without those counters, the nearest
    it has: all jobs, and the finished ones."""
    if stats.submitted_ever or stats.completed_ever:
        return stats.submitted_ever, stats.completed_ever
    return stats.total, stats.succeeded + stats.failed


def sample(client: Client, rows: int, rates: Rates, last: Snapshot) -> Snapshot:
    """The next frame's data; on failure, the last frame's data with the reason.

    Three requests whatever the size of the queue: the counts, the rate history of the last
    minute, and the newest ``rows`` jobs.
    """
    now = datetime.now(UTC)
    try:
        stats = client.stats()
        submitted, completed = rates.sample(client, stats, time.monotonic())
        jobs = client.list_jobs(limit=rows, order="desc")
    except SimpleQueueError as exc:
        # The last counts and jobs stay on screen, marked by the error; the rates do not (a
        # flat 0.0/s would claim that nothing happens, when nothing is known).
        return replace(last, now=now, error=one_line(exc.detail), submitted=(), completed=())
    return Snapshot(
        url=client.url,
        now=now,
        stats=stats,
        jobs=jobs,
        submitted=submitted,
        completed=completed,
    )


@contextmanager
def _keys() -> Iterator[Callable[[float], str | None]]:
    """``wait(seconds)``: the key pressed within ``seconds``, or ``None``.

    In a terminal, keys are read one at a time (cbreak: no Enter needed, Ctrl-C still works);
    otherwise it only waits.
    """
    if not sys.stdin.isatty() or os.name != "posix":
        yield time.sleep
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def wait(seconds: float) -> str | None:
        ready, _, _ = select.select([fd], [], [], seconds)
        return os.read(fd, 1).decode(errors="replace") if ready else None

    try:
        yield wait
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def watch(
    client: Client, *, interval: float, rows: int, console: Console, utc: bool = False
) -> None:
    """Redraw until ``q`` is pressed; Ctrl-C raises KeyboardInterrupt for the caller."""
    rates = Rates()
    snapshot = Snapshot(url=client.url, now=datetime.now(UTC))
    with (
        _keys() as wait,
        Live(
            dashboard(snapshot, utc=utc), console=console, screen=True, auto_refresh=False
        ) as live,
    ):
        while True:
            tick = time.monotonic() + interval
            snapshot = sample(client, rows, rates, snapshot)
            live.update(dashboard(snapshot, utc=utc), refresh=True)
            while (left := tick - time.monotonic()) > 0:
                if wait(left) in ("q", "Q"):
                    return
