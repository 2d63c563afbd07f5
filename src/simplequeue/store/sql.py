"""Named SQL blocks, loaded once from a backend's ``.sql`` file beside this module.

A file holds blocks headed by ``-- name: NAME``; everything up to the next header is the query.
"""

from __future__ import annotations

import re
from importlib import resources

_HEADER = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


def load_queries(filename: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
