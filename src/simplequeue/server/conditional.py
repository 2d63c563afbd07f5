"""Conditional GET (RFC 9110 §13) for the answers that are polled: ``/stats``,
``/stats/history`` and ``/jobs``. A poll that finds nothing changed costs headers only.

The ETag is strong: a hash of exactly what a 200 would send (the body, and the headers that
describe it, such as ``Link``), so two answers share one only if they are the same bytes.
``Cache-Control: no-cache`` lets a browser keep the answer but never use it unasked: every poll
reaches the server, which answers 304 when the client's copy is still right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_304_NOT_MODIFIED

__all__ = ["ETAG_BYTES", "NOT_MODIFIED", "conditional"]

ETAG_BYTES = 12
"""The hash's length: 96 bits, so that two different answers never share a tag in practice."""

NOT_MODIFIED = {
    HTTP_304_NOT_MODIFIED: ResponseSpec(
        data_container=None,
        description="Not modified: `If-None-Match` names this answer's `ETag` (no body)",
    )
}
"""The 304 in a route's documented responses."""


def conditional(
    request: Request[Any, Any, Any], value: object, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """``value`` as JSON with ``headers``, an ``ETag`` and ``Cache-Control: no-cache``; or, when
    the request's ``If-None-Match`` names that ETag (or is ``*``), 304 with the same headers
    and no body."""
    body = msgspec.json.encode(value)
    digest = hashlib.blake2b(body, digest_size=ETAG_BYTES)
    for name, field in sorted((headers or {}).items()):
        digest.update(f"\0{name.lower()}\0{field}".encode())
    etag = f'"{digest.hexdigest()}"'
    sent = {**(headers or {}), "ETag": etag, "Cache-Control": "no-cache"}
    if _names(request.headers.getall("if-none-match", []), etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=sent)
    return Response(body, media_type=MediaType.JSON, headers=sent)


def _names(if_none_match: list[str], etag: str) -> bool:
    """Whether the ``If-None-Match`` values (each a comma-separated list) name ``etag``. The
    comparison is weak, as RFC 9110 §13.1.2 asks: ``W/"x"`` names ``"x"``."""
    tags = (tag.strip() for value in if_none_match for tag in value.split(","))
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)
