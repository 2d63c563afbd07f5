"""``sq submit --from``: newline-delimited JSON, one submit body per line, read into the items of
`Client.submit_many`, and its results counted; and the checks every JSON input of `sq` gets
(`decode`, `refuse_duplicate_keys`). No I/O: the command reads and prints."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from simplequeue import jsontext
from simplequeue.cli.durations import parse_moment
from simplequeue.client import BatchResult
from simplequeue.models import SubmitRequest

__all__ = ["BadLine", "Line", "decode", "parse", "refuse_duplicate_keys", "summary"]

# The wire's names (camelCase, as in the API and `sq ... --json`) -> submit()'s parameters.
_PARAMETERS = {field.encode_name: field.name for field in msgspec.structs.fields(SubmitRequest)}
_PARAMETERS["delaySeconds"] = "delay"
_TIMING = ("run_at", "delay")
"""A job's timing: a line that gives either is not given the default of the other."""


class BadLine(ValueError):
    """A line that is not one job: the whole input is refused before anything is sent."""


@dataclass(frozen=True, slots=True)
class Line:
    """One job to submit, and the line of the input it came from (counting from 1)."""

    number: int
    job: dict[str, Any]


def parse(text: str, defaults: Mapping[str, Any] | None = None) -> list[Line]:
    """Every job of ``text``, one JSON object a line; blank lines are skipped. A line without
    ``jobId`` gets a new UUID, as ``sq submit`` without ``--id`` does. ``defaults`` (submit()'s
    parameters: ``sq submit``'s options) go to every line that does not say otherwise; a line
    with ``runAt`` or ``delaySeconds`` keeps its own timing. What the SDK would take for a
    mistake in the call rather than a job to refuse (a ``runAt`` without a time zone, or with
    ``delaySeconds``) is a `BadLine` here.

    ``text`` is the input decoded with ``surrogateescape``: bytes that are not UTF-8 are kept as
    surrogates, so that the line they are on can be named."""
    lines = []
    # Lines end at "\n" only: U+2028, U+0085 and the like may stand raw inside a JSON string
    # (str.splitlines() would cut the line there). A "\r" before it is JSON whitespace.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            raw = line.encode("utf-8")
        except UnicodeEncodeError:
            raise BadLine(f"line {number} is not UTF-8 text") from None
        where = f"line {number}"
        try:
            body = decode(raw, where)
            if not isinstance(body, dict):
                raise ValueError(f"{where} must be a JSON object, not {type(body).__name__}")
            refuse_duplicate_keys(raw, where)
        except ValueError as exc:
            raise BadLine(str(exc)) from None
        unknown = [key for key in body if key not in _PARAMETERS]
        if unknown:
            known = ", ".join(_PARAMETERS)
            raise BadLine(f"line {number}: unknown field {unknown[0]!r} (a job has {known})")
        job = {_PARAMETERS[key]: value for key, value in body.items()}
        job.setdefault("job_id", str(uuid.uuid4()))
        if job.get("run_at") is not None:
            job["run_at"] = _moment(job["run_at"], number)
        timed = [key for key in _TIMING if job.get(key) is not None]
        if len(timed) > 1:
            raise BadLine(f"line {number}: give runAt or delaySeconds, not both")
        for key, value in (defaults or {}).items():
            # A field given as null is not given, as in the API.
            if job.get(key) is None and not (timed and key in _TIMING):
                job[key] = value
        lines.append(Line(number, job))
    return lines


def decode(text: bytes | str, where: str) -> Any:
    """One JSON value: a line of ``--from``, or the value of ``--data`` or ``--result``. A
    `ValueError` says what is wrong, beginning with ``where`` (``line 3``, ``--data (stdin)``)."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from None
    except RecursionError:
        # Deeper than the decoder can follow (thousands of levels); the server would refuse far
        # less deep a value anyway (`sq serve --max-json-depth`).
        raise ValueError(f"{where} is nested too deeply to read") from None


def refuse_duplicate_keys(raw: bytes, where: str) -> None:
    """The server refuses a key named twice in one object; so does `sq`, before sending:
    decoded, only the last value would be left, and what was sent would not be what was given.
    """
    try:
        jsontext.refuse_duplicate_keys(raw)
    except jsontext.DuplicateKey as exc:
        raise ValueError(
            f"{where} names the key {exc.args[0]!r} twice in one object; send each key once"
        ) from None


def _moment(value: object, number: int) -> datetime:
    """A line's ``runAt``, refused here if it names no time zone: the SDK would take that for a
    mistake in the call, not a job to refuse."""
    if not isinstance(value, str):
        raise BadLine(
            f"line {number}: runAt must be a timestamp string, not {type(value).__name__}"
        )
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise BadLine(f"line {number}: runAt {exc}") from None


def summary(results: Sequence[BatchResult]) -> str:
    """``3 jobs: 1 created, 1 already there, 1 refused``."""
    created = sum(result.created for result in results)
    refused = sum(not result.ok for result in results)
    there = len(results) - created - refused
    noun = "job" if len(results) == 1 else "jobs"
    return (
        f"{len(results):,} {noun}: {created:,} created, {there:,} already there, "
        f"{refused:,} refused"
    )
