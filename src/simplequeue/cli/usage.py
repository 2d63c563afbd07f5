"""How `sq` explains itself: its help, and its usage errors as one line.

Left to itself, Typer labels every parameter in the help with its Python type (``<bool>`` on a
flag, ``<str>``, ``<int range> [1<=x<=1000]``), writes a required argument as ``{ID}``, keeps
the line breaks of a docstring inside the one-line summaries of ``sq --help`` (so a sentence
stops in mid-line), and words a missing argument as a list over several lines. It builds the
parameter objects itself, with no way to name their class; so `Command` and `Group` give each
parameter a subclass that changes how the help shows it, and nothing else (parsing and
checking stay Typer's).

Typer's help panels also leave the width of their columns to Rich, which at 60 columns cuts an
option's name, its env var and its default with an ellipsis (``--install-compl…``) and breaks a
word of choices in two. So `Command` and `Group` draw their help themselves (`_print_help`), in
Typer's panels and colours, with a names column as wide as its widest name or value and
descriptions that wrap between words.

`one_line` rewords a usage error as the sentence `sq` prints: ``STATUS must be succeeded or
failed``, ``--limit must be a whole number from 1 to 1,000``, ``missing ID``.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer import rich_utils
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


# -- help -----------------------------------------------------------------------------------

_FRAME = 4
"""Columns a panel takes for its two borders and their padding."""
_GAP = 2
"""Columns between a panel's names and descriptions."""


@dataclass(frozen=True, slots=True)
class _Row:
    """A row of a help panel, in pieces that are never broken: its ``name`` (``--timeout``),
    what it ``takes`` (``SECONDS``, ``[min 0.1]``), and the ``facts`` under its ``help``
    (``[env var: SIMPLEQUEUE_URL]``, ``[default: http://127.0.0.1:8000]``)."""

    name: Text
    help: Text
    takes: list[Text] = field(default_factory=list)
    facts: list[Text] = field(default_factory=list)


def _width(pieces: list[Text]) -> int:
    return sum(piece.cell_len for piece in pieces) + len(pieces) - 1


def _lines(pieces: list[Text], width: int) -> Text:
    """``pieces`` joined by spaces, on a new line where the next would pass ``width``."""
    shown, line = Text(), 0
    for piece in pieces:
        if line and line + 1 + piece.cell_len > width:
            shown.append("\n")
            line = 0
        elif line:
            shown.append(" ")
            line += 1
        shown.append_text(piece)
        line += piece.cell_len
    return shown


def _name_cell(row: _Row, width: int) -> Text:
    """The name and what it takes on one line if they fit, else what it takes under it."""
    whole = [row.name, *row.takes]
    if _width(whole) <= width:
        return _lines(whole, width)
    return Text("\n").join([row.name, _lines(row.takes, width)])


