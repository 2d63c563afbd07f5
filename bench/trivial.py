"""The job RQ's workers run in bench/cycle.py: RQ enqueues a function by its importable name, so
it lives in a module of its own that every worker process can import."""


def job() -> None:
    """Nothing: what is measured is the queue's own cost of handing a job out and recording it."""
