"""Lengths of time as `sq` reads them (``90s``, ``15m``, ``12h``, ``7d``, or plain seconds), and
the moments ``--at`` names (RFC 3339, with a time zone). No I/O."""

from __future__ import annotations

import math
import re
from datetime import datetime

__all__ = ["LONGEST", "UNITS", "parse_duration", "parse_moment"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
"""The unit letters a duration may end with, in seconds; none means seconds."""
LONGEST = 100 * 365 * UNITS["d"]
"""The longest duration read: a century. Anything longer is surely a typo, and would not fit
the date arithmetic done with it (a time that far back or ahead is no date)."""

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)")


def parse_duration(text: str) -> float:
    """Seconds: ``90s``, ``15m``, ``12h``, ``7d``, ``1.5h`` or ``3600``. A `ValueError` says
    what is wrong, in words fit for one line of ``sq: error:``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: give a number of seconds, or one with a unit "
            "(90s, 15m, 12h, 7d)"
        )
    number, unit = match.groups()
    seconds = float(number) * UNITS[unit or "s"]
    if not math.isfinite(seconds) or seconds > LONGEST:
        raise ValueError(f"{text!r} is longer than {LONGEST // UNITS['d']:,}d")
    return seconds


def parse_moment(text: str) -> datetime:
    """An RFC 3339 timestamp with its time zone (``2026-05-01T09:00:00Z``,
    ``2026-05-01 11:00+02:00``). Without one it would mean a different moment on each machine,
    so it is refused."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a timestamp: give one like 2026-05-01T09:00:00Z or "
            "2026-05-01T11:00:00+02:00"
        ) from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} names no time zone: add Z (UTC) or an offset such as +02:00")
    return moment
