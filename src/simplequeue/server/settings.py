"""The server's settings: one frozen value, built by `sq serve` and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simplequeue.jsontext import MAX_DEPTH
from simplequeue.models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS,
    MAX_BODY_SIZE,
    MAX_LEASE_SECONDS,
    POOL_MAX,
    RETRY_BACKOFF,
)
from simplequeue.queue import LOOK_INTERVAL
from simplequeue.store.sqlite import STORE_TIMEOUT, Synchronous

__all__ = [
    "BACKLOG",
    "BODY_TIMEOUT",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "HEADER_TIMEOUT",
    "LOOK_INTERVAL",
    "LOOK_INTERVAL_MAX",
    "LOOK_INTERVAL_MIN",
    "MAX_ATTEMPTS",
    "MAX_CONNECTIONS",
    "MAX_DEPTH",
    "MAX_LEASE_SECONDS",
    "MIB",
    "POOL_MAX",
    "RETRY_BACKOFF",
    "STORE_TIMEOUT",
    "LogLevel",
    "Settings",
    "Synchronous",
]

LogLevel = Literal["debug", "info", "warning", "error"]

MIB = MAX_BODY_SIZE
"""The default body limit (defined with the other shared limits, in simplequeue.models)."""

# The connection limits (docs/operations.md says why each default is what it is).
MAX_CONNECTIONS = 1024
"""Connections served at once; more wait in the listen backlog until one closes."""
BACKLOG = 1024
"""Connections the kernel holds, accepted but not yet served (Linux caps it at somaxconn)."""
HEADER_TIMEOUT = 10.0
"""Seconds a connection may take to send a request's headers, counted from when it opened or
from the end of its previous answer: so also how long an idle keep-alive connection is kept."""
BODY_TIMEOUT = 30.0
"""Seconds a request may take to send its body once its headers are in."""
LOOK_INTERVAL_MIN, LOOK_INTERVAL_MAX = 0.05, 60.0
"""The range of ``--look-interval``: more often than 20 times a second is mostly work on the
database; less often than once a minute leaves ended leases unnoticed for too long."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    db: str = "simplequeue.db"
    """A SQLite file path, or ``:memory:`` for a throwaway queue."""
    synchronous: Synchronous = "full"
    """SQLite's durability: ``full`` survives power loss, ``normal`` only a crash of the server."""
    max_body_size: int = MIB
    """Requests with a larger body are refused with 413."""
    max_json_depth: int = MAX_DEPTH
    """``data`` nested deeper than this is refused with 400, before anything is stored."""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """A job's ``maxAttempts`` when its submit names none."""
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    """A lease's length when ``/jobs/next`` names none."""
    retry_backoff: float = RETRY_BACKOFF
    """Seconds before a failed job's first retry (``retry: true``); doubling, with jitter."""
    keep_succeeded: float | None = None
    """Seconds a succeeded job is kept once finished, then deleted leaving a tombstone
    (``None``: kept forever)."""
    keep_failed: float | None = None
    """The same for failed jobs."""
    store_timeout: float = STORE_TIMEOUT
    """Seconds a request may wait for the store (a lock held by another process, or its turn)
    before it is answered 503 with nothing changed. Keep it below the clients' read timeout
    (the SDK's is 10 s), so that the server gives up first: a claim must never commit after
    its caller stopped waiting for the answer."""
    look_interval: float = LOOK_INTERVAL
    """Seconds between two of the server's looks: it takes back ended leases, lets scheduled
    jobs that fell due in, prunes, and wakes waiting workers to look for jobs another process
    added (the only way they hear of those on SQLite; on PostgreSQL, the fallback while its
    LISTEN connection is down)."""
    pool_max: int = POOL_MAX
    """PostgreSQL only: connections this server opens to the database at most (beside the one
    that listens for other servers' jobs)."""
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    """Names the server answers to besides loopback ones and ``host`` (unless a wildcard such as
    0.0.0.0): any other ``Host`` header is refused with 400, against DNS rebinding. ``*``: any."""
    port: int = 8000
    log_level: LogLevel = "info"
    access_log: bool = False
    """One line per request at ``info``. Off by default: it costs about 80 us of CPU a request
    (a quarter of ``submit``'s throughput, bench/README.md)."""
    max_connections: int = MAX_CONNECTIONS
    backlog: int = BACKLOG
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
