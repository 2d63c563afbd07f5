"""What messages and logs show of a ``--db`` value: never a PostgreSQL password."""

from __future__ import annotations

import pytest

from simplequeue.store import shown


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("postgresql://sq:s3cret@db:5432/queue", "postgresql://sq:***@db:5432/queue"),
        ("postgres://:s3cret@db/queue", "postgres://:***@db/queue"),
        (
            "postgresql://sq@db/queue?password=s3cret&sslmode=require",
            "postgresql://sq@db/queue?password=***&sslmode=require",
        ),
        ("postgresql://sq@db/queue", "postgresql://sq@db/queue"),
        ("postgresql://", "postgresql://"),
        ("./simplequeue.db", "./simplequeue.db"),
        (":memory:", ":memory:"),
    ],
)
def test_a_db_value_is_shown_without_its_password(db: str, expected: str) -> None:
    assert shown(db) == expected
