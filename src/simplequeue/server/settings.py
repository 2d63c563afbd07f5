"""The server's settings: one frozen value, built by `sq serve` and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simplequeue.store.sqlite import Synchronous

__all__ = ["MIB", "LogLevel", "Settings", "Synchronous"]

LogLevel = Literal["debug", "info", "warning", "error"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    db: str = "simplequeue.db"
    """A SQLite file path, or ``:memory:`` for a throwaway queue."""
    synchronous: Synchronous = "full"
    """SQLite's durability: ``full`` survives power loss, ``normal`` only a crash of the server."""
    max_body_size: int = MIB
    """Requests with a larger body are refused with 413."""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: LogLevel = "info"
