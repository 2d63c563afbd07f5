"""Run the app under an ASGI server, with one access-log line per request."""

from __future__ import annotations

import logging
from typing import Literal

from simplequeue.server.app import create_app
from simplequeue.server.settings import Settings

AsgiServer = Literal["uvicorn", "granian"]


def serve(settings: Settings, *, server: AsgiServer = "uvicorn") -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    if server == "granian":
        import asyncio

        from granian.constants import Interfaces
        from granian.server.embed import Server

        asyncio.run(
            Server(
                app, address=settings.host, port=settings.port, interface=Interfaces.ASGI
            ).serve()
        )
        return
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=True,
        log_config=None,
    )
