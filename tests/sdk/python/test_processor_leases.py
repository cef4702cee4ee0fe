"""Lease documents of Tributary's change feed processor, read back with azure-cosmos.

The processor (run here as the ``examples/materialized-view`` binary, whose path
``scripts/test.sh`` exports as ``TRIBUTARY_EXAMPLE_BIN``) writes its leases in the shape of the
.NET SDK's processor; these tests hold it to the names and types a .NET-aware tool would read.
"""

import os
import re
import signal
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest
from azure.cosmos import ContainerProxy, DatabaseProxy, exceptions

from cosmos_support import connection_string, poll_until, unique_id

#: How long the example may take to start, fold the orders in, and stop.
EXAMPLE_DEADLINE_S = 60

ORDERS = [
    {"id": "o1", "customerId": "ada", "total": 10, "status": "placed"},
    {"id": "o2", "customerId": "ada", "total": 25, "status": "shipped"},
    {"id": "o3", "customerId": "bob", "total": 7, "status": "placed"},
    {"id": "o4", "customerId": "cyd", "total": 40, "status": "placed"},
    {"id": "o5", "customerId": "cyd", "total": 2, "status": "placed"},
]


def _example_binary() -> str:
    binary = os.environ.get("TRIBUTARY_EXAMPLE_BIN", "").strip()
    if not binary:
        pytest.skip(
            "TRIBUTARY_EXAMPLE_BIN is not set: build the example (cargo build --release "
            "-p tributary-example-materialized-view) and point it at target/release/materialized-view "
            "(scripts/test.sh does both)"
        )
    return binary


def _view_matches(view: ContainerProxy, expected: Dict[str, float]) -> Optional[bool]:
    for customer, total in expected.items():
        try:
            document = view.read_item(customer, partition_key=customer)
        except exceptions.CosmosResourceNotFoundError:
            return None
        if document["total"] != total:
            return None
    return True


def test_leases_have_the_dotnet_names_and_shapes(
    endpoint: str,
    key: str,
    database: DatabaseProxy,
    make_container: Callable[..., ContainerProxy],
    tmp_path: Path,
) -> None:
    binary = _example_binary()
    orders = make_container("orders", partition_key="/customerId")
    for order in ORDERS:
        orders.create_item(order)
    view_id, leases_id = unique_id("totals"), unique_id("leases")
    log_path = tmp_path / "example.log"
    with open(log_path, "wb") as log:
        example = subprocess.Popen(
            [binary, "--database", database.id, "--container", orders.id, "--view-container", view_id,
             "--lease-container", leases_id, "--instance", "py-host", "--from", "beginning"],
            env={**os.environ, "TRIBUTARY_CONNECTION_STRING": connection_string(endpoint, key)},
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        expected = {}
        for order in ORDERS:
            expected[order["customerId"]] = expected.get(order["customerId"], 0) + order["total"]
        view = database.get_container_client(view_id)

        def folded() -> Optional[bool]:
            if example.poll() is not None:
                raise AssertionError(f"the example exited with {example.returncode}:\n{log_path.read_text()}")
            return _view_matches(view, expected)

        poll_until(folded, deadline_s=EXAMPLE_DEADLINE_S, what="the example to fold the orders into the view")
        example.send_signal(signal.SIGTERM)
        assert example.wait(timeout=EXAMPLE_DEADLINE_S) == 0, log_path.read_text()
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()

    documents = list(database.get_container_client(leases_id).read_all_items())
    leases = [d for d in documents if ".." in d["id"]]
    assert any(d["id"].endswith(".info") for d in documents), [d["id"] for d in documents]
    assert leases, [d["id"] for d in documents]
    for lease in leases:
        lease_min, lease_max = lease["FeedRange"]["Range"]["min"], lease["FeedRange"]["Range"]["max"]
        assert lease["id"].startswith("customer-totals")
        assert lease["id"].endswith(f"..{lease['LeaseToken']}")
        assert lease["version"] == 1
        assert lease["LeaseToken"] == f"{lease_min}-{lease_max}"
        assert lease["FeedRange"]["Range"]["isMinInclusive"] is True
        assert lease["FeedRange"]["Range"]["isMaxInclusive"] is False
        assert "Owner" in lease and lease["Owner"] is None, "a gracefully stopped host leaves its leases free"
        assert re.fullmatch(r'"\d+"', lease["ContinuationToken"]), lease["ContinuationToken"]
        assert isinstance(lease["timestamp"], str)
        datetime.fromisoformat(lease["timestamp"].replace("Z", "+00:00"))
        assert isinstance(lease["properties"], dict)
        assert lease["Mode"] == "Incremental Feed"
    spans = sorted((lease["FeedRange"]["Range"]["min"], lease["FeedRange"]["Range"]["max"]) for lease in leases)
    assert spans[0][0] == "" and spans[-1][1] == "FF", spans
    assert all(left[1] == right[0] for left, right in zip(spans, spans[1:])), f"the leases do not tile the key space: {spans}"
