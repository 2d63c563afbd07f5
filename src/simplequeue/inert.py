"""Text from a client, made safe to show in a terminal or a log: control characters shown, not
obeyed. The CLI uses it for everything the server answers, the server for every log line.

A job's id, description and data, and an error's detail that quotes them, are written by whoever
submitted the job; a request's path by whoever sent it. Printed as they are, ``\\x1b[2J``
clears the screen, ``\\x1b]0;...\\x07`` retitles the terminal, U+009B is a one-character CSI,
and U+202E reverses the text after it (Trojan Source, CVE-2021-42574). Rich removes only a few
controls (bell, backspace, CR...) and passes ESC through, so every such string goes through here
before it is printed or logged:

- `inert` for text a person reads: each such character becomes the escape that names it
  (``\\x1b``, ``\\n``, ``\\u202e``), visible and harmless;
- `inert_json` for JSON text: the same characters as ``\\uXXXX`` escapes, so the JSON stays valid
  and parses to the same value.
"""

from __future__ import annotations

import re

__all__ = ["inert", "inert_json", "one_line"]

# C0 controls, DEL and the C1 controls; the line and paragraph separators; the bidirectional
# marks, embeddings, overrides and isolates (the Unicode Bidi_Control characters).
_OTHERS = r"\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(rf"[\x00-\x1f{_OTHERS}]")
# In JSON text, tab, newline and CR outside strings are whitespace between tokens (an encoder
# always escapes them inside strings); every other one of these can only stand inside a string.
_UNSAFE_IN_JSON = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f{_OTHERS}]")
_NAMED = {"\t": r"\t", "\n": r"\n", "\r": r"\r"}
_SPACES = re.compile(r"[ \t\r\n]+")


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def inert(text: str) -> str:
    """``text`` with every control and bidi-formatting character shown as its escape."""
    return _UNSAFE.sub(_shown, text)


def inert_json(text: str) -> str:
    """JSON ``text`` with them as ``\\uXXXX`` escapes: still valid, and equal when parsed."""
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def one_line(text: str) -> str:
    """``text`` as one inert line: runs of spaces, tabs and line breaks become one space."""
    return inert(_SPACES.sub(" ", text).strip())
