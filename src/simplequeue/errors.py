"""Every error simplequeue raises, in one tree, shared by the server and the SDK.

    SimpleQueueError
     ├── RequestError             the API refused the request (HTTP 4xx)
     │    ├── InvalidRequest      400: a missing, malformed or forbidden field or query value
     │    ├── JobNotFound         404: no job has that id
     │    ├── JobConflict         409: the job exists with other content, or is in another state
     │    │    └── LeaseLost      409 "lease lost": that lease is no longer the job's current one
     │    ├── JobGone         410: the job finished and was pruned; only its tombstone is left
     │    └── PayloadTooLarge     413: the body is over the server's limit
     ├── ServerError              the server failed (HTTP 5xx), or answered something unreadable
     │    └── Unavailable         503: the store is busy or full; nothing changed, try again
     └── ConnectionFailed         the server could not be reached, or did not answer in time

The server raises the ``RequestError`` subclasses from the queue's rules and turns them into
problem documents; the SDK turns problem documents back into the same classes. ``detail`` is the
problem document's sentence that names the field or job.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConnectionFailed",
    "InvalidRequest",
    "JobConflict",
    "JobGone",
    "JobNotFound",
    "LeaseLost",
    "PayloadTooLarge",
    "RequestError",
    "ServerError",
    "SimpleQueueError",
    "Unavailable",
]


class SimpleQueueError(Exception):
    """The root of every simplequeue error."""

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code

    status_code: int = 500


class RequestError(SimpleQueueError):
    """The API refused the request; sending it again unchanged gets the same answer."""

    status_code = 400
    title: ClassVar[str] = "Bad Request"


class InvalidRequest(RequestError):
    status_code = 400
    title = "Bad Request"


class JobNotFound(RequestError):
    status_code = 404
    title = "Not Found"


class JobConflict(RequestError):
    status_code = 409
    title = "Conflict"


class LeaseLost(JobConflict):
    """The lease named is no longer the job's current one: it expired and the job was taken
    back, or the job finished or was cancelled. Nothing changed; the holder of that lease must
    stop working on the job, whose outcome is no longer its to record. The SDK raises it for a
    409 whose detail says "lease lost" (`LEASE_LOST`)."""


LEASE_LOST = "lease lost"
"""The words that open the detail of every 409 that `LeaseLost` stands for."""


class JobGone(RequestError):
    """The job finished and was deleted by the server's retention (``--keep-succeeded``,
    ``--keep-failed``); its tombstone still keeps the id from being queued again."""

    status_code = 410
    title = "Gone"


class PayloadTooLarge(RequestError):
    status_code = 413
    title = "Content Too Large"


REQUEST_ERROR_FOR_STATUS: dict[int, type[RequestError]] = {
    error.status_code: error
    for error in (InvalidRequest, JobNotFound, JobConflict, JobGone, PayloadTooLarge)
}
"""The answer's status code -> the class the server raises and the SDK reconstructs. A shared
table, not an error: it stays out of ``__all__``, which lists the error classes."""


class ServerError(SimpleQueueError):
    """The server failed (5xx), or its answer could not be read."""


class Unavailable(ServerError):
    """The store could not take the request in time (locked by another writer) or has no room
    (a full disk). Nothing was changed; the same request may be sent again after
    ``retry_after`` seconds (the answer's ``Retry-After``)."""

    status_code = 503

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConnectionFailed(SimpleQueueError):
    """The server could not be reached or did not answer in time."""
