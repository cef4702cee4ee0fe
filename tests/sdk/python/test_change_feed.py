"""Change feed in LatestVersion mode: start points, continuations, scopes, latest-version folding."""

import time
from datetime import datetime, timedelta, timezone

from azure.cosmos import ContainerProxy

from cosmos_support import drain_change_feed, ids_of, last_etag


def _create(container: ContainerProxy, ids, pk: str = "p") -> None:
    for item_id in ids:
        container.create_item({"id": item_id, "pk": pk})


def test_from_beginning_returns_items_in_write_order(container: ContainerProxy) -> None:
    _create(container, ["a", "b", "c"])

    changes = list(container.query_items_change_feed(start_time="Beginning"))

    assert ids_of(changes) == ["a", "b", "c"]
    for change in changes:
        assert change["pk"] == "p"
        for system_property in ("_rid", "_etag", "_ts", "_lsn"):
            assert system_property in change, f"change lacks {system_property}"
    assert [c["_lsn"] for c in changes] == sorted(c["_lsn"] for c in changes)


def test_continuation_from_last_etag_resumes_after_the_last_change(container: ContainerProxy) -> None:
    _create(container, ["a", "b"])
    first, token = drain_change_feed(container, start_time="Beginning")
    assert ids_of(first) == ["a", "b"]

    nothing_new, token_again = drain_change_feed(container, continuation=token)
    _create(container, ["c", "d"], pk="q")
    resumed, _ = drain_change_feed(container, continuation=token_again)

    assert nothing_new == []
    assert ids_of(resumed) == ["c", "d"]


def test_continuation_pages_with_max_item_count(container: ContainerProxy) -> None:
    _, token = drain_change_feed(container, start_time="Beginning")
    _create(container, [f"i{n}" for n in range(5)])

    pages = [list(page) for page in container.query_items_change_feed(continuation=token, max_item_count=2).by_page()]

    assert [len(page) for page in pages if page] == [2, 2, 1]
    assert ids_of(c for page in pages for c in page) == [f"i{n}" for n in range(5)]


def test_empty_feed_still_yields_a_continuation(container: ContainerProxy) -> None:
    assert list(container.query_items_change_feed(start_time="Beginning")) == []
    token = last_etag(container)

    _create(container, ["late"])

    assert ids_of(container.query_items_change_feed(continuation=token)) == ["late"]


def test_partition_key_scope_sees_only_that_partition(container: ContainerProxy) -> None:
    _create(container, ["a1", "a2"], pk="A")
    _create(container, ["b1"], pk="B")
    _create(container, ["a3"], pk="A")

    scoped, token = drain_change_feed(container, start_time="Beginning", partition_key="A")
    _create(container, ["b2"], pk="B")
    _create(container, ["a4"], pk="A")
    resumed, _ = drain_change_feed(container, continuation=token)

    assert ids_of(scoped) == ["a1", "a2", "a3"]
    assert ids_of(resumed) == ["a4"]


def test_feed_ranges_partition_the_feed(container: ContainerProxy) -> None:
    _create(container, [f"x{n}" for n in range(4)], pk="x")
    for n in range(16):
        container.create_item({"id": f"spread{n}", "pk": f"k{n}"})
    feed_ranges = list(container.read_feed_ranges())
    assert feed_ranges

    per_range = [ids_of(container.query_items_change_feed(feed_range=r, start_time="Beginning")) for r in feed_ranges]

    everything = [item_id for ids in per_range for item_id in ids]
    assert sorted(everything) == sorted([f"x{n}" for n in range(4)] + [f"spread{n}" for n in range(16)])
    assert len(everything) == len(set(everything)), "a change appeared in two feed ranges"


def test_feed_range_continuation_resumes_within_the_range(container: ContainerProxy) -> None:
    key_range = container.feed_range_from_partition_key("p")
    feed_range = next(r for r in container.read_feed_ranges() if container.is_feed_range_subset(r, key_range))
    _create(container, ["before"])
    before, token = drain_change_feed(container, feed_range=feed_range, start_time="Beginning")

    _create(container, ["after"])
    resumed = ids_of(container.query_items_change_feed(continuation=token))

    assert ids_of(before) == ["before"]
    assert resumed == ["after"]


def test_feed_range_from_partition_key_matches_partition_key_scope(container: ContainerProxy) -> None:
    _create(container, ["a1", "a2"], pk="A")
    _create(container, ["b1"], pk="B")

    by_range = ids_of(
        container.query_items_change_feed(
            feed_range=container.feed_range_from_partition_key("A"), start_time="Beginning"
        )
    )

    assert by_range == ["a1", "a2"]


def test_point_in_time_start_skips_earlier_changes(container: ContainerProxy) -> None:
    _create(container, [f"early{n}" for n in range(3)])
    time.sleep(1.1)
    now = datetime.now(timezone.utc)
    start = now - timedelta(microseconds=now.microsecond)
    time.sleep(1.1)
    _create(container, [f"late{n}" for n in range(3)])

    from_start = set(ids_of(container.query_items_change_feed(start_time=start)))
    future = list(container.query_items_change_feed(start_time=start + timedelta(hours=1)))
    same_instant_elsewhere = set(
        ids_of(container.query_items_change_feed(start_time=start.astimezone(timezone(timedelta(hours=5, minutes=30)))))
    )

    assert {f"late{n}" for n in range(3)} <= from_start
    assert from_start <= {f"early{n}" for n in range(3)} | {f"late{n}" for n in range(3)}
    assert future == []
    assert same_instant_elsewhere == from_start


def test_start_now_skips_existing_changes(container: ContainerProxy) -> None:
    _create(container, ["old"])

    existing, token = drain_change_feed(container, start_time="Now")
    _create(container, ["new"])
    resumed, _ = drain_change_feed(container, continuation=token)

    assert existing == []
    assert ids_of(resumed) == ["new"]


def test_default_start_is_now(container: ContainerProxy) -> None:
    _create(container, ["old"])

    assert list(container.query_items_change_feed()) == []


def test_latest_version_folds_updates_and_omits_deletes(container: ContainerProxy) -> None:
    _create(container, ["kept", "gone"])
    container.upsert_item({"id": "kept", "pk": "p", "v": 1})
    container.replace_item("kept", {"id": "kept", "pk": "p", "v": 2})
    container.delete_item("gone", partition_key="p")

    changes = list(container.query_items_change_feed(start_time="Beginning"))

    assert ids_of(changes) == ["kept"]
    assert changes[0]["v"] == 2


def test_update_moves_an_item_to_the_end_of_the_feed(container: ContainerProxy) -> None:
    _create(container, ["first", "second"])
    _, token = drain_change_feed(container, start_time="Beginning")

    container.replace_item("first", {"id": "first", "pk": "p", "v": "touched"})

    assert ids_of(container.query_items_change_feed(start_time="Beginning")) == ["second", "first"]
    resumed = list(container.query_items_change_feed(continuation=token))
    assert ids_of(resumed) == ["first"]
    assert resumed[0]["v"] == "touched"
