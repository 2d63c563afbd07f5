from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from simplequeue.store import MemoryStore, SqliteStore, Store
from simplequeue.store.postgres import PostgresStore
from tests.postgres import dropping_postgres_schemas, postgres_url
from tests.servers import OpenStore, ServerProcess, open_client


@pytest.fixture(autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    """Every test's PostgreSQL schemas (`tests.postgres.postgres_url`) are dropped after it."""
    with dropping_postgres_schemas():
        yield


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each store a test runs on: a SQLite file, the in-memory store, and a PostgreSQL schema
    of the test's own (skipped unless ``$SIMPLEQUEUE_TEST_POSTGRES`` names a server)."""
    backend: str = request.param
    return backend


@pytest.fixture
def client(backend: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    """The app in-process on ``backend``, a retry due at once (so that a test can take the job
    again, or see it back in the queue, without waiting). Modules with a ``client`` of their own
    use that one instead."""
    with open_client(tmp_path, backend, retry_backoff=0.0) as c:
        yield c


@pytest.fixture
def open_store(backend: str, tmp_path: Path) -> OpenStore:
    """``async with open_store() as store``: a fresh, open store of ``backend``, for tests of the
    queue itself (``Queue(store, clock=...)``), closed afterwards."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Store]:
        store: Store
        if backend == "memory":
            store = MemoryStore()
        elif backend == "postgres":
            store = PostgresStore(postgres_url(tmp_path))
        else:
            store = SqliteStore(str(tmp_path / "queue.db"), synchronous="normal")
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    return opened


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real `sq serve` processes: ``serve()`` for a fresh SQLite file, or
    ``serve(db=path)`` for a given one. All are stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(db: str | None = None, *extra_args: str) -> ServerProcess:
        server = ServerProcess(
            db=db or str(tmp_path / f"queue-{len(started)}.db"),
            extra_args=extra_args,
            log_path=tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve: Callable[..., ServerProcess]) -> ServerProcess:
    """One real `sq serve` on a fresh SQLite file."""
    return serve()


@pytest.fixture
def server_fast(serve: Callable[..., ServerProcess]) -> ServerProcess:
    """One real `sq serve` with ``--synchronous normal``: for tests about atomicity, not
    durability, where an fsync per commit would only make them slow."""
    return serve(None, "--synchronous", "normal")
