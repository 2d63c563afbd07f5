from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner, Result

from simplequeue import Client
from simplequeue.server import Settings, create_app
from simplequeue.store import MemoryStore
from tests.servers import APP_URL

# The module, not the Typer object that `simplequeue.cli` re-exports under the same name.
cli_app = importlib.import_module("simplequeue.cli.app")

Run = Callable[..., Result]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """An SDK client on an in-process app; every `sq` command in the test talks to that app.
    The in-memory store: these tests are about the command line, and every store passes the
    same contract suite (tests/store)."""
    app = create_app(Settings(), store=MemoryStore())
    with TestClient(app, base_url=APP_URL) as http:
        monkeypatch.setattr(cli_app, "connect", lambda url, **options: Client(http=http, **options))
        yield Client(http=http)


@pytest.fixture
def sq(client: Client) -> Run:
    """``sq("next", "--json")``: run a command in-process and return its result."""
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli_app.app, list(args), input=input)
