"""The simplequeue HTTP server: ``create_app(Settings(...))`` builds the ASGI app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simplequeue.server.settings import Settings

if TYPE_CHECKING:
    from simplequeue.server.app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Importing the app pulls in Litestar; `sq submit` and friends only need Settings, and
    # should start without paying for the server.
    if name == "create_app":
        from simplequeue.server.app import create_app

        return create_app
    raise AttributeError(name)
