"""``sq submit --from``: newline-delimited JSON, one submit body per line, read into the items of
`Client.submit_many`, and its results counted. No I/O: the command reads and prints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from simplequeue import jsontext
from simplequeue.client import BatchResult
from simplequeue.models import SubmitRequest

__all__ = ["BadLine", "Line", "parse", "summary"]

# The wire's names (camelCase, as in the API and `sq ... --json`) -> submit()'s parameters.
_PARAMETERS = {field.encode_name: field.name for field in msgspec.structs.fields(SubmitRequest)}


class BadLine(ValueError):
    """A line that is not one job: the whole input is refused before anything is sent."""


@dataclass(frozen=True, slots=True)
class Line:
    """One job to submit, and the line of the input it came from (counting from 1)."""

    number: int
    job: dict[str, Any]


def parse(text: str) -> list[Line]:
    """Every job of ``text``, one JSON object a line; blank lines are skipped. A line without
    ``jobId`` gets a new UUID, as ``sq submit`` without ``--id`` does.

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
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise BadLine(f"line {number} is not valid JSON: {exc}") from None
        except RecursionError:
            # Deeper than the decoder can follow (thousands of levels); the server would refuse
            # far less deep a line anyway (`sq serve --max-json-depth`).
            raise BadLine(f"line {number} is nested too deeply to read") from None
        if not isinstance(body, dict):
            raise BadLine(f"line {number} must be a JSON object, not {type(body).__name__}")
        try:
            # The server refuses a key named twice in one object; so does this, before sending:
            # decoded, only the last value would be left and the job sent would not be the line.
            jsontext.refuse_duplicate_keys(raw)
        except jsontext.DuplicateKey as exc:
            raise BadLine(
                f"line {number} names the key {exc.args[0]!r} twice in one object; "
                "send each key once"
            ) from None
        unknown = [key for key in body if key not in _PARAMETERS]
        if unknown:
            known = ", ".join(_PARAMETERS)
            raise BadLine(f"line {number}: unknown field {unknown[0]!r} (a job has {known})")
        job = {_PARAMETERS[key]: value for key, value in body.items()}
        job.setdefault("job_id", str(uuid.uuid4()))
        lines.append(Line(number, job))
    return lines


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
