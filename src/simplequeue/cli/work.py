"""``sq work -- COMMAND ARGS...``: any command becomes a worker.

The SDK's worker loop (`Client.work`) long-polls, heartbeats and completes; this module only runs
the command for one job and turns how it ended into the handler's answer: a result (exit 0) or
an exception (anything else). The command's input and output go through temporary files, not
pipes: nothing can deadlock on a full pipe, and memory stays bounded however much it prints.

Signals are this module's, not the loop's: the loop runs in a thread of its own, and the main
thread turns the first SIGINT/SIGTERM into "take no more jobs" and a second Ctrl-C into signals
for the commands still running. The commands run in sessions of their own, so a Ctrl-C typed in the
terminal reaches `sq work` only, and a running job is not killed by the key that asked to let it
finish.

A job whose lease is lost while its command runs (it was cancelled, or taken back after its
lease ran out) is no longer this worker's: its outcome would not be recorded, and whoever holds
it now may be running it too. The SDK's loop reports it (`Worker.lost`), and the command gets
SIGTERM, then SIGKILL if it still runs `LOST_GRACE` seconds later.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

import msgspec
from rich.console import Console

from simplequeue.cli import render
from simplequeue.client import Client
from simplequeue.client.base import URL_ENV
from simplequeue.client.worker import logger
from simplequeue.models import MAX_ERROR_LENGTH, Job
from simplequeue.server.settings import MIB

__all__ = [
    "ERROR_ROOM",
    "LOST_GRACE",
    "RESULT_LIMIT",
    "CommandFailed",
    "Worker",
    "cannot_run",
    "command_error",
    "read_result",
    "run",
]

RESULT_LIMIT = MIB - 64 * 1024
"""The most output a command may print for it to become the job's ``result``: the server's
default limit on a request's body, less room for the rest of the completion around it. More is
not sent (the job still succeeds, with no result)."""

LOST_GRACE = 5.0
"""Seconds a command whose job was lost has between SIGTERM and SIGKILL: time to clean up
(remove a temporary file, close a connection), not to finish the job."""

JOB_ID_ENV = "SQ_JOB_ID"
LEASE_ID_ENV = "SQ_LEASE_ID"
ATTEMPT_ENV = "SQ_ATTEMPT"


class CommandFailed(Exception):
    """The command ended badly: the job fails, and is retried while attempts remain."""


ERROR_ROOM = MAX_ERROR_LENGTH - len(f"{CommandFailed.__name__}: ")
"""The most characters of a command's error: the SDK records it as ``CommandFailed: <text>``,
and cuts what is over `MAX_ERROR_LENGTH` from the end, where stderr says the most."""


def cannot_run(program: str) -> str | None:
    """Why ``program`` cannot be started (checked once, before any job is taken), or ``None``."""
    if shutil.which(program) is None:
        return f"cannot run {program!r}: no such command, or it is not executable"
    return None


def command_error(returncode: int, stderr_tail: str, limit: int = ERROR_ROOM) -> str:
    """The job's ``error``: how the command ended, then as much of the end of its stderr as fits
    in ``limit`` characters (the end, because that is where programs say why they stopped)."""
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exit code {returncode}"
    tail = stderr_tail.strip()
    if not tail:
        return how[:limit]
    head = f"{how}: "
    room = limit - len(head)
    if len(tail) > room:
        tail = "…" + tail[-(room - 1) :] if room > 1 else ""
    return (head + tail)[:limit]


def read_result(stdout: bytes) -> tuple[Any, str | None]:
    """The job's ``result`` from the command's standard output, and a note when there is none
    although something was printed. JSON becomes the result; anything else is not sent."""
    if len(stdout) > RESULT_LIMIT:
        return None, f"stdout is over {RESULT_LIMIT // 1024} KiB: no result recorded"
    if not stdout.strip():
        return None, None
    try:
        return msgspec.json.decode(stdout), None
    except msgspec.DecodeError:
        return None, "stdout is not JSON: no result recorded"


def _tail(file: IO[bytes], chars: int) -> str:
    # At most 4 bytes a character in UTF-8; a character cut at the start is replaced, then cut.
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - 4 * chars))
    return file.read().decode("utf-8", errors="replace")[-chars:]


@dataclass
class Worker:
    """Runs ``argv`` once per job: the handler given to `Client.work`."""

    argv: tuple[str, ...]
    url: str
    console: Console
    clock: Callable[[], float] = time.monotonic
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None
    """Why this worker stopped taking jobs by itself (its command could not be started)."""
    lost_grace: float = LOST_GRACE
    _running: dict[subprocess.Popen[bytes], Job] = field(default_factory=dict)
    _lost: dict[subprocess.Popen[bytes], threading.Timer] = field(default_factory=dict)
    """The commands whose jobs were lost, each with the timer that sends it SIGKILL."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _signals: int = 0

    def __call__(self, job: Job) -> Any:
        started = self.clock()
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            stdin.write(msgspec.json.encode(job))
            stdin.seek(0)
            returncode, lost = self._run(job, stdin, stdout, stderr)
            took = self.clock() - started
            if lost:  # its outcome is not recorded: the SDK dropped the job
                how = command_error(returncode, "")
                self._say(job, "stopped", f"{render.elapsed(took)} · {how}")
                raise CommandFailed(f"the job was lost; its command was stopped ({how})")
            if returncode != 0:
                error = command_error(returncode, _tail(stderr, ERROR_ROOM))
                self._say(job, "failed", f"{render.elapsed(took)} · {error}")
                raise CommandFailed(error)
            stdout.seek(0)
            result, note = read_result(stdout.read(RESULT_LIMIT + 1))
        detail = render.elapsed(took) + (f" · {note}" if note else "")
        self._say(job, "succeeded", detail)
        return result

    def _run(
        self, job: Job, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]
    ) -> tuple[int, bool]:
        """Run the command for ``job``: its exit code, and whether the job was lost meanwhile."""
        env = {
            **os.environ,
            URL_ENV: self.url,  # so that `sq` inside the command talks to the same server
            JOB_ID_ENV: job.job_id,
            LEASE_ID_ENV: job.lease_id or "",
            ATTEMPT_ENV: str(job.attempts),
        }
        with self._lock:
            if self._signals > 1:  # told to stop what runs: start nothing new
                reason = "not started: sq work was stopped"
                self._say(job, "failed", reason)
                raise CommandFailed(reason)
            try:
                process = subprocess.Popen(
                    self.argv,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                # Found, but not startable (a script without #!, a file made unreadable since):
                # every job would fail the same way here, so this worker stops taking them.
                reason = f"cannot run {self.argv[0]!r}: {exc.strerror or exc}"
                self.fatal = reason
                self.stop.set()
                self._say(job, "failed", reason)
                raise CommandFailed(reason) from None
            self._running[process] = job
            self._say(job, "started", None)  # only now: a job held ahead may never start
        try:
            returncode = process.wait()
        finally:
            with self._lock:
                del self._running[process]
                killer = self._lost.pop(process, None)
            if killer is not None:
                killer.cancel()
        return returncode, killer is not None

    def lost(self, job: Job) -> None:
        """The SDK's loop found ``job``'s lease gone (a heartbeat was answered "lease lost"):
        stop its command, if one runs, with SIGTERM now and SIGKILL after `lost_grace`."""
        with self._lock:
            # That hand-out only: the same job may run here again, under a new lease.
            running = [
                process
                for process, held in self._running.items()
                if (held.job_id, held.lease_id) == (job.job_id, job.lease_id)
                and process not in self._lost
            ]
            for process in running:
                killer = threading.Timer(self.lost_grace, self._kill, (process,))
                killer.daemon = True
                self._lost[process] = killer
                killer.start()
        for process in running:
            # The SDK's own line, just before, says why the job is no longer this worker's.
            self._say(
                job,
                "lost",
                f"sending SIGTERM to its command (SIGKILL in {self.lost_grace:g}s if it runs on)",
            )
            with suppress(ProcessLookupError):  # it ended in the meantime
                os.killpg(process.pid, signal.SIGTERM)

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if process not in self._running:  # it ended after SIGTERM
                return
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first signal stops taking jobs. After it, each SIGINT (Ctrl-C again) is passed on
        to the commands still running: SIGTERM the first time, SIGKILL after that.

        A repeated SIGTERM only stops taking jobs: process managers and `timeout` may send it
        to the process and to its group at once, and that must not kill the jobs in hand.
        """
        with self._lock:
            first = self._signals == 0
            escalate = not first and signum == signal.SIGINT
            if first or escalate:
                self._signals += 1
            count, running = self._signals, list(self._running)
        self.stop.set()
        if first:
            self.note(
                f"stopping: no more jobs; waiting for {len(running)} running command(s) "
                "(press Ctrl-C again to stop them)"
            )
        if not escalate or not running:
            return
        sent = signal.SIGTERM if count == 2 else signal.SIGKILL
        self.note(f"sending {sent.name} to {len(running)} running command(s)")
        for process in running:
            with suppress(ProcessLookupError):  # it ended in the meantime
                os.killpg(process.pid, sent)

    def _say(self, job: Job, outcome: str, detail: str | None) -> None:
        self.console.print(render.work_line(datetime.now(UTC), job, outcome, detail))

    def note(self, text: str) -> None:
        self.console.print(render.work_note(datetime.now(UTC), text))


class _ToLog(logging.Handler):
    """The SDK loop's own messages (a lease lost, the server unreachable) as lines of the log."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(logging.INFO)
        self._worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        # A failed command is already a line of its own, with its reason; the loop's report of
        # it is the traceback of `CommandFailed`, which says nothing about the command.
        return record.funcName != "outcome_of_error"

    def emit(self, record: logging.LogRecord) -> None:
        self._worker.note(record.getMessage())


def run(
    client: Client,
    worker: Worker,
    *,
    concurrency: int,
    prefetch: int,
    lease: int | None,
    queues: list[str] | None = None,
) -> None:
    """Run the SDK's loop until a signal or ``worker.stop``; its errors are raised here."""
    failure: list[BaseException] = []
    log = _ToLog(worker)
    logger.addHandler(log)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)

    def loop() -> None:
        try:
            client.work(
                worker,
                queues=queues,
                concurrency=concurrency,
                prefetch=prefetch,
                lease=lease,
                stop=worker.stop,
                on_lost=worker.lost,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)
            worker.stop.set()

    # A closed terminal (SIGHUP) stops it as SIGTERM does, rather than killing it outright and
    # leaving its commands running on with nobody to complete their jobs.
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, worker.on_signal) for sig in signals}
    thread = threading.Thread(target=loop, name="sq-work")
    try:
        thread.start()
        thread.join()  # signal handlers run in this thread, between the waits of join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.removeHandler(log)
    if failure:
        raise failure[0]
