"""`Client` and `AsyncClient` are twins: the same public methods, the same parameters."""

from __future__ import annotations

import inspect

from simplequeue import AsyncClient, Client

# The twins differ only in how they close and are entered.
LIFECYCLE = {"close", "__enter__", "__exit__", "__aenter__", "__aexit__"}


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    } - LIFECYCLE


def shape(function: object) -> list[tuple[str, object, object]]:
    # A default that is a function (``sleep``: time.sleep vs asyncio.sleep) is compared by name.
    return [
        (p.name, p.kind, getattr(p.default, "__name__", p.default))
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    ]


def test_the_twins_have_the_same_methods() -> None:
    assert public_methods(Client) == public_methods(AsyncClient)
    assert {"submit", "next", "complete", "cancel", "retry", "get", "list_jobs", "stats"} <= (
        public_methods(Client)
    )


def test_the_twins_take_the_same_parameters() -> None:
    for name in public_methods(Client) | {"__init__"}:
        assert shape(getattr(Client, name)) == shape(getattr(AsyncClient, name)), name


def test_every_async_method_is_awaitable_or_async_iterable() -> None:
    for name in public_methods(AsyncClient):
        method = getattr(AsyncClient, name)
        assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
        assert not inspect.iscoroutinefunction(getattr(Client, name)), name
    assert inspect.iscoroutinefunction(AsyncClient.close)
