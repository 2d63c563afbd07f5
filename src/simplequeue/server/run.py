"""Run the app under granian, in this process (with one access-log line per request when asked).

Granian was chosen by measuring (bench/README.md): on the same app it serves about twice the
requests per second of uvicorn with uvloop and httptools, for less CPU per request. It runs
embedded, on this process's event loop, rather than under its own runner, which would put the
app in a separate worker process: one process keeps ``kill`` of ``sq serve`` meaning what it says.
The loop is uvloop's where it exists (not on Windows): its cheaper wake-ups from other threads
matter because every store call returns from the SQLite thread.

Start-up happens in an order that lets every problem end the process with one line
(`CannotStart`) before anything is served or "Listening at" is logged: the options, the file
descriptor limit, the port (bound here, without ``SO_REUSEPORT``), then the store (the app's
lifespan, entered here), and only then granian, which is handed the bound socket.

Bounds against clients that hold connections without using them (docs/operations.md): at most
``max_connections`` at once (granian's ``backpressure``), a ``header_timeout`` from a connection's
start or its previous answer until a request's headers are in (hyper's header read timeout),
and a ``body_timeout`` for the body after that (here: granian has none, by choice: its issue
#728). HTTP/1.1 only: in granian's "auto" mode, hyper first waits for enough bytes to tell
HTTP/1.1 from HTTP/2 with no timeout at all, so a connection that sends nothing was kept forever
(measured: still open after 40 s); HTTP/1.1-only, the header timeout runs from the first moment.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from simplequeue.inert import inert
from simplequeue.server.app import create_app
from simplequeue.server.problems import problem_response
from simplequeue.server.settings import Settings
from simplequeue.store import StoreUnusable, shown

__all__ = ["CannotStart", "serve"]

logger = logging.getLogger("simplequeue.server")

# Granian's loggers hand their records to the root logger, so that `--log-level` and one
# format govern the server's lines, the access log and the app's alike.
_PROPAGATE = {"handlers": [], "propagate": True}
LOG_CONFIG = {"loggers": {"_granian": dict(_PROPAGATE), "granian.access": dict(_PROPAGATE)}}
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

FD_RESERVE = 64
"""File descriptors kept beside the connections: SQLite's files (three per connection), the
log, the event loop's own and the threads'."""


class CannotStart(Exception):
    """A problem that keeps `sq serve` from starting; its message is the one line to print."""


# -- logs: one line per record, whatever a client sends ------------------------------------------


class OneLinePerRecord(logging.Formatter):
    """Every record is one line: control characters in it are shown as escapes (``\\n``,
    ``\\x1b``). A traceback keeps its lines, each indented, so no line a client can influence
    starts where a record does (with the time)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return inert(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return self._indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return self._indented(super().formatStack(stack_info))

    @staticmethod
    def _indented(text: str) -> str:
        lines = text.split("\n")
        return "\n".join("    " + inert(line) for line in lines)


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLinePerRecord(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


class _WithoutEmbeddedNotice(logging.Filter):
    """Drops granian's "Embedded server is experimental!" line, printed at every start.

    It speaks to us, who chose the embedded API knowingly (bench/README.md says why) and test
    it, not to the operator reading the server's log, whom it would only alarm.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


# -- start-up: each step fails with one line -----------------------------------------------------


def _fit_file_limit(settings: Settings) -> int:
    """The connection limit the process's file descriptor limit allows, raising the soft limit
    toward the hard one if needed. Past the limit, granian's accept loop would fail, retry and
    fail again; a lower connection limit instead makes further clients wait in the backlog."""
    wanted = settings.max_connections + FD_RESERVE
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return settings.max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitting = max(1, soft - FD_RESERVE)
        # nginx does the same with worker_connections above the limit: it says so and serves.
        logger.warning(
            "--max-connections %d needs %d open files, but the limit is %d (ulimit -n): "
            "serving at most %d connections at once",
            settings.max_connections,
            wanted,
            soft,
            fitting,
        )
        return fitting
    return settings.max_connections


def _listen(settings: Settings) -> socket.socket:
    """The listening socket. Granian would bind with ``SO_REUSEPORT``, which lets a second
    server bind the same port and take half its connections (on its own database); bound here
    without it, a port in use is an error, whoever holds it."""
    where = f"{settings.host}:{settings.port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise CannotStart(f"--host {settings.host}: not an address to listen on ({exc})") from None
    listener = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # elsewhere: reuse a port whose last connections are in TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(settings.backlog)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another `sq serve`, or another program, listens there)"
        raise CannotStart(f"cannot listen on {where}: {reason}") from None
    return listener


def _socket_holder(listener: socket.socket, backlog: int) -> SocketHolder:
    """Granian's handle for a socket bound by us. Its constructor differs by platform (granian's
    src/net.rs); granian takes over the duplicate and closes it when it stops."""
    fd = listener.dup().detach()
    args: tuple[int | bool, ...] = (fd, False)  # (fd, is a Unix socket)
    if sys.platform == "win32":
        args = (fd,)
    elif sys.platform.startswith(("linux", "freebsd")):
        args = (fd, False, backlog)
    return SocketHolder(*args)


class _Server(Server):
    """Granian's embedded server on a socket bound beforehand (`_listen`)."""

    def __init__(self, target: ASGIApp, listener: socket.socket, **options: Any) -> None:
        super().__init__(target, **options)
        self._listener = listener

    def _init_shared_socket(self) -> None:
        # Replaces granian's own bind, which would use SO_REUSEPORT (granian's src/net.rs).
        self._ssp = None
        # (granian's annotations declare the attribute None until its own bind sets it)
        self._shd = _socket_holder(self._listener, self.backlog)  # type: ignore[assignment]


# -- serving -------------------------------------------------------------------------------------


class _BodyWatch:
    __slots__ = ("answered", "body_done", "expired", "timer")

    def __init__(self) -> None:
        self.answered = False
        self.body_done = False
        self.expired = False
        self.timer: asyncio.TimerHandle | None = None


def bounded_body(app: ASGIApp, timeout: float) -> ASGIApp:
    """``app``, with a request whose body is not all in ``timeout`` seconds after its headers
    answered 408 (and its connection closed): a client that trickles a body, or stops sending
    one, cannot hold a connection and its buffered body for ever. Once the body is in, the app
    may wait on ``receive`` as long as it likes (for a disconnect)."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # One timer per request, set at the first receive and cancelled once the body is in:
        # far cheaper on the hot path than a timeout scope around every receive.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        task = asyncio.current_task()
        assert task is not None
        watch = _BodyWatch()

        def expire() -> None:
            watch.expired = True
            task.cancel()

        async def timed_receive() -> ReceiveMessage:
            if watch.body_done:
                return await receive()
            if watch.timer is None:
                watch.timer = loop.call_at(deadline, expire)
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                watch.body_done = True
                watch.timer.cancel()
            return message

        async def watched_send(message: Message) -> None:
            watch.answered = watch.answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, timed_receive, watched_send)
        except asyncio.CancelledError:
            if not watch.expired or watch.answered:
                raise
            task.uncancel()
            detail = f"the request body did not arrive within {timeout:g}s of its headers"
            await problem_response(408, detail, headers={"connection": "close"})(
                scope, receive, send
            )
        finally:
            if watch.timer is not None:
                watch.timer.cancel()

    return bounded


def _sole(exc: BaseException) -> BaseException:
    """The one exception inside ``exc``: Litestar's lifespan runs in an anyio task group, which
    wraps what the store raised in an exception group."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close the store (the app's lifespan) and return.
    Raises `CannotStart` when it cannot start, before anything is served."""
    _configure_logging(settings)
    max_connections = _fit_file_limit(settings)
    listener = _listen(settings)
    try:
        if sys.platform == "win32":  # uvloop does not exist there
            asyncio.run(_serve(settings, listener, max_connections))
        else:
            import uvloop

            uvloop.run(_serve(settings, listener, max_connections))
    finally:
        listener.close()


async def _serve(settings: Settings, listener: socket.socket, max_connections: int) -> None:
    app = create_app(settings)
    async with AsyncExitStack() as lifespan:
        # The app's lifespan opens the store: entered here, before granian serves, so a store
        # that cannot be used ends the start-up with one line (granian would run it in its
        # worker, after logging "Listening at", and log a traceback).
        try:
            await lifespan.enter_async_context(app.lifespan())
        except Exception as exc:
            cause = _sole(exc)
            if isinstance(cause, StoreUnusable):
                raise CannotStart(f"--db: {cause}") from None
            logger.debug("opening the store failed", exc_info=exc)
            raise CannotStart(
                f"--db {shown(settings.db)}: cannot open the store: {cause!r} "
                "(--log-level debug shows the traceback)"
            ) from None
        access_log = settings.access_log and logger.isEnabledFor(logging.INFO)
        if not access_log:
            logger.info("access log off (sq serve --access-log turns it on)")
        logger.info("store: %s", shown(settings.db))
        logger.info("retention: %s", _retention(settings))
        embedded = _Server(
            bounded_body(app, settings.body_timeout),
            listener,
            address=settings.host,
            port=settings.port,
            # No lifespan messages: the lifespan is run above, around the whole serve.
            interface=Interfaces.ASGINL,
            http=HTTPModes.http1,
            websockets=False,
            backlog=settings.backlog,
            backpressure=max_connections,
            http1_settings=HTTP1Settings(header_read_timeout=round(settings.header_timeout * 1000)),
            log_level=LogLevels(settings.log_level),
            log_dictconfig=LOG_CONFIG,
            # Granian formats an access line for every request once this is on, whatever the
            # level: it is on only when asked for and the level would print it.
            log_access=access_log,
            log_access_format=ACCESS_FORMAT,
        )
        logging.getLogger("_granian").addFilter(_WithoutEmbeddedNotice())
        # Embedded, granian leaves signals to its host: stop() ends the serve loop, after which
        # the app's lifespan shutdown runs and the store closes.
        loop = asyncio.get_running_loop()
        stop_serving: Callable[[], None] = embedded.stop  # granian's is untyped

        def stop() -> None:
            # Long-polling workers are answered now (204), so that stopping never waits out a
            # long-poll, and no job is handed out while the server drains.
            if queue := getattr(app.state, "queue", None):
                queue.stop_waiting()
            stop_serving()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        await embedded.serve()


def _retention(settings: Settings) -> str:
    """The start-up line's account of retention: what is kept, and for how long."""

    def kept(seconds: float | None) -> str:
        return "forever" if seconds is None else f"{seconds:g}s after they finish"

    if settings.keep_succeeded is None and settings.keep_failed is None:
        return "every job is kept forever (--keep-succeeded, --keep-failed)"
    return (
        f"succeeded jobs kept {kept(settings.keep_succeeded)}, "
        f"failed jobs {kept(settings.keep_failed)}; deleted ones leave a tombstone"
    )
