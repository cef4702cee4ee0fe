"""Offers (provisioned throughput) and the partition split that a large throughput causes."""

import time

import pytest
from azure.cosmos import ContainerProxy

from cosmos_support import drain_change_feed, ids_of

# Throughput above 10,000 RU/s needs more than one physical partition, so it forces a split.
SPLITTING_THROUGHPUT = 11000
# Azure Cosmos DB may take many minutes to finish a split; tributary finishes it at once.
SPLIT_DEADLINE_S = 1200


def _wait_until_offer_settles(container: ContainerProxy) -> None:
    deadline = time.monotonic() + SPLIT_DEADLINE_S
    while container.get_throughput().properties["content"].get("isOfferReplacePending", False):
        assert time.monotonic() < deadline, "the offer replacement never completed"
        time.sleep(5)


def test_container_throughput_reads_and_replaces(make_container) -> None:
    container = make_container("offer", offer_throughput=400)

    offer = container.get_throughput()
    assert offer.offer_throughput == 400
    assert offer.properties["resource"].strip("/") == container.read()["_self"].strip("/")

    replaced = container.replace_throughput(1000)

    assert replaced.offer_throughput == 1000
    assert container.get_throughput().offer_throughput == 1000


@pytest.mark.timeout(SPLIT_DEADLINE_S + 300)
def test_split_keeps_every_change_exactly_once(make_container) -> None:
    container = make_container("split", offer_throughput=400)
    assert len(list(container.read_feed_ranges())) == 1
    before_token_ids = [f"a{n:02d}" for n in range(10)]
    for item_id in before_token_ids:
        container.create_item({"id": item_id, "pk": f"pk-{item_id}"})
    first, token = drain_change_feed(container, start_time="Beginning")
    assert sorted(ids_of(first)) == before_token_ids
    before_split_ids = [f"b{n:02d}" for n in range(20)]
    for item_id in before_split_ids:
        container.create_item({"id": item_id, "pk": f"pk-{item_id}"})

    container.replace_throughput(SPLITTING_THROUGHPUT)
    _wait_until_offer_settles(container)
    after_split_ids = [f"c{n:02d}" for n in range(20)]
    for item_id in after_split_ids:
        container.create_item({"id": item_id, "pk": f"pk-{item_id}"})

    # The client still holds the single range it cached before the split, so this read meets
    # the split on the wire (410 Gone for the parent range) and must carry on in the children.
    resumed = ids_of(container.query_items_change_feed(continuation=token))
    assert sorted(resumed) == sorted(before_split_ids + after_split_ids)
    assert len(resumed) == len(set(resumed)), "a change was delivered twice across the split"
    feed_ranges = list(container.read_feed_ranges(force_refresh=True))
    assert len(feed_ranges) > 1, "raising throughput above 10,000 RU/s must split the container"
    everything = ids_of(container.query_items_change_feed(start_time="Beginning"))
    assert sorted(everything) == sorted(before_token_ids + before_split_ids + after_split_ids)
    assert len(everything) == len(set(everything))
    per_range = [ids_of(container.query_items_change_feed(feed_range=r, start_time="Beginning")) for r in feed_ranges]
    assert all(per_range), "every range of an even split should hold some of 50 spread keys"
    assert sorted(i for ids in per_range for i in ids) == sorted(everything)


@pytest.mark.timeout(SPLIT_DEADLINE_S + 300)
def test_items_stay_readable_and_queryable_across_a_split(make_container) -> None:
    container = make_container("split-crud", offer_throughput=400)
    for n in range(30):
        container.create_item({"id": f"i{n:02d}", "pk": f"k{n}", "v": n})

    container.replace_throughput(SPLITTING_THROUGHPUT)
    _wait_until_offer_settles(container)

    assert len(list(container.read_feed_ranges(force_refresh=True))) > 1
    assert all(container.read_item(f"i{n:02d}", partition_key=f"k{n}")["v"] == n for n in range(30))
    assert list(container.query_items("SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True)) == [30]
    ordered = list(container.query_items("SELECT VALUE c.v FROM c ORDER BY c.v", enable_cross_partition_query=True))
    assert ordered == list(range(30))
