#!/usr/bin/env python3
"""The project's two front-door commands, runnable with nothing but python3 (3.11+).

    python3 dev.py serve [sq serve options]   run the server on the SQLite default
    python3 dev.py test  [pytest options]      run the whole test suite

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


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    else:
        args = [str(BIN / "sq"), command, *rest]
    os.chdir(ROOT)
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
