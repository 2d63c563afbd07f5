"""simplequeue: a small, fast, trustworthy HTTP job queue.

from simplequeue import Client

with Client("http://127.0.0.1:8000") as queue:
    queue.submit("invoice-42", data={"amount": 12})
    job = queue.next()
"""

from simplequeue.client import AsyncClient, BatchResult, Client, Discard
from simplequeue.errors import (
    ConnectionFailed,
    InvalidRequest,
    JobConflict,
    JobGone,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
    RequestError,
    ServerError,
    SimpleQueueError,
    Unavailable,
)
from simplequeue.models import Changed, CompletionStatus, Job, JobState, QueueStats, Stats

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BatchResult",
    "Changed",
    "Client",
    "CompletionStatus",
    "ConnectionFailed",
    "Discard",
    "InvalidRequest",
    "Job",
    "JobConflict",
    "JobGone",
    "JobNotFound",
    "JobState",
    "LeaseLost",
    "PayloadTooLarge",
    "QueueStats",
    "RequestError",
    "ServerError",
    "SimpleQueueError",
    "Stats",
    "Unavailable",
]
