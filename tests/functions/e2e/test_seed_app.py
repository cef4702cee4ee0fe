"""The seed's function_app.py, unchanged, through `tributary functions run` against `tributary serve`.

Orders and products are written with the official Python SDK; the test checks the materialized
customer summaries, the notification log lines, and the search receiver's requests.
"""

import json
import pathlib

from azure.cosmos import PartitionKey

from conftest import Receiver, Server, copy_app, start_host, wait_for


def test_the_seed_app_runs_unchanged(server: Server, receiver: Receiver, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("ECommerceDB")
    orders = database.create_container("Orders", PartitionKey("/customerId"))
    products = database.create_container("Products", PartitionKey("/category"))
    app_dir = copy_app("functions-seed", tmp_path, {"CosmosDBConnection": server.connection_string, "SEARCH_ENDPOINT": receiver.url, "SEARCH_API_KEY": "test-key"})
    assert (app_dir / "function_app.py").read_bytes() == (pathlib.Path(__file__).resolve().parents[3] / "examples/functions-seed/function_app.py").read_bytes()
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function", count=3)
        for name in ("materialize_customer_summary", "send_order_notifications", "sync_to_search_index"):
            assert f"running function {name}" in host.output()

        # The leases are in the containers the decorators name, created as asked.
        lease_containers = {container["id"] for container in database.list_containers()}
        assert {"leases", "notification-leases", "sync-leases", "CustomerSummaries"} <= lease_containers

        orders.create_item({"id": "o1", "customerId": "c1", "total": 30, "status": "pending"})
        orders.create_item({"id": "o2", "customerId": "c2", "total": 5, "status": "shipped"})
        summaries = database.get_container_client("CustomerSummaries")

        def summary(customer: str) -> dict:
            found = list(summaries.query_items("SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": f"summary-{customer}"}], enable_cross_partition_query=True))
            return found[0] if found else {}

        wait_for("both summaries", lambda: summary("c1") and summary("c2"))
        assert summary("c1")["totalSpent"] == 30
        assert summary("c1")["recentOrders"] == [{"orderId": "o1", "total": 30, "status": "pending"}]
        assert summary("c2")["recentOrders"][0]["status"] == "shipped"

        # send_order_notifications logs through `logging`: the lines reach the host's log, with the function's name.
        host.wait_for_output("Sending notification for order o2: shipped")
        notification_lines = [line for line in host.output().splitlines() if "Notification: " in line]
        assert len(notification_lines) == 1 and "send_order_notifications" in notification_lines[0]
        notification, _ = json.JSONDecoder().raw_decode(notification_lines[0].split("Notification: ", 1)[1])
        assert notification == {"customerId": "c2", "orderId": "o2", "status": "shipped", "message": "Your order o2 has been shipped and is on its way."}
        assert "Sending notification for order o1" not in host.output()

        # A status change of o1 is a new change: the summary follows, and a notification is sent.
        orders.upsert_item({"id": "o1", "customerId": "c1", "total": 30, "status": "delivered"})
        host.wait_for_output("Sending notification for order o1: delivered")
        wait_for("c1's summary to show delivered", lambda: summary("c1")["recentOrders"][0]["status"] == "delivered")

        products.create_item({"id": "p1", "category": "tools", "name": "Hammer", "description": "Steel", "price": 12.5, "tags": ["diy"], "stockCount": 3})
        products.create_item({"id": "p2", "category": "tools", "name": "Saw", "price": 20, "stockCount": 0})
        wait_for("the search receiver to get both products", lambda: sum(len(request["body"]["value"]) for request in receiver.requests) >= 2)
        request = receiver.requests[0]
        assert request["path"] == "/indexes/products/docs/index"
        assert request["api_key"] == "test-key"
        indexed = {doc["id"]: doc for request in receiver.requests for doc in request["body"]["value"]}
        assert indexed["p1"] == {"@search.action": "mergeOrUpload", "id": "p1", "name": "Hammer", "description": "Steel", "category": "tools", "price": 12.5, "tags": ["diy"], "inStock": True}
        assert indexed["p2"]["inStock"] is False
        host.wait_for_output("Search index response: 200")
    finally:
        host.stop()
    assert "skipping function" not in host.output()
