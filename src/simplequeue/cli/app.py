"""The `sq` Typer app."""

from __future__ import annotations

from typing import Annotated

import typer

from simplequeue.server.settings import MIB, LogLevel, Synchronous

app = typer.Typer(
    name="sq",
    help="simplequeue: submit jobs, take the next one, complete it, watch it all live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


DEFAULT_URL = "http://127.0.0.1:8000"


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option(envvar="SIMPLEQUEUE_URL", help="The simplequeue server to talk to."),
    ] = DEFAULT_URL,
) -> None:
    ctx.obj = url


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[
        str, typer.Option(help="SQLite file, or :memory: for a throwaway queue.")
    ] = "simplequeue.db",
    synchronous: Annotated[
        Synchronous,
        typer.Option(help="full: acknowledged jobs survive power loss; normal: a server crash."),
    ] = "full",
    max_body_size: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = MIB,
    log_level: Annotated[LogLevel, typer.Option(help="Logging level.")] = "info",
    server: Annotated[str, typer.Option(hidden=True)] = "uvicorn",
) -> None:
    """Run the server.

    Example: sq serve --port 8000 --db ./simplequeue.db
    """
    from simplequeue.server.run import serve as run
    from simplequeue.server.settings import Settings

    settings = Settings(
        db=db,
        synchronous=synchronous,
        max_body_size=max_body_size,
        host=host,
        port=port,
        log_level=log_level,
    )
    run(settings, server=server)  # type: ignore[arg-type]


def main() -> None:
    app()
