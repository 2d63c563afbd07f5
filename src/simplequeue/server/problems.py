"""Every error the API answers with becomes an RFC 9457 problem document here, in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response.base import ASGIResponse

from simplequeue.errors import REQUEST_ERROR_FOR_STATUS, SimpleQueueError, Unavailable
from simplequeue.models import Problem

logger = logging.getLogger("simplequeue.server")


# The error tree's titles first: they use RFC 9110's names (413 is "Content Too Large"), which
# this Python's HTTPStatus predates.
_TITLES = {status: error.title for status, error in REQUEST_ERROR_FOR_STATUS.items()}


def _phrase(status: int) -> str:
    if title := _TITLES.get(status):
        return title
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def from_queue_error(exc: SimpleQueueError) -> ProblemDetailsException:
    headers = None
    if isinstance(exc, Unavailable):
        # A busy or full store: the client may send the same request again after this long.
        headers = {"Retry-After": str(exc.retry_after)}
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=_phrase(exc.status_code),
        detail=exc.detail,
        headers=headers,
    )


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    # Litestar names a failing parameter by its Python name; the client knows its query key.
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    definition = parameter and parameter.kwarg_definition
    alias = getattr(definition, "name", None) or getattr(definition, "query", None)
    return alias or key


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    # Litestar reports query parameter errors as a list of {key, source, message}; the problem's
    # detail is the sentence a person reads, so it names each parameter as the client wrote it.
    parts = []
    for error in exc.extra if isinstance(exc.extra, list) else []:
        key, message = error.get("key"), error.get("message", "")
        parts.append(f"`{_wire_name(request, key)}`: {message}" if key else message)
    return ProblemDetailsException(
        status_code=400, title="Bad Request", detail="; ".join(parts) or str(exc.detail)
    ).to_response(request)


def from_http_error(exc: HTTPException) -> ProblemDetailsException:
    detail = exc.detail
    if exc.status_code == 413:
        detail = "the request body is over the server's size limit"
    elif exc.status_code == 404 and detail == "Not Found":
        detail = "no route matches this path"
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=_phrase(exc.status_code),
        detail=detail,
        headers=exc.headers,
    )


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> ASGIResponse:
    """A problem document answered outside the router (`guard.py`, `app.py`): the same shape and
    titles as every other error, without a Request to build a Litestar Response from."""
    return ASGIResponse(
        body=msgspec.json.encode(Problem(status=status, title=_phrase(status), detail=detail)),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return ProblemDetailsException(
        status_code=500,
        title="Internal Server Error",
        detail="the server failed while answering; the error is in its log",
    ).to_response(request)


EXCEPTION_TO_PROBLEM: dict[type[Any], Callable[[Any], ProblemDetailsException]] = {
    SimpleQueueError: from_queue_error,
    HTTPException: from_http_error,
}
