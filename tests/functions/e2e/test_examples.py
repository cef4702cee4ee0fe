"""The function apps in examples/functions-*/, each run as is through `tributary functions run`
against `tributary serve`, with data written by the official Python SDK:

* functions-incremental-view: per-customer totals exact after updates, and unchanged when the
  whole feed is delivered again (leases reset to the beginning);
* functions-event-sourcing: append.py's optimistic concurrency (409 on a taken version) and the
  projections, unchanged by redelivery;
* functions-replication: documents copied to a second server (deletes not), and caught up after
  the target was down;
* functions-saga: stock reserved or the order rejected, with exact stock numbers, and the order
  updates the step writes skipped by the tributary.toml filter.
"""

import importlib
import pathlib
import re
import subprocess
import sys
import urllib.request
from typing import Dict, List

from azure.cosmos import CosmosClient, PartitionKey

from conftest import EMULATOR_KEY, Process, Server, copy_app, free_port, start_host, wait_for

SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")


def query_all(container, sql: str = "SELECT * FROM c") -> List[dict]:
    return list(container.query_items(sql, enable_cross_partition_query=True))


def by_id(container) -> Dict[str, dict]:
    return {doc["id"]: doc for doc in query_all(container)}


def without_system_properties(document: dict) -> dict:
    return {key: value for key, value in document.items() if key not in SYSTEM_PROPERTIES}


