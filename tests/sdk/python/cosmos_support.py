"""Helpers shared by the scenario tests: configuration, unique names, bounded polling.

Everything here talks to the service only through the public ``azure-cosmos`` API, so the
same helpers work against Azure Cosmos DB, the Cosmos DB emulator and ``tributary serve``.
"""

import os
import time
import uuid
from typing import Any, Callable, Iterable, List, Optional, TypeVar

from azure.cosmos import ContainerProxy, CosmosClient

#: The well-known key of the Cosmos DB emulator; ``tributary serve`` uses it by default.
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

T = TypeVar("T")


def endpoint_from_env() -> str:
    """The account endpoint under test, from ``TRIBUTARY_ENDPOINT`` (required)."""
    endpoint = os.environ.get("TRIBUTARY_ENDPOINT", "").strip()
    if not endpoint:
        raise RuntimeError(
            "TRIBUTARY_ENDPOINT is not set: point it at a Cosmos DB endpoint, e.g. "
            "TRIBUTARY_ENDPOINT=http://127.0.0.1:8081/ (scripts/test.sh sets it for you)"
        )
    return endpoint


def key_from_env() -> str:
    """The account master key, from ``TRIBUTARY_KEY`` (defaults to the emulator key)."""
    return os.environ.get("TRIBUTARY_KEY", "").strip() or EMULATOR_KEY


def readonly_key_from_env() -> Optional[str]:
    """The account's read-only key, from ``TRIBUTARY_READONLY_KEY``; ``None`` when unset."""
    return os.environ.get("TRIBUTARY_READONLY_KEY", "").strip() or None


def connection_string(endpoint: str, key: str) -> str:
    """A Cosmos DB connection string in the form the SDK and the emulator documentation use."""
    return f"AccountEndpoint={endpoint};AccountKey={key};"


def make_client(endpoint: str, key: str, **kwargs: Any) -> CosmosClient:
    """A client built from a connection string, exactly as an application would build it.

    The SDK skips certificate checks by itself for ``localhost`` and ``127.0.0.1``; set
    ``TRIBUTARY_TLS_INSECURE=1`` to skip them for another host with a self-signed certificate.
    """
    if os.environ.get("TRIBUTARY_TLS_INSECURE") == "1":
        kwargs.setdefault("connection_verify", False)
    return CosmosClient.from_connection_string(connection_string(endpoint, key), **kwargs)


def unique_id(label: str) -> str:
    """A resource id that no other test run uses: ``<label>-<12 hex digits>``."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def poll_until(
    probe: Callable[[], Optional[T]],
    *,
    deadline_s: float,
    interval_s: float = 0.25,
    what: str,
) -> T:
    """Call ``probe`` until it returns something other than ``None`` and return that.

    Fails the test with ``what`` in the message once ``deadline_s`` seconds have passed.
    This is the only kind of waiting the tests do: bounded, and as short as the service allows.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {deadline_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def last_etag(container: ContainerProxy) -> str:
    """The change-feed continuation the SDK left in the last response headers (wire doc §5.5)."""
    token = container.client_connection.last_response_headers.get("etag")
    assert token, "the change feed response carried no etag, so it cannot be resumed"
    return token


def drain_change_feed(container: ContainerProxy, **kwargs: Any) -> tuple[List[dict], str]:
    """Read a change feed to its current end; return the changes and the continuation to resume from."""
    changes = list(container.query_items_change_feed(**kwargs))
    return changes, last_etag(container)


def ids_of(items: Iterable[dict]) -> List[str]:
    """The ``id`` of each item, in order."""
    return [item["id"] for item in items]
