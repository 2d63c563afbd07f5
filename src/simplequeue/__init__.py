"""simplequeue: a small, fast, trustworthy HTTP job queue."""

__version__ = "0.1.0"
