"""`submit_many` and `complete_many`: items packed into arrays the server takes, and each
item's result (CONTRACT §10). No I/O: the twins send what `Batches` gives them."""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from simplequeue.client.wire import Call, error_of
from simplequeue.errors import InvalidRequest, PayloadTooLarge, SimpleQueueError
from simplequeue.models import MAX_BATCH, MAX_BODY_SIZE, Job

__all__ = ["BATCH_BYTES", "BatchResult", "Batches", "item_body"]

BATCH_BYTES = MAX_BODY_SIZE - 48 * 1024
"""The largest body `submit_many` and `complete_many` pack items into: a margin under the
server's default limit (`MAX_BODY_SIZE`, ``sq serve --max-body-size``). A server with a lower
limit answers 413, and the batch is split (`Batches`), so this only has to be right for the
default."""


class _Item(msgspec.Struct, kw_only=True):
    """One item of a batch's answer (`models.ItemResult`), with the job decoded as the SDK's."""

    status: int
    job: Job | None = None
    detail: str | None = None


_items = msgspec.json.Decoder(list[_Item])


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One item's result in `submit_many` or `complete_many`, in the order the items were given.

    Each item is decided as if it had been sent alone: ``status`` is that request's HTTP status;
    ``job`` goes with a success (201 created, 200 already so), ``error`` with a refusal: the
    exception the single call would have raised (`InvalidRequest`, `JobConflict`, `LeaseLost`,
    `JobNotFound`, `PayloadTooLarge`), with the same ``detail``.
    """

    status: int
    job: Job | None = None
    error: SimpleQueueError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def created(self) -> bool:
        """A job that was not there before (a submit answered 201)."""
        return self.status == 201


class Batches:
    """The requests of one `submit_many` or `complete_many`, and every item's result.

    Items are packed, in order, into arrays of at most `MAX_BATCH` items and `BATCH_BYTES`
    bytes, sent one after the other (`next_call`). An array the server refuses whole as too
    large (413: its limit is below `BATCH_BYTES`) is split in two and each half sent; an item
    refused so on its own gets that `PayloadTooLarge` as its result, as it would alone. An item
    the client already knows is invalid is never sent: its result is that error.
    """

    def __init__(
        self, path: str, items: Sequence[bytes | SimpleQueueError], idempotent: Sequence[bool]
    ) -> None:
        self._path = path
        self._bodies = {n: item for n, item in enumerate(items) if isinstance(item, bytes)}
        self._idempotent = idempotent
        self._results: list[BatchResult | None] = [
            None if isinstance(item, bytes) else BatchResult(item.status_code, error=item)
            for item in items
        ]
        self._pending = deque(_pack(items))
        self._current: list[int] = []

    def next_call(self) -> Call[list[BatchResult]] | None:
        """The request for the next array, or ``None`` when every item has its result."""
        if not self._pending:
            return None
        current = self._current = self._pending.popleft()
        body = b"[" + b",".join(self._bodies[n] for n in current) + b"]"
        # Resent after a lost answer only if every item in it may be (see `_complete_call`).
        idempotent = all(self._idempotent[n] for n in current)
        count = len(current)
        return Call(
            "POST",
            self._path,
            lambda response: _read_items(response, count),
            body=body,
            idempotent=idempotent,
        )

    def answered(self, results: list[BatchResult]) -> None:
        for n, result in zip(self._current, results, strict=True):
            self._results[n] = result

    def too_large(self, exc: PayloadTooLarge) -> None:
        """The last array was refused whole for its size: nothing in it was applied."""
        current = self._current
        if len(current) == 1:
            self._results[current[0]] = BatchResult(exc.status_code, error=exc)
            return
        half = len(current) // 2
        self._pending.extendleft([current[half:], current[:half]])

    def results(self) -> list[BatchResult]:
        """One result per item, in order. An item without one is a bug in `Batches` (never an
        answer the server may give: `_read_items` checks the count): it is raised, since a
        shorter list would pair every later result with the wrong item."""
        if self._pending:
            raise RuntimeError("results asked for before every batch was sent")
        results = []
        for n, result in enumerate(self._results):
            if result is None:
                raise RuntimeError(f"item {n} of {len(self._results)} has no result")
            results.append(result)
        return results


def item_body(
    body: Callable[..., bytes], item: Mapping[str, Any], n: int
) -> bytes | SimpleQueueError:
    """One item of a batch encoded by ``body``, or the `InvalidRequest` it would be answered;
    an item that is not a mapping of ``body``'s parameters is a `TypeError`."""
    if not isinstance(item, Mapping):
        raise TypeError(f"item {n} is a {type(item).__name__}, not a dict of parameters")
    parameters, required = _parameters(body)
    unknown = [key for key in item if key not in parameters]
    if unknown:
        raise TypeError(f"item {n}: not a parameter: {', '.join(map(repr, unknown))}")
    missing = [name for name in required if name not in item]
    if missing:
        raise TypeError(f"item {n}: missing {', '.join(map(repr, missing))}")
    try:
        return body(**item)
    except InvalidRequest as exc:
        return exc


@functools.cache
def _parameters(body: Callable[..., bytes]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names ``body`` takes, and those it requires."""
    parameters = inspect.signature(body).parameters
    required = (p.name for p in parameters.values() if p.default is inspect.Parameter.empty)
    return frozenset(parameters), tuple(required)


def _pack(items: Sequence[bytes | SimpleQueueError]) -> Iterable[list[int]]:
    """The positions of the items to send, in arrays of at most `MAX_BATCH` items and (unless
    one item is larger on its own) `BATCH_BYTES` bytes."""
    batch: list[int] = []
    size = 1  # the brackets, less the first item's comma
    for n, item in enumerate(items):
        if not isinstance(item, bytes):
            continue
        if batch and (len(batch) == MAX_BATCH or size + len(item) + 1 > BATCH_BYTES):
            yield batch
            batch, size = [], 1
        batch.append(n)
        size += len(item) + 1
    if batch:
        yield batch


def _read_items(response: httpx.Response, count: int) -> list[BatchResult]:
    items = _items.decode(response.content)
    if len(items) != count:
        raise msgspec.ValidationError(f"{len(items)} results for {count} items")
    return [_result(item) for item in items]


def _result(item: _Item) -> BatchResult:
    if 200 <= item.status < 300:
        if item.job is None:
            raise msgspec.ValidationError(f"a result of status {item.status} without its job")
        return BatchResult(item.status, job=item.job)
    detail = item.detail or f"HTTP {item.status}"
    return BatchResult(item.status, error=error_of(item.status, detail, None))
