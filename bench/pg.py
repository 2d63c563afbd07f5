"""simplequeue on PostgreSQL for bench/cycle.py: several ``sq serve`` processes sharing one
fresh database, and the CPU time of both the servers and PostgreSQL. See bench/README.md."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from peers import Skip, SqSession, cpu_seconds, proc_stat

POSTGRES = os.environ.get("SIMPLEQUEUE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The database the bench connects to, to create (and drop) a fresh one per scenario
(``--postgres``)."""
CONNECT = 5
"""Seconds to reach PostgreSQL before the variant is skipped."""
MEASURED = """
SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type <> 'client backend'
"""
"""PostgreSQL's processes whose CPU time is the queue's: the fresh database's connections and
the shared ones (WAL writer, checkpointer, background writer, autovacuum), not the connections
to other databases (other work on the machine's PostgreSQL)."""


class PgSession(SqSession):
    """``servers`` ``sq serve --db postgresql://.../DB`` processes on one fresh database ``DB``,
    created here and dropped at the end."""

    def __init__(self, workdir: Path, base: str, servers: int, *, batched: bool) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise Skip("no psycopg package: pip install -e .") from exc
        if importlib.util.find_spec("simplequeue.store.postgres") is None:
            raise Skip("this tree has no PostgreSQL store yet")
        try:
            self.admin = psycopg.connect(base, autocommit=True, connect_timeout=CONNECT)
        except psycopg.Error as exc:
            where = urlsplit(base)
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise Skip(f"no PostgreSQL at {where.hostname}:{where.port} ({reason})") from exc
        self.database = f"sqbench_{secrets.token_hex(4)}"
        self.admin.execute(f'CREATE DATABASE "{self.database}"')
        url = urlsplit(base)._replace(path=f"/{self.database}").geturl()
        # PostgreSQL's server process is the parent of every connection's, this one's too.
        backend = self.admin.execute("SELECT pg_backend_pid()").fetchone()
        found = None if backend is None else proc_stat(Path(f"/proc/{backend[0]}/stat"))
        self.postmaster = None if found is None else found[0]
        self.ticks: dict[int, int] = {}
        self.gone = 0
        """Ticks of measured processes that have exited (their last reading)."""
        try:
            self._start(workdir, [["--db", url]] * servers, batched)
        except BaseException:
            with contextlib.suppress(Exception):
                self._drop()
            raise

    def cpu(self) -> dict[str, float]:
        """``sq serve``'s and PostgreSQL's, apart; PostgreSQL's only if its processes' /proc
        entries can be read (the same machine and PID namespace)."""
        serve = {"sq serve": sum(cpu_seconds(server.pid) for server in self.servers)}
        if self.postmaster is None:
            return serve
        rows = self.admin.execute(MEASURED, (self.database,)).fetchall()
        ticks: dict[int, int] = {}
        for pid in [self.postmaster, *(row[0] for row in rows)]:
            found = proc_stat(Path(f"/proc/{pid}/stat"))
            if found is not None:
                ticks[pid] = found[1]
        self.gone += sum(last for pid, last in self.ticks.items() if pid not in ticks)
        self.ticks = ticks
        seconds = (self.gone + sum(ticks.values())) / os.sysconf("SC_CLK_TCK")
        return {**serve, "PostgreSQL": seconds}

    def _drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self.admin.close()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._drop()
