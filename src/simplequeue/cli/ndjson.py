"""``sq submit --from``: newline-delimited JSON, one submit body per line, read into the items of
`Client.submit_many`, and its results counted. No I/O: the command reads and prints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

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
    ``jobId`` gets a new UUID, as ``sq submit`` without ``--id`` does."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            body = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            raise BadLine(f"line {number} is not valid JSON: {exc}") from None
        except RecursionError:
            # Deeper than the decoder can follow (thousands of levels); the server would refuse
            # far less deep a line anyway (`sq serve --max-json-depth`).
            raise BadLine(f"line {number} is nested too deeply to read") from None
        if not isinstance(body, dict):
            raise BadLine(f"line {number} must be a JSON object, not {type(body).__name__}")
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
