"""The account resource (``GET /``), master-key authentication, and read-only keys."""

import base64
import os

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey, exceptions

import cosmos_support


def test_account_read_reports_locations_and_session_consistency(client: CosmosClient) -> None:
    account = client.get_database_account()

    assert account.WritableLocations, "the account must list at least one writable location"
    assert account.ReadableLocations, "the account must list at least one readable location"
    for location in account.WritableLocations + account.ReadableLocations:
        assert location["name"]
        assert location["databaseAccountEndpoint"].startswith(("http://", "https://"))
    assert account.ConsistencyPolicy["defaultConsistencyLevel"] in (
        "Strong",
        "BoundedStaleness",
        "Session",
        "ConsistentPrefix",
        "Eventual",
    )


def test_client_from_connection_string_can_list_databases(endpoint: str, key: str) -> None:
    with cosmos_support.make_client(endpoint, key) as fresh_client:
        assert isinstance(list(fresh_client.list_databases()), list)


def test_wrong_master_key_is_rejected_with_401(endpoint: str) -> None:
    wrong_key = base64.b64encode(os.urandom(64)).decode("ascii")

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        with cosmos_support.make_client(endpoint, wrong_key) as wrong_client:
            list(wrong_client.list_databases())

    assert raised.value.status_code == 401


def test_key_of_wrong_length_is_rejected_with_401(endpoint: str, key: str) -> None:
    # Same bytes as the right key minus the last one: a signature made with it never matches.
    truncated_key = base64.b64encode(base64.b64decode(key)[:-1]).decode("ascii")

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        with cosmos_support.make_client(endpoint, truncated_key) as wrong_client:
            list(wrong_client.list_databases())

    assert raised.value.status_code == 401


def test_read_only_key_reads_queries_and_follows_the_change_feed_but_cannot_write(
    endpoint: str, readonly_key: str, database: DatabaseProxy, container: ContainerProxy
) -> None:
    container.upsert_item({"id": "a", "pk": "p", "n": 1})
    container.upsert_item({"id": "b", "pk": "q", "n": 2})

    with cosmos_support.make_client(endpoint, readonly_key) as read_only_client:
        read_only_database = read_only_client.get_database_client(database.id)
        read_only_container = read_only_database.get_container_client(container.id)

        # Reads: resources, a point read, queries (POSTs) in one partition and across them,
        # and the change feed.
        assert database.id in [db["id"] for db in read_only_client.list_databases()]
        assert read_only_container.read()["id"] == container.id
        assert read_only_container.read_item("a", partition_key="p")["n"] == 1
        assert [
            item["id"] for item in read_only_container.query_items("SELECT * FROM c WHERE c.n = 1", partition_key="p")
        ] == ["a"]
        cross_partition = read_only_container.query_items(
            "SELECT VALUE c.id FROM c ORDER BY c.id", enable_cross_partition_query=True
        )
        assert list(cross_partition) == ["a", "b"]
        changes = read_only_container.query_items_change_feed(start_time="Beginning")
        assert sorted(change["id"] for change in changes) == ["a", "b"]

        # Writes: each answered 403, naming the read-only key.
        writes = {
            "upsert": lambda: read_only_container.upsert_item({"id": "a", "pk": "p", "n": 99}),
            "create": lambda: read_only_container.create_item({"id": "c", "pk": "p"}),
            "replace": lambda: read_only_container.replace_item("a", {"id": "a", "pk": "p", "n": 99}),
            "patch": lambda: read_only_container.patch_item(
                "a", partition_key="p", patch_operations=[{"op": "incr", "path": "/n", "value": 1}]
            ),
            "delete": lambda: read_only_container.delete_item("a", partition_key="p"),
            "batch": lambda: read_only_container.execute_item_batch(
                [("create", ({"id": "d", "pk": "p"},))], partition_key="p"
            ),
            "create container": lambda: read_only_database.create_container(
                cosmos_support.unique_id("forbidden"), partition_key=PartitionKey(path="/pk")
            ),
        }
        for name, write in writes.items():
            with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
                write()
            assert raised.value.status_code == 403, name
            assert "read-only" in str(raised.value), f"{name}: {raised.value}"

    # Nothing was written.
    assert container.read_item("a", partition_key="p")["n"] == 1
    assert sorted(item["id"] for item in container.read_all_items()) == ["a", "b"]
