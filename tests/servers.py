"""The servers tests talk to: the app in process (`open_client`), and real `sq serve` processes
for tests that need one (concurrency, crashes, the CLI, a browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from simplequeue.server import Settings, create_app
from simplequeue.store import POSTGRES_SCHEMES, MemoryStore, Store
from tests.postgres import postgres_url

# The address Litestar's TestClient requests go to. Its default, testserver.local, is not a name
# the server answers to (guard.py: the Host check against DNS rebinding); a loopback one is.
APP_URL = "http://127.0.0.1"


OpenStore = Callable[[], AbstractAsyncContextManager[Store]]
"""The ``open_store`` fixture (conftest.py): ``async with open_store() as store``, for tests of
the queue itself rather than of a server."""


def open_client(tmp_path: Path, backend: str, **settings: Any) -> TestClient[Any]:
    """The app in process, on the ``memory`` store, a SQLite file in ``tmp_path``, or a
    PostgreSQL schema of ``tmp_path``'s own (``postgres``)."""
    if backend == "memory":
        return TestClient(create_app(Settings(**settings), store=MemoryStore()), base_url=APP_URL)
    if backend == "postgres":
        db = postgres_url(tmp_path)
        assert db.startswith(POSTGRES_SCHEMES), db  # else store_for opens a SQLite file
        return TestClient(create_app(Settings(db=db, **settings)), base_url=APP_URL)
    # No fsync per commit: these tests are about HTTP; durability has tests/test_crash.py.
    db = str(tmp_path / "queue.db")
    return TestClient(
        create_app(Settings(db=db, synchronous="normal", **settings)), base_url=APP_URL
    )


TOTALS = ("submitted", "running", "succeeded", "failed", "total")
"""The top-level counts of ``GET /stats`` (CONTRACT §3)."""


def totals(stats: dict[str, Any]) -> dict[str, Any]:
    """``GET /stats``' top-level counts alone, without its per-queue figures (§8)."""
    return {key: stats[key] for key in TOTALS}


def without_ages(stats: dict[str, Any]) -> dict[str, Any]:
    """``GET /stats``' answer with each queue's ``oldestDueAgeSeconds``, which grows while a job
    waits, reduced to whether there is one: what stays the same while nothing changes."""
    queues = {
        name: {**figures, "oldestDueAgeSeconds": figures["oldestDueAgeSeconds"] is not None}
        for name, figures in stats["queues"].items()
    }
    return {**stats, "queues": queues}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One `sq serve` on 127.0.0.1. ``start`` waits until it answers /health."""

    db: str
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simplequeue",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                self.db,
                "--log-level",
                "warning",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if not isinstance(log, int):  # DEVNULL is an int; only a file we opened needs closing
            log.close()  # the child has its own copy; ours would leak (ResourceWarning)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sq serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sq serve did not answer on {self.url} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or close anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
