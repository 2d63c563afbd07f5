"""JSON kept as the client sent it: the checks a body passes before anything is stored, and the
comparison of two JSON texts by value.

The server never decodes a job's ``data`` into Python values and encodes it back: it stores the
text and answers with it, byte for byte. So ``1e-400`` stays ``1e-400`` (a float would make it
``0.0``), ``-0`` stays ``-0``, and no stored job, however it got there, can make a read fail.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "DuplicateKey",
    "array_items",
    "canonical",
    "deeper_than",
    "refuse_duplicate_keys",
    "same_value",
]

MAX_DEPTH = 64
"""The default limit on how deeply ``data`` may nest (``{}`` is 1 deep, ``{"a": []}`` 2)."""

# A JSON string, escapes included (the unrolled form: no backtracking per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENING = frozenset(b"[{")
# What matters to the nesting outside strings: a string (skipped whole), a bracket or a comma.
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


class DuplicateKey(ValueError):
    """An object in the text names one key twice: which value was meant is anybody's guess."""


def deeper_than(text: bytes, limit: int) -> bool:
    """Whether the JSON ``text`` nests more than ``limit`` deep. ``text`` must be valid JSON."""
    # Nothing nests deeper than it has opening brackets, and most documents have few.
    if text.count(b"{") + text.count(b"[") <= limit:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", text))
    level = 0
    for byte in brackets:
        if byte in _OPENING:
            level += 1
            if level > limit:
                return True
        else:
            level -= 1
    return False


def array_items(text: bytes) -> list[bytes] | None:
    """The items of the JSON array ``text``, each as the text sent, found by the nesting alone;
    ``None`` if ``text`` is not one array. For an array too deep for the decoder to split (an
    item nested thousands of levels): each item is then checked, and refused, on its own."""
    body = text.strip(b" \t\r\n")
    if body[:1] != b"[" or body[-1:] != b"]":
        return None
    items, start, level = [], 1, 0
    for token in _STRUCTURE.finditer(body):
        byte = token.group()
        if byte[:1] == b'"':
            continue
        if byte in (b"[", b"{"):
            level += 1
        elif byte in (b"]", b"}"):
            level -= 1
            if level == 0:
                if token.end() != len(body):
                    return None  # the array closed before the text ends
                items.append(body[start : token.start()])
        elif level == 1:
            items.append(body[start : token.start()])
            start = token.end()
    if level != 0:
        return None
    if len(items) == 1 and not items[0].strip(b" \t\r\n"):
        return []
    return items


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def refuse_duplicate_keys(text: bytes) -> None:
    """Raise `DuplicateKey` if any object in the JSON ``text``, at any depth, repeats a key.

    ``text`` must be valid JSON no deeper than the limits allow (decoded once already): this
    is the standard library's C scanner with a hook per object, a second, cheap pass.
    """
    json.loads(text, object_pairs_hook=_unique)


def _number(kind: str) -> Any:
    # Numbers compare by exact value, never through a float, and an integer is never equal to a
    # fraction or to true: {"n": 1} and {"n": 1.0} and {"n": true} are three different jobs.
    return lambda text: (kind, Decimal(text))


_CANONICAL = {"parse_int": _number("int"), "parse_float": _number("fraction")}


def same_value(a: bytes, b: bytes) -> bool:
    """Whether two JSON texts hold the same value: key order and spacing do not matter, number
    spelling does not either (``1e2`` is ``100.0``), but the kind of number does."""
    if a == b:
        return True
    try:
        return bool(json.loads(a, **_CANONICAL) == json.loads(b, **_CANONICAL))
    except RecursionError:
        # Only a document stored before the depth limit existed can be this deep; a request
        # that passed the limit is not, so the two differ.
        return False


def canonical(text: bytes) -> bytes:
    """One spelling of the JSON value ``text`` holds: two texts have the same canonical form
    exactly when `same_value` holds them equal (object keys sorted, numbers by exact value and
    kind). Used for fingerprints, never sent anywhere."""
    try:
        value = json.loads(text, **_CANONICAL)
    except RecursionError:
        return b"raw:" + text  # only a document older than the depth limit: its own text
    parts: list[str] = []
    _spell(value, parts)
    return "".join(parts).encode()


def _spell(value: Any, parts: list[str]) -> None:
    # Strings are always quoted and numbers never are, so no two values share a spelling.
    if isinstance(value, dict):
        parts.append("{")
        for key in sorted(value):
            parts.append(json.dumps(key))
            parts.append(":")
            _spell(value[key], parts)
            parts.append(",")
        parts.append("}")
    elif isinstance(value, list):
        parts.append("[")
        for item in value:
            _spell(item, parts)
            parts.append(",")
        parts.append("]")
    elif isinstance(value, tuple):  # a number: (kind, Decimal)
        kind, number = value
        parts.append(kind[0] + _exactly(number))
    else:
        parts.append(json.dumps(value))


def _exactly(number: Decimal) -> str:
    """One spelling per value, exact at any precision and exponent (``Decimal.normalize`` would
    round to the context's 28 digits): the digits without trailing zeros, and the exponent."""
    if number.is_zero():
        return "0"
    sign, digits, exponent = number.as_tuple()
    kept = list(digits)
    assert isinstance(exponent, int)  # a finite number: JSON has no others
    while kept[-1] == 0:
        kept.pop()
        exponent += 1
    return f"{'-' if sign else ''}{''.join(map(str, kept))}e{exponent}"
