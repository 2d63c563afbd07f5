"""Schemathesis against a real `sq serve`: the server must answer every request the way its own
OpenAPI document says, under every check schemathesis has.

It runs schemathesis' command line, the tool as users run it: all its phases (the schema's
examples, boundary coverage, fuzzing, stateful sequences), positive and negative data, every
check. The run is reproducible (a fixed seed, no example database carried between runs) and
bounded (a fixed number of examples per operation, a timeout). Nothing is excluded; the one thing
the schema cannot state is in schemathesis.toml beside this file, with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

SEED = 20260102
EXAMPLES_PER_OPERATION = 100
# A clean run takes about ten seconds; only a hang reaches this. It is below pytest's own
# timeout (120 s), so that schemathesis is stopped and the test fails on its own terms.
RUN_TIMEOUT = 100
CONFIG = Path(__file__).with_name("schemathesis.toml")
"""What the schema cannot say, said to schemathesis (each with its reason in the file)."""


def test_schemathesis_with_every_check_finds_nothing(
    server_fast: ServerProcess, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        f"--config-file={CONFIG}",
        "run",
        f"{server_fast.url}/schema/openapi.json",
        "--checks=all",
        f"--max-examples={EXAMPLES_PER_OPERATION}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--workers=1",
        "--request-timeout=10",
        "--no-color",
    ]
    # In tmp_path: no schemathesis.toml from elsewhere applies, and its caches stay out of the
    # checkout.
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    if run.returncode != 0:
        output = run.stdout + run.stderr
        start = output.find("= FAILURES =")  # the findings and the summary, not the progress
        report = output[output.rfind("\n", 0, start) + 1 :] if start >= 0 else output
        pytest.fail(f"schemathesis exited with {run.returncode}:\n{report}", pytrace=False)
