"""Change feed in AllVersionsAndDeletes mode (full fidelity): creates, replaces, deletes, metadata."""

import pytest
from azure.cosmos import ContainerProxy

from cosmos_support import drain_change_feed

MODE = "AllVersionsAndDeletes"


@pytest.fixture
def retained(make_container) -> ContainerProxy:
    """A container whose change-feed policy keeps every version for ten minutes."""
    return make_container("avad", change_feed_policy={"retentionDuration": 10})


def _operation(change: dict) -> str:
    return change["metadata"]["operationType"]


def _id_of(change: dict) -> str:
    current = change.get("current") or {}
    if "id" in current:
        return current["id"]
    if "id" in change["metadata"]:
        return change["metadata"]["id"]
    return change["previous"]["id"]


def test_every_version_and_the_delete_are_reported_in_order(retained: ContainerProxy) -> None:
    _, token = drain_change_feed(retained, start_time="Now", mode=MODE)

    retained.create_item({"id": "doc", "pk": "p", "v": 1})
    retained.replace_item("doc", {"id": "doc", "pk": "p", "v": 2})
    retained.upsert_item({"id": "doc", "pk": "p", "v": 3})
    retained.delete_item("doc", partition_key="p")
    changes, _ = drain_change_feed(retained, continuation=token, mode=MODE)

    assert [_operation(c) for c in changes] == ["create", "replace", "replace", "delete"]
    assert [_id_of(c) for c in changes] == ["doc"] * 4
    assert [c["current"]["v"] for c in changes[:3]] == [1, 2, 3]
    lsns = [c["metadata"]["lsn"] for c in changes]
    assert lsns == sorted(lsns) and len(set(lsns)) == 4
    for change in changes:
        assert isinstance(change["metadata"]["crts"], int)
    deleted = changes[3]
    assert not deleted.get("current"), "a delete carries no current image"
    assert deleted["metadata"].get("timeToLiveExpired", False) is False


def test_previous_images_when_reported_hold_the_prior_version(retained: ContainerProxy) -> None:
    _, token = drain_change_feed(retained, start_time="Now", mode=MODE)

    retained.create_item({"id": "doc", "pk": "p", "v": 1})
    retained.replace_item("doc", {"id": "doc", "pk": "p", "v": 2})
    retained.delete_item("doc", partition_key="p")
    changes, _ = drain_change_feed(retained, continuation=token, mode=MODE)

    create, replace, delete = changes
    assert "previous" not in create or not create["previous"]
    if replace.get("previous"):
        assert replace["previous"]["v"] == 1
        assert replace["metadata"]["previousImageLSN"] == create["metadata"]["lsn"]
    if delete.get("previous"):
        assert delete["previous"]["id"] == "doc"
        assert delete["previous"].get("v", 2) == 2


def test_deletes_report_id_and_partition_key(retained: ContainerProxy) -> None:
    retained.create_item({"id": "a", "pk": "p1"})
    retained.create_item({"id": "b", "pk": "p2"})
    _, token = drain_change_feed(retained, start_time="Now", mode=MODE)

    retained.delete_item("a", partition_key="p1")
    retained.delete_item("b", partition_key="p2")
    changes, _ = drain_change_feed(retained, continuation=token, mode=MODE)

    assert sorted((_operation(c), _id_of(c)) for c in changes) == [("delete", "a"), ("delete", "b")]


def test_all_versions_feed_resumes_from_its_continuation(retained: ContainerProxy) -> None:
    _, token = drain_change_feed(retained, start_time="Now", mode=MODE)
    retained.create_item({"id": "one", "pk": "p"})
    first, token = drain_change_feed(retained, continuation=token, mode=MODE)

    retained.create_item({"id": "two", "pk": "p"})
    second, _ = drain_change_feed(retained, continuation=token, mode=MODE)

    assert [(_operation(c), _id_of(c)) for c in first] == [("create", "one")]
    assert [(_operation(c), _id_of(c)) for c in second] == [("create", "two")]


def test_all_versions_feed_scoped_to_a_partition_key(retained: ContainerProxy) -> None:
    _, token = drain_change_feed(retained, start_time="Now", mode=MODE, partition_key="mine")

    retained.create_item({"id": "x", "pk": "mine"})
    retained.create_item({"id": "y", "pk": "other"})
    retained.delete_item("x", partition_key="mine")
    changes, _ = drain_change_feed(retained, continuation=token, mode=MODE)

    assert [(_operation(c), _id_of(c)) for c in changes] == [("create", "x"), ("delete", "x")]


def test_all_versions_mode_is_refused_from_the_beginning(retained: ContainerProxy) -> None:
    with pytest.raises(ValueError):
        retained.query_items_change_feed(start_time="Beginning", mode=MODE)
