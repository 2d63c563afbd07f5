"""The Python SDK: `Client` (blocking) and `AsyncClient` (asyncio), one method per endpoint."""

from simplequeue.client.aio import AsyncClient
from simplequeue.client.base import DEFAULT_URL, Order
from simplequeue.client.batches import BatchResult
from simplequeue.client.sync import Client
from simplequeue.client.worker import Discard

__all__ = ["DEFAULT_URL", "AsyncClient", "BatchResult", "Client", "Discard", "Order"]
