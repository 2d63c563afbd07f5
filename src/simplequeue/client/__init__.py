"""The Python SDK: `Client` (blocking) and `AsyncClient` (asyncio), one method per endpoint."""

from simplequeue.client.aio import AsyncClient
from simplequeue.client.base import DEFAULT_URL, Order
from simplequeue.client.sync import Client

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "Order"]
