"""The ASGI servers the benchmark compared, each serving ``create_app(settings)``.

``sq serve`` uses one of these (see ``simplequeue.server.run``); the others stay here so that the
decision can be measured again. Run as ``python bench/candidates.py NAME --port P --db PATH
[--synchronous full|normal]``; ``bench/run.py --compare`` does that for every name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from simplequeue.server.app import create_app
from simplequeue.server.settings import Settings


def _uvicorn(settings: Settings, *, loop: str, http: str) -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop=loop,  # type: ignore[arg-type]
        http=http,  # type: ignore[arg-type]
        log_level=settings.log_level,
        log_config=None,
    )


def _granian_embedded(settings: Settings) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    server = Server(
        create_app(settings),
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
    asyncio.run(server.serve())


def granian_embed(settings: Settings) -> None:
    _granian_embedded(settings)


def granian_embed_uvloop(settings: Settings) -> None:
    import uvloop

    uvloop.install()
    _granian_embedded(settings)


def _load_app(settings: Settings) -> Any:
    return create_app(settings)


def granian_worker(settings: Settings) -> None:
    """Granian's own runner: a supervisor process and one worker process on uvloop."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        "simplequeue",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        log_level=settings.log_level,  # type: ignore[arg-type]
    ).serve(target_loader=partial(_load_app, settings), wrap_loader=False)


CANDIDATES: dict[str, Callable[[Settings], None]] = {
    "uvicorn-h11": partial(_uvicorn, loop="asyncio", http="h11"),
    "uvicorn-standard": partial(_uvicorn, loop="uvloop", http="httptools"),
    "granian-embed": granian_embed,
    "granian-embed-uvloop": granian_embed_uvloop,
    "granian-worker": granian_worker,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(CANDIDATES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        db=args.db, synchronous=args.synchronous, port=args.port, log_level="warning"
    )
    CANDIDATES[args.name](settings)


if __name__ == "__main__":
    main()
