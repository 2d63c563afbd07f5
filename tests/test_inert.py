"""`simplequeue.inert`: what a terminal would obey is shown instead, and JSON stays JSON."""

from __future__ import annotations

import json
import sys
import unicodedata

import msgspec
import pytest

from simplequeue.inert import inert, inert_json, one_line

# Checked against Unicode's own properties, not the module's list: control characters (C0, DEL,
# C1), the line and paragraph separators, and every bidirectional formatting character.
BIDI_FORMATTING = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
BIDI_MARKS = {"\u200e", "\u200f", "\u061c"}


def obeyed(char: str) -> bool:
    return (
        unicodedata.category(char) in {"Cc", "Zl", "Zp"}
        or unicodedata.bidirectional(char) in BIDI_FORMATTING
        or char in BIDI_MARKS
    )


HOSTILE = "\x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil\u202c \u2067iso\u2069 a\rb\nc\td\x00\x7f"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", r"\x1b[2J"),
        ("\x1b]0;title\x07", r"\x1b]0;title\x07"),
        ("\x9b31m", r"\x9b31m"),
        ("abc\u202edef", r"abc\u202edef"),
        ("\u2066x\u2069", r"\u2066x\u2069"),
        ("one\ntwo\tthree\rfour", r"one\ntwo\tthree\rfour"),
        ("\x00\x7f\x85\u2028\u2029", r"\x00\x7f\x85\u2028\u2029"),
    ],
)
def test_what_a_terminal_would_obey_is_shown_as_its_escape(text: str, shown: str) -> None:
    assert inert(text) == shown


@pytest.mark.parametrize("text", ["café ☃ 日本語 עברית", "[bold]x[/bold] :smile:", r"C:\x1b", ""])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert inert(text) == text


def test_no_character_a_terminal_obeys_gets_through() -> None:
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    escaped = inert(every)
    assert not [char for char in escaped if obeyed(char)]
    # ...and no other character was lost (the escapes only add ASCII, present anyway).
    assert set(escaped) == {char for char in every if not obeyed(char)}


def test_inert_twice_is_inert_once() -> None:
    assert inert(inert(HOSTILE)) == inert(HOSTILE)


@pytest.mark.parametrize("indent", [0, 2])
def test_json_stays_valid_and_equal_with_nothing_a_terminal_obeys(indent: int) -> None:
    value = {"id\u202e": HOSTILE, "list": [HOSTILE, 1, None], "nested": {"\x9b": "ok"}}
    encoded = msgspec.json.format(msgspec.json.encode(value), indent=indent).decode()
    safe = inert_json(encoded)
    assert json.loads(safe) == value
    # The only raw line breaks left are the indentation's, between tokens.
    assert not [char for char in safe if obeyed(char) and char != "\n"]
    assert safe.count("\n") == encoded.count("\n")
    assert "\\u202e" in safe
    assert "\\u009b" in safe


def test_one_line_joins_lines_and_keeps_the_rest_visible() -> None:
    assert one_line("  no job has\n  jobId 'x\u202e'\r\n ") == r"no job has jobId 'x\u202e'"
    assert one_line("a\x1b[2Jb\x85c") == r"a\x1b[2Jb\x85c"
