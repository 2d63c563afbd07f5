"""Storage backends behind one protocol (`Store`). `open_store` picks one from a ``--db`` value."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from simplequeue.models import POOL_MAX
from simplequeue.store.base import NewJob, Store, StoreUnusable, UnknownCursor
from simplequeue.store.memory import MemoryStore
from simplequeue.store.sqlite import STORE_TIMEOUT, SqliteStore, Synchronous

__all__ = [
    "POSTGRES_SCHEMES",
    "STORE_TIMEOUT",
    "MemoryStore",
    "NewJob",
    "SqliteStore",
    "Store",
    "StoreUnusable",
    "Synchronous",
    "UnknownCursor",
    "shown",
    "store_for",
]


POSTGRES_SCHEMES = ("postgres://", "postgresql://")
"""How a ``--db`` value that names a PostgreSQL database begins."""


def shown(db: str) -> str:
    """A ``--db`` value as messages and logs show it: a PostgreSQL URL without its password (in
    the address or as a parameter), anything else as it is."""
    if not db.startswith(POSTGRES_SCHEMES):
        return db
    try:
        parts = urlsplit(db)
        params = parse_qsl(parts.query, keep_blank_values=True)
        if parts.password is None and "password" not in dict(params):
            return db
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = urlencode([(k, "***" if k == "password" else v) for k, v in params], safe="*")
        return parts._replace(netloc=netloc, query=query).geturl()
    except ValueError:
        return "a PostgreSQL URL that cannot be read"


def store_for(
    db: str,
    *,
    synchronous: Synchronous = "full",
    timeout: float = STORE_TIMEOUT,
    pool_max: int = POOL_MAX,
) -> Store:
    """The store a ``--db`` value names: a PostgreSQL URL (``postgresql://`` or
    ``postgres://``) for a queue that several servers share, else a SQLite path, or
    ``:memory:`` for a throwaway queue. ``synchronous`` is SQLite's, ``pool_max`` PostgreSQL's
    (the most connections this server opens)."""
    if db.startswith(POSTGRES_SCHEMES):
        # Imported here: psycopg costs every `sq` command a tenth of a second to import.
        from simplequeue.store.postgres import PostgresStore

        return PostgresStore(db, pool_max=pool_max, timeout=timeout)
    return SqliteStore(db, synchronous=synchronous, timeout=timeout)
