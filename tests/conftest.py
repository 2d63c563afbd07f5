from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess


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