def reset_leases_to_beginning(tributary_bin: str, server: Server, database: str, container: str, processor: str) -> None:
    """`tributary leases reset --to-beginning`: the processor gets the whole feed again."""
    reset = subprocess.run(
        [tributary_bin, "leases", "reset", "--connection-string", server.connection_string, "--database", database, "--container", container, "--processor", processor, "--to-beginning"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0, reset.stdout + reset.stderr


def logged_counts(host: Process, pattern: str) -> List[tuple]:
    """Every match of `pattern` (with integer groups) in the host's log."""
    return [tuple(int(group) for group in match.groups()) for match in re.finditer(pattern, host.output())]


def test_the_incremental_view_stays_exact_under_updates_and_redelivery(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("ShopDB")
    orders = database.create_container("Orders", PartitionKey("/customerId"))
    app_dir = copy_app("functions-incremental-view", tmp_path, {"CosmosDBConnection": server.connection_string})
    totals = database.get_container_client("CustomerTotals")
    pattern = r"(\d+) order changes: (\d+) applied, (\d+) already in the view"

    def view(customer: str) -> dict:
        return by_id(totals).get(customer, {})

    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function update_customer_totals")
        orders.create_item({"id": "o1", "customerId": "c1", "total": 30, "status": "placed"})
        orders.create_item({"id": "o2", "customerId": "c1", "total": 20, "status": "placed"})
        orders.create_item({"id": "o3", "customerId": "c2", "total": 5, "status": "placed"})
        wait_for("both customers' totals", lambda: view("c1").get("total") == 50 and view("c2").get("total") == 5)
        assert view("c1")["orderCount"] == 2

        # An update replaces the order's contribution (30 → 40), it is not added to it.
        orders.upsert_item({"id": "o1", "customerId": "c1", "total": 40, "status": "placed"})
        # A cancelled order stops counting.
        orders.upsert_item({"id": "o3", "customerId": "c2", "total": 5, "status": "cancelled"})
        wait_for("the update and the cancellation", lambda: view("c1").get("total") == 60 and view("c2").get("orderCount") == 0)
        assert view("c2")["total"] == 0
        assert {order_id: entry["total"] for order_id, entry in view("c1")["orders"].items()} == {"o1": 40, "o2": 20}
        assert view("c2")["orders"]["o3"]["status"] == "cancelled"
        before = by_id(totals)
    finally:
        host.stop()

    # The whole feed again: every order's latest version is delivered a second time.
    reset_leases_to_beginning(tributary_bin, server, "ShopDB", "Orders", "update_customer_totals")
    again = start_host(tributary_bin, app_python, app_dir, tmp_path / "again.log")
    try:
        again.wait_for_output("running function update_customer_totals")
        wait_for("the three orders delivered again", lambda: sum(changes for changes, _, _ in logged_counts(again, pattern)) >= 3)
        assert sum(applied for _, applied, _ in logged_counts(again, pattern)) == 0
        # Nothing was written: the documents still have their etags.
        assert by_id(totals) == before

        # And the view goes on from there.
        orders.upsert_item({"id": "o2", "customerId": "c1", "total": 25, "status": "shipped"})
        wait_for("o2's new total", lambda: view("c1").get("total") == 65)
        assert view("c1")["orderCount"] == 2 and view("c2")["total"] == 0
    finally:
        again.stop()
    assert "invocation failed" not in host.output() + again.output()


def run_append(app_dir: pathlib.Path, *arguments: str) -> subprocess.CompletedProcess:
    """`python append.py ...` in the app directory, as its README runs it."""
    return subprocess.run([sys.executable, "append.py", *arguments], cwd=app_dir, capture_output=True, text=True, timeout=60)


def import_from(app_dir: pathlib.Path, name: str):
    """Imports the app's module `name` (with the app directory on sys.path, as the worker has it)."""
    sys.path.insert(0, str(app_dir))
    try:
        for module in (name, "account"):
            sys.modules.pop(module, None)
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(app_dir))


def test_event_sourcing_appends_with_optimistic_concurrency_and_projects_once(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("EventsDB")
    events = database.create_container("events", PartitionKey("/streamId"))
    app_dir = copy_app("functions-event-sourcing", tmp_path, {"CosmosDBConnection": server.connection_string})
    projections = database.get_container_client("projections")
    pattern = r"(\d+) events: (\d+) applied, (\d+) already projected"

    def projection(stream: str) -> dict:
        return without_system_properties(by_id(projections).get(stream, {}))

    # Appended before the function runs: the trigger starts from the beginning.
    for arguments in (("open", "acct-1", "Ada"), ("deposit", "acct-1", "100")):
        appended = run_append(app_dir, *arguments)
        assert appended.returncode == 0, appended.stderr
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function project_accounts")
        wait_for("acct-1 at version 2", lambda: projection("acct-1").get("version") == 2)
        assert projection("acct-1") == {"id": "acct-1", "streamId": "acct-1", "version": 2, "owner": "Ada", "balance": 100, "status": "open"}

        # Two writers on version 2: A appends version 3, B gets 409 and appends version 4.
        raced = run_append(app_dir, "race", "acct-1")
        assert raced.returncode == 0, raced.stderr
        assert "writer A appended version 3" in raced.stdout
        assert "writer B: 409 Conflict: acct-1 version 3 was appended by another writer" in raced.stdout
        assert "writer B appended version 4" in raced.stdout
        append = import_from(app_dir, "append")
        try:
            append.append(events, "acct-1", 3, "MoneyDeposited", {"amount": 1000})
            raise AssertionError("version 4 was appended twice")
        except append.ConcurrencyError:
            pass
        refused = run_append(app_dir, "withdraw", "acct-1", "500")
        assert refused.returncode != 0 and "refused: acct-1 has 103, cannot withdraw 500" in refused.stderr
        assert [event["version"] for event in append.read_stream(events, "acct-1")] == [1, 2, 3, 4]
        wait_for("acct-1 at version 4", lambda: projection("acct-1").get("version") == 4)
        assert projection("acct-1")["balance"] == 103

        for arguments in (("open", "acct-2", "Bob"), ("deposit", "acct-2", "10"), ("withdraw", "acct-2", "10"), ("close", "acct-2")):
            appended = run_append(app_dir, *arguments)
            assert appended.returncode == 0, appended.stderr
        wait_for("acct-2 closed", lambda: projection("acct-2").get("status") == "closed")
        assert projection("acct-2") == {"id": "acct-2", "streamId": "acct-2", "version": 4, "owner": "Bob", "balance": 0, "status": "closed"}
        shown = run_append(app_dir, "show", "acct-1")
        assert shown.returncode == 0, shown.stderr
        assert '"version": 4, "owner": "Ada", "balance": 103' in shown.stdout
        before = by_id(projections)
    finally:
        host.stop()

    # Every event delivered again: all skipped, nothing written.
    reset_leases_to_beginning(tributary_bin, server, "EventsDB", "events", "project_accounts")
    again = start_host(tributary_bin, app_python, app_dir, tmp_path / "again.log")
    try:
        again.wait_for_output("running function project_accounts")
        wait_for("the 8 events delivered again", lambda: sum(n for n, _, _ in logged_counts(again, pattern)) >= 8)
        assert sum(applied for _, applied, _ in logged_counts(again, pattern)) == 0
        assert by_id(projections) == before
        appended = run_append(app_dir, "deposit", "acct-1", "7")
        assert appended.returncode == 0, appended.stderr
        wait_for("acct-1 at version 5", lambda: projection("acct-1").get("version") == 5)
        assert projection("acct-1")["balance"] == 110
    finally:
        again.stop()
    assert "invocation failed" not in host.output() + again.output()
    assert "; not applied" not in host.output() + again.output()


def serve_on_port(tributary_bin: str, directory: pathlib.Path, name: str, port: int, log_name: str) -> Process:
    """A `tributary serve` on a given port and data directory (started again on the same ones after a stop)."""
    data_dir = directory / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    process = Process(
        [tributary_bin, "serve", "--http", "--addr", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--durability", "relaxed"],
        directory / log_name,
    )
    process.wait_for_output("ready in")
    return process


def test_replication_copies_every_change_to_a_second_server(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    port = free_port()
    target = serve_on_port(tributary_bin, tmp_path, "target", port, "target.log")
    target_endpoint = f"http://127.0.0.1:{port}/"
    host = None
    try:
        source_database = server.client().create_database("CatalogDB")
        products = source_database.create_container("Products", PartitionKey("/category"))
        # Already there when the function starts: copied too (start_from_beginning).
        products.create_item({"id": "p1", "category": "tools", "name": "Hammer", "price": 12.5})
        app_dir = copy_app("functions-replication", tmp_path, {"CosmosDBConnection": server.connection_string, "TargetConnection": f"AccountEndpoint={target_endpoint};AccountKey={EMULATOR_KEY};"})
        host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
        host.wait_for_output("running function replicate_products")
        target_database = CosmosClient(target_endpoint, EMULATOR_KEY).get_database_client("CatalogDB")
        replicas = target_database.get_container_client("Products")

        def replicated() -> Dict[str, dict]:
            return {doc_id: without_system_properties(doc) for doc_id, doc in by_id(replicas).items()}

        def source() -> Dict[str, dict]:
            return {doc_id: without_system_properties(doc) for doc_id, doc in by_id(products).items()}

        wait_for("p1 on the target", lambda: "p1" in replicated())
        products.create_item({"id": "p2", "category": "garden", "name": "Rake", "price": 20, "tags": ["outdoor"]})
        products.upsert_item({"id": "p1", "category": "tools", "name": "Hammer", "price": 14})
        products.create_item({"id": "p3", "category": "tools", "name": "Saw", "price": 30, "dimensions": {"length": 60}})
        wait_for("the target to equal the source", lambda: replicated() == source())
        assert replicated()["p1"]["price"] == 14 and replicated()["p3"]["dimensions"] == {"length": 60}
        # The output binding created the target container with the source's partition key; the
        # leases are on the source.
        assert replicas.read()["partitionKey"]["paths"] == ["/category"]
        assert {container["id"] for container in target_database.list_containers()} == {"Products"}
        assert "leases" in {container["id"] for container in source_database.list_containers()}

        # A delete is not in the change feed: the target keeps p2.
        products.delete_item("p2", partition_key="garden")
        products.create_item({"id": "p4", "category": "garden", "name": "Hose", "price": 25})
        wait_for("p4 on the target", lambda: "p4" in replicated())
        assert set(replicated()) == {"p1", "p2", "p3", "p4"} and set(source()) == {"p1", "p3", "p4"}

        # The target goes away: the write fails, the batch is not checkpointed and is retried
        # (with back-off) until the target is back.
        target.stop()
        products.create_item({"id": "p5", "category": "tools", "name": "Drill", "price": 80})
        host.wait_for_output("the handler failed")
        target = serve_on_port(tributary_bin, tmp_path, "target", port, "target-again.log")
        wait_for("p5 on the target", lambda: "p5" in replicated())
        assert replicated()["p5"] == source()["p5"]
    finally:
        if host is not None:
            host.stop()
        target.stop()
    assert "dead-lettered" not in host.output()


def metric(address: str, name: str, function: str) -> float:
    """A counter of the host's Prometheus endpoint (0 before it is first counted)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf'^{name}{{function="{function}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_saga_step_reserves_stock_or_rejects_the_order(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("SagaDB")
    orders = database.create_container("orders", PartitionKey("/customerId"))
    inventory = database.create_container("inventory", PartitionKey("/id"))
    inventory.create_item({"id": "sku-1", "stock": 5, "reservations": {}})
    inventory.create_item({"id": "sku-2", "stock": 1, "reservations": {}})
    app_dir = copy_app("functions-saga", tmp_path, {"CosmosDBConnection": server.connection_string})
    pattern = r"(\d+) placed orders: (\d+) reserved, (\d+) rejected"

    def order(order_id: str) -> dict:
        return by_id(orders).get(order_id, {})

    def stock() -> Dict[str, tuple]:
        return {sku: (item["stock"], item["reservations"]) for sku, item in by_id(inventory).items()}

    def place(order_id: str, customer: str, sku: str, quantity) -> None:
        orders.create_item({"id": order_id, "customerId": customer, "sku": sku, "quantity": quantity, "status": "placed"})

    metrics_address = f"127.0.0.1:{free_port()}"
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log", extra=["--metrics-addr", metrics_address])
    try:
        host.wait_for_output("running function reserve_inventory")
        place("o1", "c1", "sku-1", 3)
        wait_for("o1 reserved", lambda: order("o1").get("status") == "reserved")
        assert stock() == {"sku-1": (2, {"o1": 3}), "sku-2": (1, {})}

        # 3 more of sku-1 than the 2 left: compensated, the stock untouched.
        place("o2", "c2", "sku-1", 3)
        wait_for("o2 rejected", lambda: order("o2").get("status") == "rejected")
        assert order("o2")["reason"] == "insufficient stock: 2 of sku-1 left, 3 ordered"
        assert stock()["sku-1"] == (2, {"o1": 3})

        place("o3", "c1", "sku-2", 1)
        place("o4", "c3", "sku-1", 2)
        place("o5", "c3", "sku-9", 1)
        place("o6", "c4", "sku-2", 0)
        wait_for("o3 to o6 decided", lambda: all(order(order_id).get("status") in ("reserved", "rejected") for order_id in ("o3", "o4", "o5", "o6")))
        assert [order(order_id)["status"] for order_id in ("o3", "o4", "o5", "o6")] == ["reserved", "reserved", "rejected", "rejected"]
        assert order("o5")["reason"] == "unknown sku 'sku-9'"
        assert order("o6")["reason"] == "quantity 0 is not a positive whole number"
        place("o7", "c4", "sku-1", 1)
        wait_for("o7 rejected", lambda: order("o7").get("status") == "rejected")
        assert stock() == {"sku-1": (0, {"o1": 3, "o4": 2}), "sku-2": (0, {"o3": 1})}

        # The placed version of o4 again (as a redelivery would hand it over): it finds its
        # reservation, and the stock is not decremented twice.
        orders.upsert_item({"id": "o4", "customerId": "c3", "sku": "sku-1", "quantity": 2, "status": "placed"})
        # The step's own order updates (the last o4's, written after the inventory) come back on
        # the feed: the filter skips them, so the function is handed the 8 placed versions only
        # and never sees an order that is not placed.
        wait_for("the 8 placed versions handed over", lambda: metric(metrics_address, "tributary_function_changes_total", "reserve_inventory") == 8)
        wait_for("o4 reserved again", lambda: order("o4")["status"] == "reserved")
        assert stock() == {"sku-1": (0, {"o1": 3, "o4": 2}), "sku-2": (0, {"o3": 1})}
        assert "orders that are not placed" not in host.output()
        assert sum(n for n, _, _ in logged_counts(host, pattern)) == 8
    finally:
        host.stop()
    assert "invocation failed" not in host.output()
