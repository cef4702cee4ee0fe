"""Item point operations: create, read, replace with etags, upsert, delete, ids, size limit."""

import time

import pytest
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, exceptions


def test_created_item_carries_system_properties(container: ContainerProxy) -> None:
    before = int(time.time())

    created = container.create_item({"id": "a", "pk": "p", "v": 1})

    assert created["id"] == "a"
    assert created["v"] == 1
    for system_property in ("_rid", "_self", "_etag", "_ts"):
        assert created.get(system_property), f"item lacks {system_property}"
    assert isinstance(created["_ts"], int)
    assert before - 300 <= created["_ts"] <= int(time.time()) + 300, "_ts must be epoch seconds"
    read = container.read_item("a", partition_key="p")
    assert {k: read[k] for k in ("_rid", "_self", "_etag", "_ts")} == {
        k: created[k] for k in ("_rid", "_self", "_etag", "_ts")
    }


def test_create_with_existing_id_is_409(container: ContainerProxy) -> None:
    container.create_item({"id": "dup", "pk": "p"})

    with pytest.raises(exceptions.CosmosResourceExistsError) as raised:
        container.create_item({"id": "dup", "pk": "p", "other": True})
    assert raised.value.status_code == 409
    assert "other" not in container.read_item("dup", partition_key="p")


def test_same_id_in_two_partitions_are_two_items(container: ContainerProxy) -> None:
    container.create_item({"id": "same", "pk": "p1", "v": 1})
    container.create_item({"id": "same", "pk": "p2", "v": 2})

    assert container.read_item("same", partition_key="p1")["v"] == 1
    assert container.read_item("same", partition_key="p2")["v"] == 2


def test_read_of_missing_item_is_404(container: ContainerProxy) -> None:
    container.create_item({"id": "present", "pk": "p"})

    with pytest.raises(exceptions.CosmosResourceNotFoundError) as raised:
        container.read_item("absent", partition_key="p")
    assert raised.value.status_code == 404
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("present", partition_key="other-partition")


