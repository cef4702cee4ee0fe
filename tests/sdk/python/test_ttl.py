"""Time to live: container default, per-item override, never-expire, invalid values."""

import pytest
from azure.cosmos import ContainerProxy, DatabaseProxy, PartitionKey, exceptions

import cosmos_support

# Expiry is checked by polling; the service may take a moment past the TTL to hide an item.
EXPIRY_DEADLINE_S = 60


def _gone(container: ContainerProxy, item_id: str, pk: str = "p"):
    """``True`` once the item no longer reads, else ``None`` (for ``poll_until``)."""
    try:
        container.read_item(item_id, partition_key=pk)
    except exceptions.CosmosResourceNotFoundError:
        return True
    return None


def _ids(container: ContainerProxy) -> list:
    return sorted(i["id"] for i in container.query_items("SELECT * FROM c", enable_cross_partition_query=True))


def test_container_default_ttl_expires_items(make_container) -> None:
    container = make_container("ttl-default", default_ttl=1)
    container.create_item({"id": "short", "pk": "p"})

    cosmos_support.poll_until(lambda: _gone(container, "short"), deadline_s=EXPIRY_DEADLINE_S, what="item to expire")

    assert _ids(container) == []
    assert list(container.read_all_items()) == []


def test_item_ttl_overrides_and_minus_one_never_expires(make_container) -> None:
    container = make_container("ttl-item", default_ttl=1)
    container.create_item({"id": "forever", "pk": "p", "ttl": -1})
    container.create_item({"id": "long", "pk": "p", "ttl": 3600})
    container.create_item({"id": "default", "pk": "p"})

    cosmos_support.poll_until(lambda: _gone(container, "default"), deadline_s=EXPIRY_DEADLINE_S, what="item to expire")

    assert _ids(container) == ["forever", "long"]
    assert container.read_item("forever", partition_key="p")["ttl"] == -1


def test_item_ttl_applies_when_container_default_is_minus_one(make_container) -> None:
    container = make_container("ttl-opt-in", default_ttl=-1)
    container.create_item({"id": "keeps", "pk": "p"})
    container.create_item({"id": "expires", "pk": "p", "ttl": 1})

    cosmos_support.poll_until(lambda: _gone(container, "expires"), deadline_s=EXPIRY_DEADLINE_S, what="item to expire")

    assert _ids(container) == ["keeps"]


def test_item_ttl_is_ignored_when_the_container_has_no_ttl(make_container) -> None:
    without_ttl = make_container("ttl-off")
    with_ttl = make_container("ttl-on", default_ttl=-1)
    without_ttl.create_item({"id": "stays", "pk": "p", "ttl": 1})
    with_ttl.create_item({"id": "expires", "pk": "p", "ttl": 1})

    cosmos_support.poll_until(lambda: _gone(with_ttl, "expires"), deadline_s=EXPIRY_DEADLINE_S, what="item to expire")

    assert without_ttl.read_item("stays", partition_key="p")["ttl"] == 1


def test_expired_items_are_absent_from_latest_version_change_feed(make_container) -> None:
    container = make_container("ttl-feed", default_ttl=-1)
    container.create_item({"id": "expires", "pk": "p", "ttl": 1})
    container.create_item({"id": "stays", "pk": "p"})

    def feed_without_expired_item():
        ids = [c["id"] for c in container.query_items_change_feed(start_time="Beginning")]
        return ids if "expires" not in ids else None

    ids = cosmos_support.poll_until(
        feed_without_expired_item, deadline_s=EXPIRY_DEADLINE_S, what="expired item to leave the change feed"
    )
    assert ids == ["stays"]


@pytest.mark.parametrize("bad_ttl", [0, -10, None], ids=["zero", "minus-ten", "null"])
def test_invalid_item_ttl_is_400(make_container, bad_ttl) -> None:
    container = make_container("ttl-bad-item", default_ttl=10)

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.create_item({"id": "bad", "pk": "p", "ttl": bad_ttl})
    assert raised.value.status_code == 400


def test_invalid_container_default_ttl_is_400(database: DatabaseProxy) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        database.create_container(
            id=cosmos_support.unique_id("ttl-bad"), partition_key=PartitionKey(path="/pk"), default_ttl=-10
        )
    assert raised.value.status_code == 400
