"""The rates of ``sq watch``: jobs submitted and completed per second, each with a sparkline of
the last minute. Pure: the width is the renderable's ``options.max_width``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from simplequeue.cli.columns import GAP

__all__ = ["RATE_WINDOW", "SPARKLINE_SECONDS", "RatesLines", "rate", "sparkline"]

RATE_WINDOW = 5
"""Seconds the rate shown beside a sparkline is averaged over (as the browser dashboard's)."""
SPARKLINE_SECONDS = 60
"""The sparklines show the last minute."""
_BARS = "▁▂▃▄▅▆▇█"


def rate(per_second: Sequence[float]) -> str:
    """The current rate: the mean of the last `RATE_WINDOW` seconds; ``-`` before any."""
    recent = per_second[-RATE_WINDOW:]
    if not recent:
        return "-"
    value = sum(recent) / len(recent)
    return f"{value:.1f}" if value < 10 else f"{round(value):,}"


def sparkline(per_second: Sequence[float], width: int, peak: float) -> Text:
    """The last `SPARKLINE_SECONDS` of ``per_second`` in ``width`` cells, newest on the right,
    each cell the mean of the seconds it covers; its height is relative to ``peak``. An idle
    second is the lowest bar, dim; a second not known yet is blank."""
    known = list(per_second[-SPARKLINE_SECONDS:])
    seconds: list[float | None] = [None] * (SPARKLINE_SECONDS - len(known)) + list(known)
    width = max(1, min(width, SPARKLINE_SECONDS))
    text = Text()
    for cell in range(width):
        start = cell * SPARKLINE_SECONDS // width
        stop = (cell + 1) * SPARKLINE_SECONDS // width
        values = [v for v in seconds[start:stop] if v is not None]
        if not values:
            text.append(" ")
            continue
        mean = sum(values) / len(values)
        if mean <= 0 or peak <= 0:
            text.append(_BARS[0], style="dim")
        else:
            level = max(1, math.ceil(mean / peak * (len(_BARS) - 1)))
            text.append(_BARS[min(level, len(_BARS) - 1)], style="bold")
    return text


@dataclass(frozen=True, slots=True)
class RatesLines:
    """``submitted/s`` and ``completed/s``: the current rate and a sparkline of the last minute
    each, on a common scale, as wide as the frame allows (one cell a second at most)."""

    submitted: Sequence[float]
    completed: Sequence[float]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        series = (("submitted/s", self.submitted), ("completed/s", self.completed))
        shown = [rate(values) for _, values in series]
        number = max(len(value) for value in shown)
        label = max(len(name) for name, _ in series)
        room = options.max_width - label - number - 2 * GAP
        peak = max(
            [0.0, *self.submitted[-SPARKLINE_SECONDS:], *self.completed[-SPARKLINE_SECONDS:]]
        )
        note = f"last minute, peak {rate([peak])}/s"
        with_note = room - SPARKLINE_SECONDS - GAP >= len(note)
        for (name, values), value in zip(series, shown, strict=True):
            line = Text(f"{name:<{label}}{' ' * GAP}")
            line.append(f"{value:>{number}}", style="bold")
            if room >= 1:
                line.append(" " * GAP)
                line.append_text(sparkline(values, room, peak))
            if with_note and name == series[0][0] and peak > 0:
                line.append(" " * GAP)
                line.append(note, style="dim")
            line.no_wrap, line.overflow = True, "ellipsis"
            yield line
