"""Run the app under granian, in this process, with one access-log line per request.

Granian was chosen by measuring (bench/README.md): on the same app it serves about twice the
requests per second of uvicorn with uvloop and httptools, for less CPU per request. It runs
embedded, on this process's event loop, rather than under its own runner, which would put the
app in a separate worker process: one process keeps ``kill`` of ``sq serve`` meaning what it says.
The loop is uvloop's where it exists (not on Windows): its cheaper wake-ups from other threads
matter because every store call returns from the SQLite thread.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from simplequeue.server.app import create_app
from simplequeue.server.settings import Settings

__all__ = ["serve"]

# Granian's loggers hand their records to the root logger, so that `--log-level` and one
# format govern the server's lines, the access log and the app's alike.
_PROPAGATE = {"handlers": [], "propagate": True}
LOG_CONFIG = {"loggers": {"_granian": dict(_PROPAGATE), "granian.access": dict(_PROPAGATE)}}
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


class _WithoutEmbeddedNotice(logging.Filter):
    """Drops granian's "Embedded server is experimental!" line, printed at every start.

    It speaks to us, who chose the embedded API knowingly (bench/README.md says why) and test
    it, not to the operator reading the server's log, whom it would only alarm.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close the store (the app's lifespan) and return."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if sys.platform == "win32":  # uvloop does not exist there
        asyncio.run(_serve(settings))
    else:
        import uvloop

        uvloop.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    embedded = Server(
        create_app(settings),
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        log_level=LogLevels(settings.log_level),
        log_dictconfig=LOG_CONFIG,
        # Granian formats an access line for every request once this is on, whatever the
        # level: it is on only when the level would print it.
        log_access=logging.getLogger().isEnabledFor(logging.INFO),
        log_access_format=ACCESS_FORMAT,
    )
    logging.getLogger("_granian").addFilter(_WithoutEmbeddedNotice())
    # Embedded, granian leaves signals to its host: stop() ends the serve loop, after which
    # the app's lifespan shutdown runs and the store closes.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, embedded.stop)
    await embedded.serve()
