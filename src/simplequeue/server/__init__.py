"""The simplequeue HTTP server."""

from simplequeue.server.app import create_app
from simplequeue.server.settings import Settings

__all__ = ["Settings", "create_app"]
