"""The functions host under faults: a poison item, a SIGKILL mid-batch with outputs in the same
store (exactly once), two hosts sharing an app when one dies (at least once), a hanging function."""

import json
import os
import pathlib
import re
import urllib.request
import signal
import subprocess
from typing import List

from azure.cosmos import CosmosClient, PartitionKey, exceptions

from conftest import EMULATOR_KEY, Process, Server, copy_test_app, free_port, start_host, start_server, wait_for


def query_all(container, sql: str = "SELECT * FROM c") -> List[dict]:
    """Every document of `container`; none while the host has not created it yet (its output
    and dead-letter containers appear when the host starts, which a poll can outrun)."""
    try:
        return list(container.query_items(sql, enable_cross_partition_query=True))
    except exceptions.CosmosResourceNotFoundError:
        return []


def test_a_poison_item_is_dead_lettered_and_the_rest_processed(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("faults")
    items = database.create_container("items", PartitionKey("/pk"))
    for n in range(8):
        items.create_item({"id": f"i{n}", "pk": "p", "n": n, "poison": n == 5})
    app_dir = copy_test_app("poison", tmp_path, {"CosmosDBConnection": server.connection_string})
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log", extra=["--metrics-addr", "127.0.0.1:0"])
    try:
        host.wait_for_output("metrics: http://")
        metrics_url = re.search(r"metrics: (http://\S+)", host.output()).group(1)
        view = database.get_container_client("view")
        dead_letters = database.get_container_client("deadletter")
        wait_for("7 view documents and a dead letter", lambda: len(query_all(view)) == 7 and len(query_all(dead_letters)) == 1)
        assert sorted(doc["id"] for doc in query_all(view)) == [f"i{n}" for n in range(8) if n != 5]
        dead_letter = query_all(dead_letters)[0]
        assert dead_letter["function"] == "copy_items"
        assert dead_letter["itemId"] == "i5" and dead_letter["item"]["poison"] is True
        assert dead_letter["error"] == "ValueError: item i5 is poison"
        assert "function_app.py" in dead_letter["traceback"] and "raise ValueError" in dead_letter["traceback"]
        assert dead_letter["attempts"] == 2, "the policy's one retry, then the bisection"
        assert dead_letter["source"] == {"database": "faults", "container": "items"}
        # The lease moved on: a later item is processed.
        items.create_item({"id": "later", "pk": "p", "n": 99})
        wait_for("the later item", lambda: any(doc["id"] == "later" for doc in query_all(view)))
        metrics = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
        assert 'tributary_function_dead_lettered_total{function="copy_items"} 1' in metrics
        assert 'tributary_function_invocations_total{function="copy_items",outcome="failed"} 5' in metrics, "2 attempts, then 8 -> 4+4 -> 2+2 -> 1+1: 3 more failures"
        assert 'tributary_function_retries_total{function="copy_items"} 1' in metrics
        assert "tributary_function_invocation_duration_seconds_bucket" in metrics
        environment = dict(os.environ, TRIBUTARY_PYTHON=app_python)
        status = subprocess.run([tributary_bin, "functions", "status", str(app_dir), "--metrics-url", metrics_url], capture_output=True, text=True, env=environment, timeout=60)
        assert status.returncode == 0, status.stderr
        function_line = next(line for line in status.stdout.splitlines() if line.startswith("copy_items"))
        # 9 calls: 2 attempts, 6 in the bisection, 1 for the later item; 5 of them failed.
        assert function_line.split() == ["copy_items", "faults/items", "9", "5", "dead", "letters:", "1"], status.stdout
    finally:
        host.stop()
    environment = dict(os.environ, TRIBUTARY_PYTHON=app_python)
    listed = subprocess.run([tributary_bin, "deadletter", "list", str(app_dir)], capture_output=True, text=True, env=environment, timeout=60)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["itemId"] for line in lines] == ["i5"]
    status = subprocess.run([tributary_bin, "functions", "status", str(app_dir)], capture_output=True, text=True, env=environment, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "copy_items" in status.stdout and "dead letters: 1" in status.stdout
    # The function still fails on it: a replay keeps the dead letter and says so.
    replayed = subprocess.run([tributary_bin, "deadletter", "replay", str(app_dir)], capture_output=True, text=True, env=environment, timeout=60)
    assert replayed.returncode == 1, replayed
    assert f"dead letter {lines[0]['id']} failed again (kept): ValueError: item i5 is poison" in replayed.stdout
    assert len(query_all(dead_letters)) == 1
    purged = subprocess.run([tributary_bin, "deadletter", "purge", str(app_dir), "--function", "copy_items"], capture_output=True, text=True, env=environment, timeout=60)
    assert purged.returncode == 0, purged.stderr
    assert "purged 1 dead letters" in purged.stdout
    assert query_all(dead_letters) == []


def test_a_sigkill_mid_batch_applies_same_store_outputs_exactly_once(tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/"
    app_dir = copy_test_app("counter", tmp_path, {"CosmosDBConnection": f"AccountEndpoint={endpoint};AccountKey={EMULATOR_KEY};"})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    serve = [tributary_bin, "serve", "--http", "--addr", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    environment = dict(os.environ, TRIBUTARY_PYTHON=app_python)
    # The monitored container must exist before the app starts, as on Azure.
    setup = Process(serve, tmp_path / "setup.log", env=environment)
    setup.wait_for_output("ready in")
    client = CosmosClient(endpoint, EMULATOR_KEY)
    client.create_database("faults").create_container("events", PartitionKey("/id"))
    setup.stop()

    first = Process([*serve, "--functions", str(app_dir)], tmp_path / "first.log", env=dict(environment, HOLD_EVENT="e030"))
    first.wait_for_output("ready in")
    assert "exactly_once=true" in first.output()
    events = CosmosClient(endpoint, EMULATOR_KEY).get_database_client("faults").get_container_client("events")
    written: List[str] = []
    for n in range(60):
        events.create_item({"id": f"e{n:03}"})
        written.append(f"e{n:03}")
    counts = CosmosClient(endpoint, EMULATOR_KEY).get_database_client("faults").get_container_client("counts")

    def n_counted() -> int:
        try:
            return len(counts.read_item("total", "total")["ids"])
        except exceptions.CosmosResourceNotFoundError:
            return 0

    # Kill it while the batch with e030 is in the function.
    first.wait_for_output("e030")
    counted_before_kill = n_counted()
    first.stop(signal.SIGKILL)
    assert 0 < counted_before_kill < 60

    second = Process([*serve, "--functions", str(app_dir)], tmp_path / "second.log", env=environment)
    try:
        second.wait_for_output("ready in")
        client = CosmosClient(endpoint, EMULATOR_KEY)
        counts = client.get_database_client("faults").get_container_client("counts")
        events = client.get_database_client("faults").get_container_client("events")
        for n in range(60, 80):
            events.create_item({"id": f"e{n:03}"})
            written.append(f"e{n:03}")
        wait_for("every event counted", lambda: n_counted() >= len(written))
        ids = counts.read_item("total", "total")["ids"]
        assert len(ids) == len(set(ids)), f"an event was counted twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
        assert sorted(ids) == written
        # The batch in hand at the kill was run again, and its output applied once.
        second.wait_for_output("e030")
    finally:
        second.stop()


def test_two_hosts_share_an_app_and_the_survivor_takes_over(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    client = server.client()
    database = client.create_database("faults")
    # 40,000 RU/s: four feed ranges, so four leases to share.
    items = database.create_container("items", PartitionKey("/pk"), offer_throughput=40000)
    app_dir = copy_test_app("shared", tmp_path, {"CosmosDBConnection": server.connection_string})
    first = start_host(tributary_bin, app_python, app_dir, tmp_path / "a.log", extra=["--instance", "a"], env={"HOST_LABEL": "a"})
    second = start_host(tributary_bin, app_python, app_dir, tmp_path / "b.log", extra=["--instance", "b"], env={"HOST_LABEL": "b"})
    view = database.get_container_client("view")
    try:
        first.wait_for_output("running function")
        second.wait_for_output("running function")
        # The first host can hold all four leases before the second starts; writing
        # before the second has taken its share would let one host do all the work.
        leases = database.get_container_client("leases")
        wait_for("both hosts to own leases", lambda: len({doc.get("Owner") for doc in query_all(leases) if doc.get("LeaseToken") is not None and doc.get("Owner")}) == 2)
        for n in range(100):
            items.create_item({"id": f"i{n}", "pk": f"k{n}"})
        wait_for("100 view documents", lambda: len(query_all(view)) == 100)
        hosts = {doc["host"] for doc in query_all(view)}
        assert hosts == {"a", "b"}, f"both hosts work: {hosts}"
        first.stop(signal.SIGKILL)
        for n in range(100, 200):
            items.create_item({"id": f"i{n}", "pk": f"k{n}"})
        wait_for("200 view documents", lambda: len(query_all(view)) == 200)
        late = [doc for doc in query_all(view) if int(doc["id"][1:]) >= 100]
        assert {doc["host"] for doc in late} == {"b"}, "the survivor took every lease"
    finally:
        first.stop()
        second.stop()


def test_a_hanging_function_is_stopped_and_the_worker_replaced(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    database = server.client().create_database("faults")
    items = database.create_container("items", PartitionKey("/pk"))
    items.create_item({"id": "stuck", "pk": "p", "hang": True})
    app_dir = copy_test_app("hang", tmp_path, {"CosmosDBConnection": server.connection_string})
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function")
        dead_letters = database.get_container_client("deadletter")
        wait_for("the dead letter", lambda: len(query_all(dead_letters)) == 1)
        dead_letter = query_all(dead_letters)[0]
        assert dead_letter["itemId"] == "stuck" and dead_letter["timedOut"] is True
        assert "timeout of 1500 ms" in dead_letter["error"]
        # A replacement worker runs the next change.
        items.create_item({"id": "fine", "pk": "p"})
        view = database.get_container_client("view")
        wait_for("the next item", lambda: [doc["id"] for doc in query_all(view)] == ["fine"])
    finally:
        host.stop()


def test_a_sigkilled_host_process_applies_outputs_exactly_once_through_the_server(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    """A host in its own process commits outputs with the checkpoint through the server's
    transaction extension: the same guarantee as inside the server."""
    client = server.client()
    database = client.create_database("faults")
    events = database.create_container("events", PartitionKey("/id"))
    app_dir = copy_test_app("counter", tmp_path, {"CosmosDBConnection": server.connection_string})
    first = start_host(tributary_bin, app_python, app_dir, tmp_path / "first.log", env={"HOLD_EVENT": "e030"})
    first.wait_for_output("running function")
    assert "exactly_once=true" in first.output()
    written = [f"e{n:03}" for n in range(60)]
    for event_id in written:
        events.create_item({"id": event_id})
    counts = database.get_container_client("counts")

    def counted() -> List[str]:
        try:
            return counts.read_item("total", "total")["ids"]
        except exceptions.CosmosResourceNotFoundError:
            return []

    first.wait_for_output("e030")
    first.stop(signal.SIGKILL)
    assert 0 < len(counted()) < 60
    second = start_host(tributary_bin, app_python, app_dir, tmp_path / "second.log")
    try:
        wait_for("every event counted", lambda: len(counted()) >= len(written))
        second.wait_for_output("e030")
        ids = counted()
        assert len(ids) == len(set(ids)), "an event was counted twice"
        assert sorted(ids) == written
    finally:
        second.stop()
