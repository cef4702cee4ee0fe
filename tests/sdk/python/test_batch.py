"""Transactional batch (``execute_item_batch``): all-or-nothing within one partition key."""

import pytest
from azure.cosmos import ContainerProxy, exceptions


def test_batch_of_every_operation_kind_succeeds(container: ContainerProxy) -> None:
    container.create_item({"id": "to-replace", "pk": "p", "v": 0})
    container.create_item({"id": "to-read", "pk": "p", "v": 1})
    container.create_item({"id": "to-patch", "pk": "p", "n": 1})
    container.create_item({"id": "to-delete", "pk": "p"})

    results = container.execute_item_batch(
        batch_operations=[
            ("create", ({"id": "created", "pk": "p"},)),
            ("upsert", ({"id": "upserted", "pk": "p", "v": 9},)),
            ("replace", ("to-replace", {"id": "to-replace", "pk": "p", "v": 2})),
            ("read", ("to-read",)),
            ("patch", ("to-patch", [{"op": "incr", "path": "/n", "value": 4}])),
            ("delete", ("to-delete",)),
        ],
        partition_key="p",
    )

    assert [r["statusCode"] for r in results] == [201, 201, 200, 200, 200, 204]
    assert results[3]["resourceBody"]["v"] == 1
    assert results[4]["resourceBody"]["n"] == 5
    assert sorted(i["id"] for i in container.read_all_items()) == [
        "created",
        "to-patch",
        "to-read",
        "to-replace",
        "upserted",
    ]
    assert container.read_item("to-replace", partition_key="p")["v"] == 2


def test_failed_operation_rolls_back_the_whole_batch(container: ContainerProxy) -> None:
    container.create_item({"id": "exists", "pk": "p", "v": 1})

    with pytest.raises(exceptions.CosmosBatchOperationError) as raised:
        container.execute_item_batch(
            batch_operations=[
                ("create", ({"id": "fresh", "pk": "p"},)),
                ("replace", ("exists", {"id": "exists", "pk": "p", "v": 2})),
                ("create", ({"id": "exists", "pk": "p"},)),
                ("upsert", ({"id": "also-fresh", "pk": "p"},)),
            ],
            partition_key="p",
        )

    error = raised.value
    assert error.status_code == 409
    assert error.error_index == 2
    assert [r["statusCode"] for r in error.operation_responses] == [424, 424, 409, 424]
    assert sorted(i["id"] for i in container.read_all_items()) == ["exists"]
    assert container.read_item("exists", partition_key="p")["v"] == 1


def test_batch_read_of_missing_item_fails_the_batch_with_404(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosBatchOperationError) as raised:
        container.execute_item_batch(
            batch_operations=[("create", ({"id": "new", "pk": "p"},)), ("read", ("missing",))],
            partition_key="p",
        )

    assert raised.value.status_code == 404
    assert raised.value.error_index == 1
    assert list(container.read_all_items()) == []


def test_batch_replace_with_stale_etag_fails_with_412(container: ContainerProxy) -> None:
    created = container.create_item({"id": "e", "pk": "p", "v": 1})
    container.replace_item("e", {"id": "e", "pk": "p", "v": 2})

    with pytest.raises(exceptions.CosmosBatchOperationError) as raised:
        container.execute_item_batch(
            batch_operations=[("replace", ("e", {"id": "e", "pk": "p", "v": 3}), {"if_match_etag": created["_etag"]})],
            partition_key="p",
        )

    assert raised.value.status_code == 412
    assert container.read_item("e", partition_key="p")["v"] == 2


def test_batch_item_from_another_partition_fails_with_400(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosBatchOperationError) as raised:
        container.execute_item_batch(
            batch_operations=[("create", ({"id": "ok", "pk": "p"},)), ("create", ({"id": "stray", "pk": "other"},))],
            partition_key="p",
        )

    assert raised.value.status_code == 400
    assert raised.value.error_index == 1
    assert list(container.read_all_items()) == []


def test_empty_batch_is_400(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.execute_item_batch(batch_operations=[], partition_key="p")

    assert raised.value.status_code == 400


def test_batch_of_more_than_100_operations_is_400(container: ContainerProxy) -> None:
    operations = [("create", ({"id": f"i{n}", "pk": "p"},)) for n in range(101)]

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.execute_item_batch(batch_operations=operations, partition_key="p")

    assert raised.value.status_code == 400
    assert list(container.read_all_items()) == []


def test_batch_of_100_operations_commits(container: ContainerProxy) -> None:
    operations = [("create", ({"id": f"i{n:03d}", "pk": "p"},)) for n in range(100)]

    results = container.execute_item_batch(batch_operations=operations, partition_key="p")

    assert len(results) == 100
    assert len(list(container.read_all_items())) == 100


def test_batch_writes_appear_in_the_change_feed_in_operation_order(container: ContainerProxy) -> None:
    container.execute_item_batch(
        batch_operations=[("create", ({"id": name, "pk": "p"},)) for name in ("b1", "b2", "b3")],
        partition_key="p",
    )

    assert [c["id"] for c in container.query_items_change_feed(start_time="Beginning")] == ["b1", "b2", "b3"]
