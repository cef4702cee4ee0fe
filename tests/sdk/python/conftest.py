"""Fixtures for the scenario tests: one client per session, one fresh database per module.

Configured by the environment:

* ``TRIBUTARY_ENDPOINT`` (required), e.g. ``https://127.0.0.1:8081/`` or ``http://127.0.0.1:8082/``;
* ``TRIBUTARY_KEY`` (optional), the master key; the emulator key when unset;
* ``TRIBUTARY_READONLY_KEY`` (optional), a read-only key of the account; the tests that need
  one skip without it.
"""

from typing import Callable, Iterator

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey, exceptions

import cosmos_support


@pytest.fixture(scope="session")
def endpoint() -> str:
    """The account endpoint under test."""
    return cosmos_support.endpoint_from_env()


@pytest.fixture(scope="session")
def key() -> str:
    """The account master key."""
    return cosmos_support.key_from_env()


@pytest.fixture(scope="session")
def readonly_key() -> str:
    """The account's read-only key; skips the test when the server under test has none."""
    key = cosmos_support.readonly_key_from_env()
    if key is None:
        pytest.skip("TRIBUTARY_READONLY_KEY is not set: the server under test has no read-only key")
    return key


@pytest.fixture(scope="session")
def client(endpoint: str, key: str) -> Iterator[CosmosClient]:
    """A client made from a connection string, shared by every test of the session."""
    cosmos_client = cosmos_support.make_client(endpoint, key)
    yield cosmos_client
    cosmos_client.close()


@pytest.fixture(scope="module")
def database(client: CosmosClient, request: pytest.FixtureRequest) -> Iterator[DatabaseProxy]:
    """A database created for this test module alone and deleted after it."""
    module_label = request.module.__name__.replace("_", "-")
    database_id = cosmos_support.unique_id(f"py-{module_label}")
    created = client.create_database(database_id)
    yield created
    try:
        client.delete_database(database_id)
    except exceptions.CosmosResourceNotFoundError:
        pass


@pytest.fixture
def make_container(database: DatabaseProxy) -> Iterator[Callable[..., ContainerProxy]]:
    """Create containers with unique ids in the module's database; they are deleted after the test.

    ``make_container(label, partition_key="/pk", **create_container_kwargs)``.
    """
    created_ids = []

    def create(label: str = "c", partition_key: object = "/pk", **kwargs: object) -> ContainerProxy:
        container_id = cosmos_support.unique_id(label)
        if not isinstance(partition_key, PartitionKey):
            partition_key = PartitionKey(path=partition_key)
        container = database.create_container(id=container_id, partition_key=partition_key, **kwargs)
        created_ids.append(container_id)
        return container

    yield create
    for container_id in created_ids:
        try:
            database.delete_container(container_id)
        except exceptions.CosmosResourceNotFoundError:
            pass


@pytest.fixture
def container(make_container: Callable[..., ContainerProxy]) -> ContainerProxy:
    """A fresh container partitioned on ``/pk``."""
    return make_container("items")
