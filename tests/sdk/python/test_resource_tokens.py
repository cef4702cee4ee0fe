"""Users, permissions and resource tokens, as an application hands them to its clients.

The application (master key) creates a user and a permission limited to one tenant's
partition key, reads the permission's ``_token``, and gives it to a client that holds no key
(``CosmosClient(url, credential={container link: token})``). That client reads and writes its
own partition (items, queries, its change feed) and is refused (403) everywhere else; deleting the permission revokes it (401).
"""

import os
from typing import Any, Callable, Dict, Iterator, List

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey, exceptions

import cosmos_support


@pytest.fixture(scope="module")
def token_client(endpoint: str) -> Iterator[Callable[[Dict[str, str]], CosmosClient]]:
    """Makes clients whose only credential is resource tokens, keyed by resource link.

    They are closed with the module, not at the end of each test: the SDK's background
    health check may still be using a client's transport right after its first request.
    """
    clients: List[CosmosClient] = []

    def make(resource_tokens: Dict[str, str]) -> CosmosClient:
        kwargs: Dict[str, Any] = {}
        if os.environ.get("TRIBUTARY_TLS_INSECURE") == "1":
            kwargs["connection_verify"] = False
        client = CosmosClient(endpoint, credential=resource_tokens, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def tenants(database: DatabaseProxy) -> Iterator[ContainerProxy]:
    """A container partitioned by tenant, with one item in tenant-1 and one in tenant-2."""
    container = database.create_container(
        id=cosmos_support.unique_id("tenants"), partition_key=PartitionKey(path="/tenant")
    )
    container.create_item({"id": "t1-seed", "tenant": "tenant-1", "n": 1})
    container.create_item({"id": "t2-seed", "tenant": "tenant-2", "n": 2})
    yield container
    database.delete_container(container.id)


def test_a_tenant_token_reads_and_writes_its_partition_and_nothing_else(
    token_client: Callable[[Dict[str, str]], CosmosClient],
    database: DatabaseProxy,
    tenants: ContainerProxy,
) -> None:
    user = database.create_user({"id": cosmos_support.unique_id("tenant-app")})
    link = f"dbs/{database.id}/colls/{tenants.id}"
    permission = user.create_permission(
        {
            "id": "tenant-1-all",
            "permissionMode": "all",
            "resource": link,
            "resourcePartitionKey": ["tenant-1"],
        }
    )
    assert permission.properties["resourcePartitionKey"] == ["tenant-1"]
    token = user.get_permission("tenant-1-all").properties["_token"]

    client = token_client({link: token})
    container = client.get_database_client(database.id).get_container_client(tenants.id)

    assert container.read_item("t1-seed", partition_key="tenant-1")["n"] == 1
    container.create_item({"id": "t1-new", "tenant": "tenant-1", "n": 3})
    container.upsert_item({"id": "t1-new", "tenant": "tenant-1", "n": 4})
    mine = list(
        container.query_items("SELECT VALUE c.id FROM c", partition_key="tenant-1")
    )
    assert sorted(mine) == ["t1-new", "t1-seed"]
    changes = container.query_items_change_feed(
        partition_key="tenant-1", start_time="Beginning"
    )
    assert sorted(change["id"] for change in changes) == ["t1-new", "t1-seed"]

    with pytest.raises(exceptions.CosmosHttpResponseError) as refused:
        container.create_item({"id": "t2-new", "tenant": "tenant-2"})
    assert refused.value.status_code == 403
    with pytest.raises(exceptions.CosmosHttpResponseError) as refused:
        container.read_item("t2-seed", partition_key="tenant-2")
    assert refused.value.status_code == 403
    with pytest.raises(exceptions.CosmosHttpResponseError) as refused:
        list(container.query_items("SELECT * FROM c", enable_cross_partition_query=True))
    assert refused.value.status_code == 403

    container.delete_item("t1-new", partition_key="tenant-1")

    # Revoked: the permission is deleted, and the same token stops working.
    user.delete_permission("tenant-1-all")
    with pytest.raises(exceptions.CosmosHttpResponseError) as revoked:
        container.read_item("t1-seed", partition_key="tenant-1")
    assert revoked.value.status_code == 401

    database.delete_user(user.id)


def test_a_read_token_cannot_write(
    token_client: Callable[[Dict[str, str]], CosmosClient],
    database: DatabaseProxy,
    tenants: ContainerProxy,
) -> None:
    user = database.create_user({"id": cosmos_support.unique_id("reader")})
    link = f"dbs/{database.id}/colls/{tenants.id}"
    permission = user.create_permission(
        {"id": "read-all-tenants", "permissionMode": "read", "resource": link}
    )
    client = token_client({link: permission.properties["_token"]})
    container = client.get_database_client(database.id).get_container_client(tenants.id)
    ids = sorted(item["id"] for item in container.read_all_items())
    assert ids == ["t1-seed", "t2-seed"]
    with pytest.raises(exceptions.CosmosHttpResponseError) as refused:
        container.create_item({"id": "nope", "tenant": "tenant-1"})
    assert refused.value.status_code == 403
    with pytest.raises(exceptions.CosmosHttpResponseError) as refused:
        client.get_database_client(database.id).delete_container(tenants.id)
    assert refused.value.status_code == 403
    database.delete_user(user.id)
