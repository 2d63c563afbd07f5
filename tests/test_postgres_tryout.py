"""Defects found by trying the PostgreSQL scale-out as a hostile user (issue 12): a database
whose ``sq_meta`` table is there but empty (a half-made schema, or an operator's stray
``DELETE``) makes opening the store fail with an error nobody planned for, and that path must
still answer in one line and never print the password of the ``--db`` URL.

Skipped unless ``$SIMPLEQUEUE_TEST_POSTGRES`` names a server (tests/postgres.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from simplequeue.store import SqliteStore
from tests.postgres import fresh_database
from tests.servers import free_port

PASSWORD = "s3cret-pw"
"""Sent in the URL; the test server trusts local connections, so any password is accepted."""


@pytest.fixture
def url_with_password() -> Iterator[str]:
    """A fresh database whose ``sq_meta`` exists without its row, and its URL with a password."""
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE sq_meta (one integer PRIMARY KEY, version integer)")
        parts = urlsplit(url)
        user, host = parts.netloc.split("@", 1)
        yield parts._replace(netloc=f"{user.split(':')[0]}:{PASSWORD}@{host}").geturl()


async def make_sqlite(path: str) -> None:
    """A SQLite store file with no jobs: a source that ``sq copy`` accepts."""
    store = SqliteStore(path)
    await store.open()
    await store.close()


def sq(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "simplequeue", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_serve_on_an_unusable_schema_says_one_line_without_the_password(
    url_with_password: str,
) -> None:
    started = sq("serve", "--db", url_with_password, "--port", str(free_port()))
    assert started.returncode == 6
    assert len(started.stderr.strip().splitlines()) == 1, started.stderr
    assert PASSWORD not in started.stderr + started.stdout


def test_copy_into_an_unusable_schema_says_one_line_without_a_traceback(
    url_with_password: str, tmp_path: Path
) -> None:
    source = str(tmp_path / "empty.db")
    asyncio.run(make_sqlite(source))
    copied = sq("copy", "--from", source, "--to", url_with_password)
    assert copied.returncode != 0
    assert "Traceback" not in copied.stderr, copied.stderr
    assert len(copied.stderr.strip().splitlines()) == 1, copied.stderr
    assert PASSWORD not in copied.stderr + copied.stdout
