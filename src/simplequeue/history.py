"""The rate history behind ``GET /stats/history``: how many jobs were submitted and completed in
each second of the last hour, kept in memory.

It is built from the store's cumulative counters (`Totals`), which the server's background duty
samples once a second (`Queue.run`), not from the server's own requests: every process sharing a
store sees the same rates, and retention, which deletes jobs but never lowers a counter, cannot
make a rate negative. A restart starts an empty history. No I/O here: the sampler hands each
sample in with its time.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime

from simplequeue.models import HISTORY_INTERVAL, HISTORY_SECONDS, StatsHistory
from simplequeue.store.base import Totals

__all__ = ["RateHistory"]


def _spread(count: int, seconds: int, kept: int) -> list[int]:
    """``count`` spread evenly over ``seconds`` (the remainder in the latest ones): the last
    ``kept`` of them. A sample that came late does not know when in its span each job came."""
    share, rest = divmod(count, seconds)
    return [share + (n >= seconds - rest) for n in range(seconds - kept, seconds)]


def _second(at: datetime) -> int:
    """The interval ``at`` falls in, counted from the epoch."""
    return math.floor(at.timestamp() / HISTORY_INTERVAL)


class RateHistory:
    """Per-second differences of the counters, the newest `HISTORY_SECONDS` of them."""

    def __init__(self, size: int = HISTORY_SECONDS) -> None:
        self._size = size
        self._submitted: deque[int] = deque(maxlen=size)
        self._completed: deque[int] = deque(maxlen=size)
        self._last: tuple[int, Totals] | None = None
        """The last sample: its `_second` and the counters then."""

    def record(self, at: datetime, totals: Totals) -> None:
        """Add the sample taken at ``at``: its differences from the previous one fill the
        seconds since then. A second sample within the same second is ignored; a clock that
        went back starts the history over."""
        second = _second(at)
        last = self._last
        if last is not None and second == last[0]:
            return
        self._last = (second, totals)
        if last is None or second < last[0]:
            self._submitted.clear()
            self._completed.clear()
            return
        gap = second - last[0]
        kept = min(gap, self._size)
        # Never negative: counters only grow, unless the store itself was replaced.
        self._submitted.extend(_spread(max(totals.submitted - last[1].submitted, 0), gap, kept))
        self._completed.extend(_spread(max(totals.completed - last[1].completed, 0), gap, kept))

    def last(self, seconds: int, now: datetime) -> StatsHistory:
        """The newest ``seconds`` entries (fewer if there are not so many yet), ending at the last
        sample's second (at ``now``'s, before the first sample)."""
        end = _second(now) if self._last is None else self._last[0]
        count = min(seconds, len(self._submitted))
        start = len(self._submitted) - count
        return StatsHistory(
            interval=HISTORY_INTERVAL,
            end=datetime.fromtimestamp(end * HISTORY_INTERVAL, UTC),
            submitted=list(self._submitted)[start:],
            completed=list(self._completed)[start:],
        )