def test_replace_with_current_etag_succeeds_and_stale_etag_is_412(container: ContainerProxy) -> None:
    created = container.create_item({"id": "r", "pk": "p", "v": 1})

    replaced = container.replace_item(
        "r",
        {"id": "r", "pk": "p", "v": 2},
        etag=created["_etag"],
        match_condition=MatchConditions.IfNotModified,
    )
    assert replaced["v"] == 2
    assert replaced["_etag"] != created["_etag"]

    with pytest.raises(exceptions.CosmosAccessConditionFailedError) as raised:
        container.replace_item(
            "r",
            {"id": "r", "pk": "p", "v": 3},
            etag=created["_etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    assert raised.value.status_code == 412
    assert container.read_item("r", partition_key="p")["v"] == 2


def test_replace_of_missing_item_is_404(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.replace_item("ghost", {"id": "ghost", "pk": "p"})


def test_upsert_creates_then_replaces(container: ContainerProxy) -> None:
    first = container.upsert_item({"id": "u", "pk": "p", "v": 1})
    second = container.upsert_item({"id": "u", "pk": "p", "v": 2})

    assert first["v"] == 1
    assert second["v"] == 2
    assert second["_etag"] != first["_etag"]
    assert container.read_item("u", partition_key="p")["v"] == 2
    assert [i["id"] for i in container.read_all_items()] == ["u"]


def test_upsert_with_stale_etag_is_412(container: ContainerProxy) -> None:
    first = container.upsert_item({"id": "u", "pk": "p", "v": 1})
    container.upsert_item({"id": "u", "pk": "p", "v": 2})

    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.upsert_item(
            {"id": "u", "pk": "p", "v": 3}, etag=first["_etag"], match_condition=MatchConditions.IfNotModified
        )


def test_upsert_with_an_etag_creates_an_absent_item(container: ContainerProxy) -> None:
    # The etag guards the replace an upsert makes of an existing item; with none, it creates.
    created = container.upsert_item(
        {"id": "fresh", "pk": "p", "v": 1}, etag='"0000"', match_condition=MatchConditions.IfNotModified
    )

    assert created["v"] == 1
    assert container.read_item("fresh", partition_key="p")["_etag"] == created["_etag"]


def test_delete_removes_the_item_and_a_second_delete_is_404(container: ContainerProxy) -> None:
    container.create_item({"id": "d", "pk": "p"})
    container.create_item({"id": "keep", "pk": "p"})

    container.delete_item("d", partition_key="p")

    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("d", partition_key="p")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.delete_item("d", partition_key="p")
    assert [i["id"] for i in container.read_all_items()] == ["keep"]


def test_delete_with_stale_etag_is_412(container: ContainerProxy) -> None:
    created = container.create_item({"id": "d", "pk": "p", "v": 1})
    container.replace_item("d", {"id": "d", "pk": "p", "v": 2})

    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.delete_item(
            "d", partition_key="p", etag=created["_etag"], match_condition=MatchConditions.IfNotModified
        )
    assert container.read_item("d", partition_key="p")["v"] == 2


@pytest.mark.parametrize("bad_id", ["a/b", "back\\slash", "what?", "hash#tag"])
def test_ids_with_reserved_characters_are_rejected(container: ContainerProxy, bad_id: str) -> None:
    with pytest.raises(ValueError):
        container.create_item({"id": bad_id, "pk": "p"})
    with pytest.raises(ValueError):
        container.upsert_item({"id": bad_id, "pk": "p"})


@pytest.mark.parametrize(
    "unusual_id",
    ["with space", "plus+sign", "ünïcødé-ид-标识", "colon:semi;comma,", "amp&eq=", "'quote'"],
)
def test_ids_with_url_special_characters_round_trip(container: ContainerProxy, unusual_id: str) -> None:
    container.create_item({"id": unusual_id, "pk": "p", "v": 1})

    assert container.read_item(unusual_id, partition_key="p")["id"] == unusual_id
    container.replace_item(unusual_id, {"id": unusual_id, "pk": "p", "v": 2})
    assert container.read_item(unusual_id, partition_key="p")["v"] == 2
    container.delete_item(unusual_id, partition_key="p")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item(unusual_id, partition_key="p")


def test_partition_key_values_of_every_json_type_round_trip(container: ContainerProxy) -> None:
    values = ["text", 42, 4.5, -1, True, False, None]
    for index, value in enumerate(values):
        container.create_item({"id": f"i{index}", "pk": value})

    for index, value in enumerate(values):
        assert container.read_item(f"i{index}", partition_key=value)["pk"] == value
    assert len(list(container.read_all_items())) == len(values)


def test_item_larger_than_2_mb_is_413(container: ContainerProxy) -> None:
    oversized = {"id": "big", "pk": "p", "blob": "x" * (2 * 1024 * 1024 + 1024)}

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.create_item(oversized)
    assert raised.value.status_code == 413
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("big", partition_key="p")


def test_an_item_over_2_mb_as_sent_is_413_even_if_smaller_stored(container: ContainerProxy) -> None:
    # The SDK escapes non-ASCII characters (six bytes each as sent, three in UTF-8): Cosmos DB
    # measures the item as sent.
    cjk = {"id": "cjk", "pk": "p", "text": "\u6f22" * (400 * 1024)}

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.create_item(cjk)
    assert raised.value.status_code == 413
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.read_item("cjk", partition_key="p")


def test_item_just_under_the_limit_is_accepted(container: ContainerProxy) -> None:
    sizable = {"id": "sizable", "pk": "p", "blob": "y" * (1900 * 1024)}

    container.create_item(sizable)

    assert len(container.read_item("sizable", partition_key="p")["blob"]) == 1900 * 1024


def test_read_all_items_pages_with_max_item_count(container: ContainerProxy) -> None:
    for index in range(7):
        container.create_item({"id": f"i{index}", "pk": "p"})

    pages = [list(page) for page in container.read_all_items(max_item_count=3).by_page()]

    assert all(len(page) <= 3 for page in pages)
    assert sorted(i["id"] for page in pages for i in page) == [f"i{index}" for index in range(7)]
