"""``sq watch``: sample the server every interval and redraw one Rich `Live` frame in place."""

from __future__ import annotations

import os
import select
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console
from rich.live import Live

from simplequeue.cli.render import Snapshot, dashboard
from simplequeue.client import Client
from simplequeue.errors import SimpleQueueError
from simplequeue.inert import one_line
from simplequeue.models import Stats

__all__ = ["Throughput", "sample", "watch"]


class Throughput:
    """Finished jobs per second, over the last few samples so that one slow tick does not jump."""

    def __init__(self, window: int = 5) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def add(self, at: float, stats: Stats) -> float | None:
        self._samples.append((at, stats.succeeded + stats.failed))
        (first_at, first), (last_at, last) = self._samples[0], self._samples[-1]
        if last_at <= first_at:
            return None
        return max(0, last - first) / (last_at - first_at)


def sample(client: Client, rows: int, rate: Throughput, last: Snapshot) -> Snapshot:
    """The next frame's data; on failure, the last frame's data with the reason.

    Two requests whatever the size of the queue: the counts, and the newest ``rows`` jobs.
    """
    now = datetime.now(UTC)
    try:
        stats = client.stats()
        jobs = client.list_jobs(limit=rows, order="desc")
    except SimpleQueueError as exc:
        return replace(last, now=now, error=one_line(exc.detail))
    return Snapshot(
        url=client.url,
        now=now,
        stats=stats,
        jobs=jobs,
        completed_per_second=rate.add(time.monotonic(), stats),
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


def watch(client: Client, *, interval: float, rows: int, console: Console) -> None:
    """Redraw until ``q`` is pressed; Ctrl-C raises KeyboardInterrupt for the caller."""
    rate = Throughput()
    snapshot = Snapshot(url=client.url, now=datetime.now(UTC))
    with (
        _keys() as wait,
        Live(dashboard(snapshot), console=console, screen=True, auto_refresh=False) as live,
    ):
        while True:
            tick = time.monotonic() + interval
            snapshot = sample(client, rows, rate, snapshot)
            live.update(dashboard(snapshot), refresh=True)
            while (left := tick - time.monotonic()) > 0:
                if wait(left) in ("q", "Q"):
                    return
