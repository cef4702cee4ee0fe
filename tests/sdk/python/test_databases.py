"""Database resources: create, read, list, query, delete, create-if-not-exists."""

import pytest
from azure.cosmos import CosmosClient, exceptions

import cosmos_support


@pytest.fixture
def database_id(client: CosmosClient):
    """A unique database id; whatever database gets that id is deleted after the test."""
    new_id = cosmos_support.unique_id("py-db")
    yield new_id
    try:
        client.delete_database(new_id)
    except exceptions.CosmosResourceNotFoundError:
        pass


def test_created_database_has_system_properties(client: CosmosClient, database_id: str) -> None:
    created = client.create_database(database_id)

    properties = created.read()
    assert properties["id"] == database_id
    for system_property in ("_rid", "_self", "_etag", "_ts"):
        assert properties.get(system_property), f"database lacks {system_property}"


def test_create_database_twice_is_409(client: CosmosClient, database_id: str) -> None:
    client.create_database(database_id)

    with pytest.raises(exceptions.CosmosResourceExistsError) as raised:
        client.create_database(database_id)
    assert raised.value.status_code == 409


def test_list_and_query_databases_find_a_new_database(client: CosmosClient, database_id: str) -> None:
    client.create_database(database_id)

    assert database_id in [d["id"] for d in client.list_databases()]
    found = list(
        client.query_databases(
            query="SELECT * FROM root r WHERE r.id = @id",
            parameters=[{"name": "@id", "value": database_id}],
        )
    )
    assert [d["id"] for d in found] == [database_id]


def test_deleted_database_reads_as_404(client: CosmosClient, database_id: str) -> None:
    created = client.create_database(database_id)

    client.delete_database(database_id)

    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        created.read()
    assert database_id not in [d["id"] for d in client.list_databases()]
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        client.delete_database(database_id)


def test_create_database_if_not_exists_returns_the_existing_database(client: CosmosClient, database_id: str) -> None:
    first = client.create_database_if_not_exists(database_id).read()
    second = client.create_database_if_not_exists(database_id).read()

    assert first["_rid"] == second["_rid"]
    assert [d["id"] for d in client.list_databases()].count(database_id) == 1


def test_database_with_shared_throughput_reports_its_offer(client: CosmosClient, database_id: str) -> None:
    created = client.create_database(database_id, offer_throughput=400)

    assert created.get_throughput().offer_throughput == 400