def _panel(title: str, rows: list[_Row], width: int) -> Panel:
    """The names column is as wide as its widest row while that leaves the descriptions three
    fifths of the panel; past that, as wide as its widest piece, what a name takes going on
    the lines under it (at 60 columns ``--log-level`` has its choices under it). Descriptions
    wrap between words, their facts between facts where they can."""
    room = width - _FRAME
    widest_piece = max(piece.cell_len for row in rows for piece in [row.name, *row.takes])
    widest_row = max(_width([row.name, *row.takes]) for row in rows)
    names = max(widest_piece, min(widest_row, room * 2 // 5))
    table = Table.grid(padding=(0, _GAP), expand=True)
    table.add_column(width=names, no_wrap=True)
    table.add_column(ratio=1)
    for row in rows:
        facts = _lines(row.facts, room - names - _GAP)
        table.add_row(
            _name_cell(row, names), Text("\n").join(t for t in (row.help, facts) if t.plain)
        )
    border = rich_utils.STYLE_OPTIONS_PANEL_BORDER
    return Panel(table, title=title, title_align="left", border_style=border)


def _facts(param: TyperOption | TyperArgument, ctx: Any) -> list[str]:
    """``[env var: …]``, ``[default: …]``, ``[required]``: as Typer decides them."""
    facts = []
    envvar = param.envvar
    if envvar and param.show_envvar:
        facts.append(f"[env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]")
    default = param._extract_default_help_str(ctx=ctx)
    named = isinstance(param.show_default, str)  # show_default="..." words the default itself
    if named or (default is not None and (param.show_default or ctx.show_default)):
        shown = param._get_default_string(ctx=ctx, show_default_is_str=named, default_value=default)
        if shown:
            facts.append(f"[default: {shown}]")
    if param.required:
        facts.append("[required]")
    return facts


def _param_row(param: TyperOption | TyperArgument, ctx: Any) -> _Row:
    if isinstance(param, TyperArgument):
        name = Text(param._rich_display_name())
    else:  # the long name first: the one a usage error names
        names = sorted([*param.opts, *param.secondary_opts], key=lambda n: not n.startswith("--"))
        name = rich_utils.highlighter(Text(", ".join(names)))
    number_range = param._get_number_range_help_str()
    takes = [param.display_type_rich(ctx=ctx), number_range and f"[{number_range}]"]
    return _Row(
        name,
        rich_utils.highlighter(Text(param.help or "")),
        takes=[Text(t, style=rich_utils.STYLE_TYPES) for t in takes if t],
        facts=[Text(f, style=rich_utils.STYLE_OPTION_DEFAULT) for f in _facts(param, ctx)],
    )


def _command_row(command: Any) -> _Row:
    summary = (command.short_help or command.help or "").split("\n\n")[0]
    name = Text(command.name or "", style=rich_utils.STYLE_COMMANDS_TABLE_FIRST_COLUMN)
    return _Row(name, rich_utils.highlighter(Text(summary)))


def _print_help(command: TyperCommand | TyperGroup, ctx: Any) -> None:
    """Typer's help, in its order and colours, drawn by `_panel` (see the module's docstring);
    one panel each for arguments, options and commands. Help texts are plain text, not Rich
    markup: ``[OPTIONS]`` in one is printed as written."""
    console = rich_utils._get_rich_console()
    usage = rich_utils.highlighter(command.get_usage(ctx))
    console.print(Padding(usage, 1), style=rich_utils.STYLE_USAGE_COMMAND)
    if command.help:
        first, _, rest = command.help.partition("\n\n")
        text = Text(first)
        if rest:
            text.append("\n\n" + rest, style=rich_utils.STYLE_HELPTEXT)
        console.print(Padding(rich_utils.highlighter(text), (0, 1, 1, 1)))
    params = [
        p
        for p in command.get_params(ctx)
        if isinstance(p, TyperArgument | TyperOption) and not p.hidden
    ]
    commands = []
    if isinstance(command, TyperGroup):
        commands = [command.get_command(ctx, name) for name in command.list_commands(ctx)]
    panels = {
        "Arguments": [_param_row(p, ctx) for p in params if isinstance(p, TyperArgument)],
        "Options": [_param_row(p, ctx) for p in params if isinstance(p, TyperOption)],
        "Commands": [_command_row(c) for c in commands if c is not None and not c.hidden],
    }
    for title, rows in panels.items():
        if rows:
            console.print(_panel(title, rows, console.width))


class Command(TyperCommand):
    """An `sq` command, its help readable (see the module's docstring)."""

    def __init__(self, name: str | None, **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self.help = _unwrapped(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return [_readable(param) for param in super().get_params(ctx)]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _print_help(self, ctx)


class Group(TyperGroup):
    """`sq` itself: its own options readable, as its commands'."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.help = _unwrapped(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        # Typer adds --install-completion and --show-completion after building the group.
        return [_readable(param) for param in super().get_params(ctx)]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _print_help(self, ctx)


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
