"""Partial document update (``patch_item``): every operation, conditions and errors."""

import pytest
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, exceptions


def _seed(container: ContainerProxy) -> dict:
    return container.create_item(
        {
            "id": "doc",
            "pk": "p",
            "prop": "to-remove",
            "company": "Contoso",
            "address": {"city": "Redmond"},
            "number": 3,
            "tags": ["a", "b"],
            "color": "yellow",
        }
    )


def test_patch_applies_set_add_remove_replace_incr_and_move(container: ContainerProxy) -> None:
    seeded = _seed(container)

    patched = container.patch_item(
        "doc",
        partition_key="p",
        patch_operations=[
            {"op": "add", "path": "/added", "value": "new"},
            {"op": "add", "path": "/tags/1", "value": "inserted"},
            {"op": "remove", "path": "/prop"},
            {"op": "replace", "path": "/company", "value": "Fabrikam"},
            {"op": "set", "path": "/address/zip", "value": "98052"},
            {"op": "incr", "path": "/number", "value": 7},
            {"op": "incr", "path": "/fraction", "value": 0.5},
            {"op": "move", "from": "/color", "path": "/favorite_color"},
        ],
    )

    assert patched["added"] == "new"
    assert patched["tags"] == ["a", "inserted", "b"]
    assert "prop" not in patched
    assert patched["company"] == "Fabrikam"
    assert patched["address"] == {"city": "Redmond", "zip": "98052"}
    assert patched["number"] == 10
    assert patched["fraction"] == 0.5
    assert "color" not in patched
    assert patched["favorite_color"] == "yellow"
    assert patched["_etag"] != seeded["_etag"]
    stored = container.read_item("doc", partition_key="p")
    assert {k: v for k, v in stored.items() if not k.startswith("_")} == {
        k: v for k, v in patched.items() if not k.startswith("_")
    }


def test_patch_with_matching_filter_predicate_applies(container: ContainerProxy) -> None:
    _seed(container)

    patched = container.patch_item(
        "doc",
        partition_key="p",
        patch_operations=[{"op": "set", "path": "/company", "value": "Filtered"}],
        filter_predicate="from c where c.number = 3",
    )

    assert patched["company"] == "Filtered"


def test_patch_with_failing_filter_predicate_is_412(container: ContainerProxy) -> None:
    _seed(container)

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.patch_item(
            "doc",
            partition_key="p",
            patch_operations=[{"op": "set", "path": "/company", "value": "Filtered"}],
            filter_predicate="from c where c.number = 4",
        )
    assert raised.value.status_code == 412
    assert container.read_item("doc", partition_key="p")["company"] == "Contoso"


def test_patch_with_stale_etag_is_412(container: ContainerProxy) -> None:
    seeded = _seed(container)
    container.patch_item("doc", partition_key="p", patch_operations=[{"op": "incr", "path": "/number", "value": 1}])

    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        container.patch_item(
            "doc",
            partition_key="p",
            patch_operations=[{"op": "incr", "path": "/number", "value": 1}],
            etag=seeded["_etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    assert container.read_item("doc", partition_key="p")["number"] == 4


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "/missing", "value": 1},
        {"op": "remove", "path": "/missing"},
        {"op": "incr", "path": "/company", "value": 1},
        {"op": "move", "from": "/missing", "path": "/elsewhere"},
    ],
    ids=["replace-missing", "remove-missing", "incr-string", "move-from-missing"],
)
def test_invalid_patch_operation_is_400_and_changes_nothing(container: ContainerProxy, operation: dict) -> None:
    seeded = _seed(container)

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        container.patch_item(
            "doc",
            partition_key="p",
            patch_operations=[{"op": "set", "path": "/touched", "value": True}, operation],
        )
    assert raised.value.status_code == 400
    assert container.read_item("doc", partition_key="p")["_etag"] == seeded["_etag"]


def test_patch_of_missing_item_is_404(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        container.patch_item("ghost", partition_key="p", patch_operations=[{"op": "set", "path": "/a", "value": 1}])
