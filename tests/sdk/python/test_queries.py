"""SQL queries: parameters, aggregates, ORDER BY, TOP, cross-partition, paging."""

import pytest
from azure.cosmos import ContainerProxy


@pytest.fixture
def scores(container: ContainerProxy) -> ContainerProxy:
    """Twelve items over three partitions: ``v`` runs 0..11, ``pk`` cycles p0, p1, p2."""
    for v in range(12):
        container.create_item({"id": f"i{v:02d}", "pk": f"p{v % 3}", "v": v, "even": v % 2 == 0})
    return container


def test_parameterised_query_in_one_partition(scores: ContainerProxy) -> None:
    found = list(
        scores.query_items(
            "SELECT * FROM c WHERE c.v >= @low AND c.even = @even",
            parameters=[{"name": "@low", "value": 6}, {"name": "@even", "value": True}],
            partition_key="p0",
        )
    )

    assert sorted(i["v"] for i in found) == [6]


def test_value_max_across_partitions(scores: ContainerProxy) -> None:
    result = list(scores.query_items("SELECT VALUE MAX(c.v) FROM c", enable_cross_partition_query=True))

    assert result == [11]


def test_value_count_across_partitions_and_in_one(scores: ContainerProxy) -> None:
    everything = list(scores.query_items("SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True))
    one_partition = list(scores.query_items("SELECT VALUE COUNT(1) FROM c", partition_key="p1"))

    assert everything == [12]
    assert one_partition == [4]


def test_value_aggregate_of_no_rows(scores: ContainerProxy) -> None:
    result = list(scores.query_items("SELECT VALUE COUNT(1) FROM c WHERE c.v > 100", partition_key="p0"))

    assert result == [0]


def test_order_by_descending_across_partitions(scores: ContainerProxy) -> None:
    found = list(scores.query_items("SELECT * FROM c ORDER BY c.v DESC", enable_cross_partition_query=True))

    assert [i["v"] for i in found] == list(range(11, -1, -1))


def test_top_with_order_by(scores: ContainerProxy) -> None:
    found = list(scores.query_items("SELECT TOP 3 c.v FROM c ORDER BY c.v", enable_cross_partition_query=True))

    assert found == [{"v": 0}, {"v": 1}, {"v": 2}]


def test_projection_and_value_select(scores: ContainerProxy) -> None:
    projected = list(scores.query_items("SELECT c.id, c.v FROM c WHERE c.v = 4", partition_key="p1"))
    values = list(scores.query_items("SELECT VALUE c.v FROM c WHERE c.v < 3", enable_cross_partition_query=True))

    assert projected == [{"id": "i04", "v": 4}]
    assert sorted(values) == [0, 1, 2]


def test_cross_partition_query_sees_every_partition(scores: ContainerProxy) -> None:
    found = list(scores.query_items("SELECT * FROM c WHERE c.even = true", enable_cross_partition_query=True))

    assert sorted(i["v"] for i in found) == [0, 2, 4, 6, 8, 10]
    assert {i["pk"] for i in found} == {"p0", "p1", "p2"}


def test_query_results_carry_system_properties(scores: ContainerProxy) -> None:
    found = list(scores.query_items("SELECT * FROM c WHERE c.id = 'i00'", partition_key="p0"))

    assert len(found) == 1
    for system_property in ("_rid", "_self", "_etag", "_ts"):
        assert system_property in found[0]


def test_max_item_count_pages_and_continuation_resumes(container: ContainerProxy) -> None:
    for v in range(10):
        container.create_item({"id": f"i{v}", "pk": "p", "v": v})
    query = "SELECT * FROM c ORDER BY c.v"

    pager = container.query_items(query, partition_key="p", max_item_count=3).by_page()
    first_page = [i["v"] for i in next(pager)]
    token = pager.continuation_token
    rest = [i["v"] for page in pager for i in page]

    assert first_page == [0, 1, 2]
    assert token
    assert rest == list(range(3, 10))
    resumed = container.query_items(query, partition_key="p", max_item_count=3).by_page(token)
    pages = [[i["v"] for i in page] for page in resumed]
    assert [v for page in pages for v in page] == list(range(3, 10))
    assert all(len(page) <= 3 for page in pages)


def test_cross_partition_paging_returns_every_item_once(scores: ContainerProxy) -> None:
    pages = [
        list(page)
        for page in scores.query_items("SELECT * FROM c", enable_cross_partition_query=True, max_item_count=5).by_page()
    ]

    ids = [i["id"] for page in pages for i in page]
    assert all(len(page) <= 5 for page in pages)
    assert sorted(ids) == [f"i{v:02d}" for v in range(12)]


def test_common_functions_and_operators(container: ContainerProxy) -> None:
    container.create_item({"id": "a", "pk": "p", "name": "Alpha", "tags": ["x", "y"], "n": 5})
    container.create_item({"id": "b", "pk": "p", "name": "beta", "tags": ["y"], "n": None})
    container.create_item({"id": "c", "pk": "p", "name": "Gamma"})

    def ids(query: str) -> list:
        return sorted(i["id"] for i in container.query_items(query, partition_key="p"))

    assert ids("SELECT * FROM c WHERE c.id IN ('a', 'c')") == ["a", "c"]
    assert ids("SELECT * FROM c WHERE ARRAY_CONTAINS(c.tags, 'x')") == ["a"]
    assert ids("SELECT * FROM c WHERE STARTSWITH(c.name, 'b')") == ["b"]
    assert ids("SELECT * FROM c WHERE IS_DEFINED(c.n)") == ["a", "b"]
    assert ids("SELECT * FROM c WHERE IS_NULL(c.n)") == ["b"]
    assert ids("SELECT * FROM c WHERE NOT IS_DEFINED(c.tags)") == ["c"]
    assert ids("SELECT * FROM c WHERE LOWER(c.name) = 'alpha'") == ["a"]
    assert list(container.query_items("SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags", partition_key="p")) in (
        ["x", "y"],
        ["y", "x"],
    )
    offset = list(container.query_items("SELECT VALUE c.id FROM c ORDER BY c.id OFFSET 1 LIMIT 1", partition_key="p"))
    assert offset == ["b"]
