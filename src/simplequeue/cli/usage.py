"""How `sq` explains itself: its help, and its usage errors as one line.

Left to itself, Typer labels every parameter in the help with its Python type (``<bool>`` on a
flag, ``<str>``, ``<int range> [1<=x<=1000]``), writes a required argument as ``{ID}``, keeps
the line breaks of a docstring inside the one-line summaries of ``sq --help`` (so a sentence
stops in mid-line), and words a missing argument as a list over several lines. It builds the
parameter objects itself, with no way to name their class; so `Command` and `Group` give each
parameter a subclass that changes how the help shows it, and nothing else (parsing and
checking stay Typer's).

`one_line` rewords a usage error as the sentence `sq` prints: ``STATUS must be succeeded or
failed``, ``--limit must be a whole number from 1 to 1,000``, ``missing ID``.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any

import typer
from typer._click.exceptions import MissingParameter  # not exported by `typer`
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

__all__ = ["Command", "Group", "Typer", "one_line"]


def _number(value: float) -> str:
    return f"{value:,}"


def _range(low: float | None, high: float | None) -> str | None:
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if low is not None:
        return f"min {_number(low)}"
    return None if high is None else f"max {_number(high)}"


def _choices(param: Any) -> list[str] | None:
    described = getattr(param, "type_descriptor", None)
    choices = None if described is None else described.choices
    if not choices:
        return None
    return [str(c.value) if isinstance(c, enum.Enum) else str(c) for c in choices]


def _either(words: list[str]) -> str:
    """``a or b``, ``a, b or c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        """Its metavar (``NAME``, ``SECONDS``); for a flag nothing; else a plain word."""
        if self.metavar is not None:
            return self.metavar or None
        if self.is_flag or self.count:
            return None
        choices = _choices(self)
        if choices:
            return "|".join(choices)
        annotation = self.type_descriptor.annotation
        return {int: "N", float: "NUMBER"}.get(annotation, "TEXT")

    def _get_number_range_help_str(self) -> str | None:
        return _range(self.min, self.max)


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # its name is its metavar (ID, STATUS): the help says what it takes

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def _get_number_range_help_str(self) -> str | None:
        return _range(self.min, self.max)


def _readable(param: Any) -> Any:
    # Exactly Typer's classes: a subclass of them that someone chose is left as it is.
    if type(param) is TyperOption:
        param.__class__ = _Option
    elif type(param) is TyperArgument:
        param.__class__ = _Argument
    return param


def _unwrapped(text: str | None) -> str | None:
    """A docstring's paragraphs, each on one line: Typer keeps a paragraph's line breaks."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) if not p.startswith("\b") else p for p in paragraphs)


class Command(TyperCommand):
    """An `sq` command, its help readable (see the module's docstring)."""

    def __init__(self, name: str | None, **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self.help = _unwrapped(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return [_readable(param) for param in super().get_params(ctx)]


class Group(TyperGroup):
    """`sq` itself: its own options readable, as its commands'."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.help = _unwrapped(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        # Typer adds --install-completion and --show-completion after building the group.
        return [_readable(param) for param in super().get_params(ctx)]


class Typer(typer.Typer):
    """A Typer app whose commands are `Command` unless they say otherwise."""

    def command(
        self, *args: Any, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


# -- usage errors ---------------------------------------------------------------------------


def _name(param: Any) -> str:
    """How the user wrote it: ``--state`` (not ``-s``), or an argument's metavar (``ID``)."""
    if param.param_type_name == "option":
        longest: str = max(param.opts, key=len)
        return longest
    return str(param.display_name_raw).upper()


def _expected(param: Any) -> str | None:
    """What a value must be, for the parameters Typer checks (choices, numbers); ``None`` for
    one with a parser of its own, whose message already says."""
    described = getattr(param, "type_descriptor", None)
    if described is None or described.parameter_info.parser is not None:
        return None
    choices = _choices(param)
    if choices:
        return _either(choices)
    kind = {int: "a whole number", float: "a number"}.get(described.annotation)
    if kind is None:
        return None
    low, high = param.min, param.max
    if low is not None and high is not None:
        return f"{kind} from {_number(low)} to {_number(high)}"
    if low is not None:
        return f"{kind} of at least {_number(low)}"
    return kind if high is None else f"{kind} of at most {_number(high)}"


def one_line(error: typer.TyperException) -> str:
    """The usage error as one sentence, without the command's name or the hint to --help."""
    param = getattr(error, "param", None)
    if isinstance(error, typer.BadParameter) and param is not None:  # MissingParameter too
        expected = _expected(param)
        if isinstance(error, MissingParameter):
            return f"missing {_name(param)}" + (f": {expected}" if expected else "")
        if expected is not None:
            return f"{_name(param)} must be {expected}"
        return f"{_name(param)}: {error.message}"
    return error.format_message()
