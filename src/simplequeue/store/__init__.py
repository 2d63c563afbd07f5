"""Storage backends behind one protocol (`Store`). `open_store` picks one from a ``--db`` value."""

from __future__ import annotations

from simplequeue.store.base import NewJob, Store, StoreUnusable, UnknownCursor
from simplequeue.store.memory import MemoryStore
from simplequeue.store.sqlite import STORE_TIMEOUT, SqliteStore, Synchronous

__all__ = [
    "STORE_TIMEOUT",
    "MemoryStore",
    "NewJob",
    "SqliteStore",
    "Store",
    "StoreUnusable",
    "Synchronous",
    "UnknownCursor",
    "store_for",
]


def store_for(
    db: str, *, synchronous: Synchronous = "full", timeout: float = STORE_TIMEOUT
) -> Store:
    """The store a ``--db`` value names: a SQLite path, or ``:memory:`` for a throwaway queue."""
    if db.startswith(("postgres://", "postgresql://")):
        # PostgreSQL arrives with the scale-out step of the roadmap; refuse clearly until then.
        raise ValueError("PostgreSQL is not supported yet; use a SQLite path for --db")
    return SqliteStore(db, synchronous=synchronous, timeout=timeout)
