"""The `sq` command line.

`app` (app.py) is the Typer app and what every command shares; each command module registers
its commands on it when imported. They are imported here rather than at the bottom of app.py,
which they import: so no import runs back up, and none forms a cycle.
"""

from simplequeue.cli.app import app, main

# isort: off
# The order of the names is the order of the commands in `sq --help`: leave it unsorted.
from simplequeue.cli import serve, copy, jobs, operations  # noqa: F401  (registers the commands)
# isort: on

__all__ = ["app", "main"]
