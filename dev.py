#!/usr/bin/env python3
"""The project's front-door commands, runnable with nothing but python3 (3.11+).

    python3 dev.py serve [sq serve options]   run the server on the SQLite default
    python3 dev.py test  [pytest options]      run the whole test suite
    python3 dev.py check                       lint, format check and strict types (CI runs it)

On first use (or when pyproject.toml changes) each creates `.venv` and installs the project into
it; afterwards it starts at once. Anything else after `dev.py` is passed to `sq` inside the venv
(`python3 dev.py submit --id x`), so the venv never has to be activated by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".simplequeue-installed"

# What `check` runs. No paths here: which files each tool covers is in pyproject.toml, so the
# bare tools (an editor's, or `.venv/bin/mypy`) and CI always judge the same files.
CHECKS: tuple[tuple[str, ...], ...] = (
    ("ruff", "check"),
    ("ruff", "format", "--check"),
    ("mypy",),
)


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    if STAMP.exists() and STAMP.read_text() == _wanted_stamp():
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv (first run only)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing simplequeue and its dependencies into .venv", file=sys.stderr)
    subprocess.run(
        [BIN / "python", "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"],
        check=True,
    )
    STAMP.write_text(_wanted_stamp())


def check() -> int:
    """Run every check, not stopping at the first failure, so one run reports all of them."""
    failed = []
    for tool, *args in CHECKS:
        command = " ".join([tool, *args])
        print(f"dev.py check: {command}", file=sys.stderr, flush=True)
        if subprocess.run([BIN / tool, *args], cwd=ROOT, check=False).returncode != 0:
            failed.append(command)
    if failed:
        print(f"dev.py check: FAILED: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print("dev.py check: all passed", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:  # noqa: RET503 (os.execv never returns; ruff can't tell)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "check":
        if rest:
            print("dev.py check takes no options", file=sys.stderr)
            return 2
        return check()
    if command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    else:
        args = [str(BIN / "sq"), command, *rest]
    os.chdir(ROOT)
    # The command replaces this process: signals (Ctrl-C to `serve`) and the exit code are its own.
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
