"""Container resources: partition keys, policies, read, replace, list, delete."""

import pytest
from azure.cosmos import DatabaseProxy, PartitionKey, exceptions

import cosmos_support


def test_container_reports_its_hash_partition_key(make_container) -> None:
    container = make_container("pk-single", partition_key="/pk")

    properties = container.read()
    assert properties["partitionKey"]["paths"] == ["/pk"]
    assert properties["partitionKey"]["kind"] == "Hash"
    assert properties["partitionKey"]["version"] == 2
    for system_property in ("_rid", "_self", "_etag", "_ts"):
        assert properties.get(system_property), f"container lacks {system_property}"


def test_hierarchical_partition_key_routes_full_and_prefix_keys(make_container) -> None:
    container = make_container("pk-multihash", partition_key=PartitionKey(path=["/tenant", "/user"], kind="MultiHash"))
    assert container.read()["partitionKey"]["kind"] == "MultiHash"
    assert container.read()["partitionKey"]["paths"] == ["/tenant", "/user"]
    container.create_item({"id": "1", "tenant": "acme", "user": "ann", "v": 1})
    container.create_item({"id": "2", "tenant": "acme", "user": "bob", "v": 2})
    container.create_item({"id": "3", "tenant": "zeta", "user": "ann", "v": 3})

    read = container.read_item("2", partition_key=["acme", "bob"])
    assert read["v"] == 2
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("2", partition_key=["acme", "ann"])
    full_key_ids = [i["id"] for i in container.query_items("SELECT * FROM c", partition_key=["acme", "ann"])]
    assert full_key_ids == ["1"]
    prefix_ids = sorted(i["id"] for i in container.query_items("SELECT * FROM c", partition_key=["acme"]))
    assert prefix_ids == ["1", "2"]


def test_default_ttl_round_trips(make_container) -> None:
    container = make_container("ttl-prop", default_ttl=3600)

    assert container.read()["defaultTtl"] == 3600


def test_indexing_policy_round_trips(make_container) -> None:
    policy = {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": "/blob/*"}],
        "compositeIndexes": [[{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]],
    }
    container = make_container("indexing", indexing_policy=policy)

    stored = container.read()["indexingPolicy"]
    assert stored["indexingMode"].lower() == "consistent"
    assert "/*" in {p["path"] for p in stored["includedPaths"]}
    assert "/blob/*" in {p["path"] for p in stored["excludedPaths"]}
    assert stored["compositeIndexes"] == policy["compositeIndexes"]


def test_change_feed_policy_round_trips(make_container) -> None:
    container = make_container("cf-policy", change_feed_policy={"retentionDuration": 10})

    assert container.read()["changeFeedPolicy"]["retentionDuration"] == 10


def test_replace_container_changes_default_ttl(database: DatabaseProxy, make_container) -> None:
    container = make_container("replace")
    before = container.read()

    database.replace_container(container, partition_key=PartitionKey(path="/pk"), default_ttl=60)

    after = database.get_container_client(container.id).read()
    assert after["defaultTtl"] == 60
    assert after["_rid"] == before["_rid"]
    assert after["_etag"] != before["_etag"]


def test_create_container_twice_is_409(database: DatabaseProxy, make_container) -> None:
    container = make_container("dup")

    with pytest.raises(exceptions.CosmosResourceExistsError):
        database.create_container(id=container.id, partition_key=PartitionKey(path="/pk"))


def test_create_container_if_not_exists_keeps_the_existing_container(database: DatabaseProxy, make_container) -> None:
    container = make_container("if-not-exists")

    again = database.create_container_if_not_exists(id=container.id, partition_key=PartitionKey(path="/pk"))

    assert again.read()["_rid"] == container.read()["_rid"]


def test_list_and_query_containers_find_new_containers(database: DatabaseProxy, make_container) -> None:
    first = make_container("listed")
    second = make_container("listed")

    listed = {c["id"] for c in database.list_containers()}
    assert {first.id, second.id} <= listed
    queried = list(
        database.query_containers(
            query="SELECT * FROM root r WHERE r.id = @id",
            parameters=[{"name": "@id", "value": second.id}],
        )
    )
    assert [c["id"] for c in queried] == [second.id]


def test_deleted_container_reads_as_404_and_loses_its_items(database: DatabaseProxy) -> None:
    container_id = cosmos_support.unique_id("deleted")
    container = database.create_container(id=container_id, partition_key=PartitionKey(path="/pk"))
    container.create_item({"id": "x", "pk": "p"})

    database.delete_container(container_id)

    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        database.get_container_client(container_id).read()
    assert container_id not in {c["id"] for c in database.list_containers()}
    recreated = database.create_container(id=container_id, partition_key=PartitionKey(path="/pk"))
    try:
        assert list(recreated.read_all_items()) == []
    finally:
        database.delete_container(container_id)


def test_container_in_missing_database_is_404(client) -> None:
    missing = client.get_database_client(cosmos_support.unique_id("no-such-db"))

    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        missing.create_container(id="c", partition_key=PartitionKey(path="/pk"))
