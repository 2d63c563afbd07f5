"""The edge of the app: what a browser on another site could forge is refused before routing.

CONTRACT §11 "Browsers". With no tokens, the only thing between a web page and the queue is the
browser's same-origin policy, which still lets any page *send* simple requests: a form can POST
``text/plain``, an ``<img>`` can GET ``/jobs/next``, and a rebound DNS name makes a hostile page
same-origin with the server. So, in this order:

1. ``Host`` must be a name the server answers to (400): loopback names, the address it binds
   (unless a wildcard), and ``sq serve --allowed-host``. This is what defeats DNS rebinding.
   ``/health`` answers any ``Host``: it tells a page nothing, and probes address it by IP.
2. A state-changing request (any method but GET, HEAD and OPTIONS, and ``GET /jobs/next``) is
   refused (403) when ``Sec-Fetch-Site`` says it comes from elsewhere, or its ``Origin`` is not
   the server's own. Requests with neither header (curl, the SDK, ``sq``) are not from a browser.
3. A POST body must be ``application/json`` (415), which no form can send.

HEAD is also answered here, as GET without the body (RFC 9110 §9.3.2), except on ``/jobs/next``.

Litestar's own ``AllowedHostsMiddleware`` is not used: it compares the whole ``Host`` value, port
included, and answers with its own body rather than a problem document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from simplequeue.server.problems import problem_response
from simplequeue.server.routes import BODY_PATHS, HEALTH_PATH, NEXT_PATH

__all__ = [
    "ANY_HOST",
    "LOOPBACK_HOSTS",
    "Refusal",
    "allowed_hosts",
    "guard",
    "is_json",
    "refusal",
]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""Names that always mean this machine: no DNS answer can point them at another site."""

ANY_HOST = "*"
"""``--allowed-host '*'``: answer to any ``Host``, for a proxy in front that checks it itself."""

# Binding to these listens on every interface; they are not names a client could use.
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "[::]"})

# A Host value: a name or a bracketed IPv6 address, then perhaps a port (RFC 9110 §7.2).
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:]*)(?::[0-9]*)?")

# Sec-Fetch-Site values a browser sends for the server's own page ("same-origin") and for what a
# person did themselves, typing the address or following a bookmark ("none"). "same-site" is
# refused: every other port on localhost is the same site (another dev server, a notebook).
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given instead of the app's: a problem document; nothing reaches the queue."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def _host_name(host: str) -> str | None:
    """The name in a ``Host`` value: lower case, without the port or a final dot. ``None`` when
    it is not one (two values joined, stray characters), which then matches no allowed name."""
    match = _HOST.fullmatch(host.strip().lower())
    return match[1].removesuffix(".") if match else None


def _configured_name(name: str) -> str | None:
    # An IPv6 address is given bare (`--host ::1`) but written in brackets in a Host header.
    bare_ipv6 = name.count(":") > 1 and not name.startswith("[")
    return _host_name(f"[{name}]" if bare_ipv6 else name)


def allowed_hosts(bind: str, extra: Iterable[str]) -> frozenset[str] | None:
    """The host names this server answers to; ``None`` means any (``--allowed-host '*'``)."""
    extra = list(extra)
    if ANY_HOST in extra:
        return None
    names = {_configured_name(name) for name in [*extra, bind]} - _WILDCARD_BINDS
    return LOOPBACK_HOSTS | {name for name in names if name}


def is_json(content_type: str | None) -> bool:
    """``application/json``, with no parameter or ``charset=utf-8`` (JSON is UTF-8, RFC 8259).

    ``+json`` types are not accepted: they name other formats (a problem document, a merge
    patch), and a body of one sent here is a client's mistake, not a job.
    """
    if content_type is None:
        return False
    media_type, *parameters = (part.strip().lower() for part in content_type.split(";"))
    charsets = [p.partition("=")[2].strip('"') for p in parameters if p.startswith("charset=")]
    return media_type == "application/json" and all(c == "utf-8" for c in charsets)


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin.lower())
    if parts.scheme not in _DEFAULT_PORTS:
        return False  # "null" (a sandboxed frame, a file:// page) and anything odd
    authority = parts.netloc.removesuffix(_DEFAULT_PORTS[parts.scheme])
    return authority == host.lower().removesuffix(_DEFAULT_PORTS[parts.scheme])


def _answers_to(host: str | None, hosts: frozenset[str] | None) -> bool:
    # A request without Host (HTTP/1.0) cannot come from a browser, so it cannot be rebound.
    return host is None or hosts is None or _host_name(host) in hosts


def refusal(
    method: str,
    path: str,
    headers: dict[str, str],
    hosts: frozenset[str] | None,
) -> Refusal | None:
    """Why this request must not reach the app, or ``None``. ``headers`` has lower-case names
    and repeated headers joined by ", " (so a repeated Host or Origin never matches)."""
    host = headers.get("host")
    # /health tells a rebound page nothing, and load balancers probe it by IP address.
    if path != HEALTH_PATH and not _answers_to(host, hosts):
        return Refusal(
            400,
            f"this server does not answer to the Host {host!r}; start it with "
            "`sq serve --allowed-host NAME` to allow a name",
        )
    if method not in _SAFE_METHODS or path == NEXT_PATH:
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in _OWN_FETCH_SITES:
            return Refusal(
                403,
                f"a request from another site (Sec-Fetch-Site: {fetch_site}) "
                "may not change the queue",
            )
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host or ""):
            return Refusal(
                403, f"a request from another site (Origin: {origin}) may not change the queue"
            )
    content_type = headers.get("content-type")
    if method == "POST" and path in BODY_PATHS and not is_json(content_type):
        return Refusal(
            415,
            "the request body must be JSON, sent with Content-Type: application/json"
            + (f" (not {content_type})" if content_type else ""),
            {"Accept-Post": "application/json"},
        )
    return None


def _headers(scope: Scope) -> dict[str, str]:
    joined: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            # The headers, Content-Length included, are GET's; only the bytes are left out.
            message = {**message, "body": b""}
        await send(message)

    return send_head


def guard(app: ASGIApp, hosts: frozenset[str] | None) -> ASGIApp:
    """Wraps the app: answers HEAD as GET, and refuses what :func:`refusal` names."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            send = _without_body(send)
            if scope["path"] == NEXT_PATH:
                detail = "HEAD /jobs/next would hand out a job whose answer nobody reads; use GET"
                await problem_response(405, detail, {"Allow": "GET"})(scope, receive, send)
                return
            scope = {**scope, "method": "GET"}
        refused = refusal(scope["method"], scope["path"], _headers(scope), hosts)
        if refused is not None:
            await problem_response(refused.status, refused.detail, refused.headers)(
                scope, receive, send
            )
            return
        await app(scope, receive, send)

    return guarded
