"""How `sq` explains itself: its help (no type labels, whole sentences, plain usage lines) and
its usage errors (one line, one sentence, nothing sent)."""

from __future__ import annotations

import importlib
import re
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from simplequeue.cli import app
from simplequeue.cli.usage import Command

cli_app = importlib.import_module("simplequeue.cli.app")

COMMANDS = sorted(typer.main.get_group(app).commands)
WIDTHS = [60, 80, 120]


def help_text(*args: str, width: int) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def panel_rows(shown: str, title: str) -> list[str]:
    """The lines inside the panel titled ``title``, without its borders."""
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if f"─ {title} ─" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("╰"))
    return [line.strip()[1:-1].rstrip() for line in lines[start + 1 : end]]


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_names_no_python_types(command: str, width: int) -> None:
    shown = help_text(*([command] if command else []), width=width)
    assert not re.search(r"<(bool|str|int|float|list|datetime)\b", shown), shown
    assert "{" not in next(line for line in shown.splitlines() if "Usage:" in line)


def words(shown: str) -> set[str]:
    return set(re.sub(r"[│╭╮╰╯─]", " ", shown).split())


def option_names(command: str) -> list[str]:
    """Every option name the help of ``command`` (``""``: `sq` itself) shows."""
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    shown = group if not command else typer.main.get_group(app).commands[command]
    return [name for param in shown.get_params(ctx) for name in param.opts if name[0] == "-"]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_cuts_no_word_and_breaks_none(command: str, width: int) -> None:
    args = [command] if command else []
    shown = help_text(*args, width=width)
    assert "…" not in shown, shown
    # Every word of a help too wide to wrap: a name, value or word broken across two lines, or
    # cut, leaves pieces that are not among them.
    assert words(shown) - words(help_text(*args, width=1000)) == set(), shown
    for name in option_names(command):
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown), (name, shown)


def test_at_60_columns_a_long_value_goes_under_its_name_and_each_fact_stays_whole() -> None:
    rows = [row.rstrip() for row in panel_rows(help_text(width=60), "Options")]
    assert "[env var: SIMPLEQUEUE_URL]" in rows[2]
    assert "[default: http://127.0.0.1:8000]" in rows[3]
    serve = panel_rows(help_text("serve", width=60), "Options")
    at = next(i for i, row in enumerate(serve) if row.split()[0] == "--log-level")
    assert serve[at + 1].split()[0] == "debug|info|warning|error", serve


def first_paragraph(command: str) -> str:
    group = typer.main.get_group(app)
    help_ = group.commands[command].help or ""
    return help_.split("\n\n")[0]


def test_every_summary_in_the_command_list_is_its_whole_first_sentence_on_one_line() -> None:
    rows = panel_rows(help_text(width=80), "Commands")
    assert [row.split()[0] for row in rows] == [
        *["serve", "copy", "submit", "next", "heartbeat", "complete", "get", "list", "stats"],
        *["cancel", "retry", "watch", "work"],
    ]  # one line each
    for row in rows:
        name, summary = row.split(maxsplit=1)
        assert summary == first_paragraph(name), name
        assert summary.endswith("."), name


def test_no_paragraph_of_help_keeps_a_line_break_of_its_docstring() -> None:
    # Typer prints the line breaks inside a paragraph: a sentence would stop in mid-line.
    for name, command in typer.main.get_group(app).commands.items():
        assert isinstance(command, Command), name
        for paragraph in (command.help or "").split("\n\n"):
            assert "\n" not in paragraph, (name, paragraph)


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("complete", "Usage: sq complete [OPTIONS] ID STATUS"),
        ("cancel", "Usage: sq cancel [OPTIONS] [ID...]"),
        ("work", "Usage: sq work [OPTIONS] COMMAND..."),
    ],
)
@pytest.mark.parametrize("width", WIDTHS)
def test_usage_lines_name_arguments_plainly(command: str, usage: str, width: int) -> None:
    assert usage in help_text(command, width=width).splitlines()[1]


def test_options_show_what_they_take_and_flags_nothing() -> None:
    rows = panel_rows(help_text("list", width=120), "Options")
    words = {row.split()[0]: row.split()[1:] for row in rows}
    assert words["--limit"][:2] == ["N", "[1-1,000]"]
    assert words["--after"][0] == "ID"
    assert words["--json"][0] == "Print"  # a flag: its help comes at once
    watch = {
        row.split()[0]: row.split()[1:]
        for row in panel_rows(help_text("watch", width=120), "Options")
    }
    assert watch["--interval"][:2] == ["SECONDS", "[min"]
    assert watch["--utc"][0] == "Show"


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    """`sq` as its entry point runs it: the one line a usage error prints (exit code 2)."""
    monkeypatch.setattr(cli_app, "connect", lambda *a, **k: pytest.fail("nothing may be sent"))
    monkeypatch.setattr(sys, "argv", ["sq", *args])
    monkeypatch.setenv("COLUMNS", "60")  # one line however narrow: the terminal wraps it
    with pytest.raises(SystemExit) as ended:
        cli_app.main()
    captured = capsys.readouterr()
    assert ended.value.code == 2, captured.err
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["complete", "invoice-42"],
            "sq: error: missing STATUS: succeeded or failed (see 'sq complete --help')",
        ),
        (
            ["complete", "invoice-42", "done"],
            "sq: error: STATUS must be succeeded or failed (see 'sq complete --help')",
        ),
        (
            ["get", "a\tb"],
            "sq: error: ID: 'a\\tb' holds a control character (\\t), which no job id may "
            "(see 'sq get --help')",
        ),
        (
            ["submit", "--id", "a\x1b[2Jb"],
            "sq: error: --id: 'a\\x1b[2Jb' holds a control character (\\x1b), which no job id "
            "may (see 'sq submit --help')",
        ),
        (
            ["cancel", "--prefix", "a\tb"],
            "sq: error: --prefix: 'a\\tb' holds a control character (\\t), which no job id may "
            "(see 'sq cancel --help')",
        ),
        (["retry", "ok", "a\tb"], "sq: error: ID: 'a\\tb' holds a control character"),
        (["list", "--after", "a\nb"], "sq: error: --after: 'a\\nb' holds a control character"),
        (["get", ""], "sq: error: ID: a job id is at least one character (see 'sq get --help')"),
        (
            ["list", "--limit", "0"],
            "sq: error: --limit must be a whole number from 1 to 1,000 (see 'sq list --help')",
        ),
        (
            ["list", "--state", "done"],
            "sq: error: --state must be submitted, running, succeeded or failed "
            "(see 'sq list --help')",
        ),
        (["--timeout", "0", "stats"], "sq: error: --timeout must be a number of at least 0.1"),
        (["heartbeat", "x"], "sq: error: missing --lease (see 'sq heartbeat --help')"),
        (
            ["next", "--queue", "a/b"],
            "sq: error: --queue: 'a/b' is not a queue name: 1-64 characters from A-Z a-z 0-9 . "
            "_ : - (see 'sq next --help')",
        ),
        (
            ["submit", "--delay", "5x"],
            "sq: error: --delay: '5x' is not a duration: give a number of seconds, or one with "
            "a unit (90s, 15m, 12h, 7d) (see 'sq submit --help')",
        ),
    ],
)
def test_a_usage_error_is_one_sentence_on_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], line: str
) -> None:
    assert run_main(monkeypatch, capsys, *args).startswith(line)
