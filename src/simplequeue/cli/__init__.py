"""The `sq` command line."""

from simplequeue.cli.app import app, main

__all__ = ["app", "main"]
