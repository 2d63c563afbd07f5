"""The names `import simplequeue` promises; changing this set is an API change."""

from __future__ import annotations

import importlib
import subprocess
import sys

import msgspec

import simplequeue
from simplequeue import errors
from simplequeue.models import ClaimedJob, Job, StoredJob

PUBLIC = {
    "Client",
    "AsyncClient",
    "BatchResult",
    "Job",
    "JobState",
    "CompletionStatus",
    "Stats",
    "QueueStats",
    "Changed",
    "SimpleQueueError",
    "RequestError",
    "InvalidRequest",
    "JobNotFound",
    "JobConflict",
    "LeaseLost",
    "JobGone",
    "PayloadTooLarge",
    "ServerError",
    "Unavailable",
    "ConnectionFailed",
    "Discard",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(simplequeue.__all__) == PUBLIC
    assert len(simplequeue.__all__) == len(PUBLIC)


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("simplequeue")
    for name in simplequeue.__all__:
        assert getattr(module, name) is not None, name


def test_every_error_class_is_public() -> None:
    assert set(errors.__all__) <= set(simplequeue.__all__)


def test_the_package_is_typed() -> None:
    assert (importlib.resources.files("simplequeue") / "py.typed").is_file()


def test_importing_the_sdk_does_not_import_the_server() -> None:
    code = "import sys, simplequeue, simplequeue.cli; print('litestar' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_server_answers_jobs_in_the_shape_the_sdk_reads() -> None:
    def wire(model: type[msgspec.Struct]) -> list[str]:
        return [field.encode_name for field in msgspec.structs.fields(model)]

    assert wire(ClaimedJob) == wire(Job)
    # Every answer but a claim's and a heartbeat's leaves the lease out (CONTRACT §7).
    assert wire(StoredJob) == [name for name in wire(Job) if name != "leaseId"]
