"""What `sq` reads as a duration (--delay, --keep-succeeded) and as a moment (--at)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from simplequeue.cli.durations import LONGEST, parse_duration, parse_moment


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("12h", 43_200),
        ("7d", 604_800),
        ("3600", 3600),
        ("0", 0),
        ("1.5h", 5400),
        (".5s", 0.5),
        (" 2D ", 172_800),
        ("36500d", LONGEST),
    ],
)
def test_a_duration_is_a_number_with_an_optional_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "'' is not a duration"),
        ("-5s", "'-5s' is not a duration"),
        ("5 m", "'5 m' is not a duration"),
        ("1h30m", "'1h30m' is not a duration"),
        ("7w", "'7w' is not a duration: give a number of seconds, or one with a unit"),
        ("nan", "'nan' is not a duration"),
        ("36501d", "'36501d' is longer than 36,500d"),
        ("1" * 400, "is longer than 36,500d"),
    ],
)
def test_a_bad_duration_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-05-01T09:00:00Z", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        ("2026-05-01 11:00:00+02:00", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        (
            "2026-05-01T09:00:00.250-05:30",
            datetime(2026, 5, 1, 9, 0, 0, 250_000, tzinfo=timezone(-timedelta(hours=5.5))),
        ),
    ],
)
def test_a_moment_is_rfc_3339_with_its_zone(text: str, moment: datetime) -> None:
    assert parse_moment(text) == moment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-05-01T09:00:00", "names no time zone: add Z (UTC) or an offset such as +02:00"),
        ("2026-05-01", "names no time zone"),
        ("tomorrow", "'tomorrow' is not a timestamp: give one like 2026-05-01T09:00:00Z"),
        ("2026-13-01T00:00:00Z", "is not a timestamp"),
    ],
)
def test_a_moment_without_a_zone_or_not_a_timestamp_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_moment(text)
