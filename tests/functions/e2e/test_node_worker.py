"""examples/functions-node: a worker in Node.js speaking the JSON-lines protocol of
docs/functions-protocol.md, defined by a tributary.toml, through `tributary functions run`.

The first test runs the example app unchanged against `tributary serve`: its two functions on one
container (a projection through an output binding, and a logger with a filter), a thrown error
dead-lettered with its stack trace, and a per-item failure retried on its own. The others talk
to worker.js directly: concurrent invocations, logs, errors, stopping, and a module that does not
load.
"""

import json
import pathlib
import subprocess
import threading
import time
from typing import List

from conftest import REPO, Server, copy_app, start_host, wait_for



def query(container, sql: str, **parameters) -> List[dict]:
    return list(container.query_items(sql, parameters=[{"name": f"@{name}", "value": value} for name, value in parameters.items()], enable_cross_partition_query=True))


def function_log_lines(output: str, function: str) -> List[str]:
    return [line for line in output.splitlines() if f'function="{function}"' in line]


def cosmos_js(app_dir: pathlib.Path, *args: str) -> List[str]:
    """The output lines of the example's `node cosmos.js ARGS`, which must succeed."""
    run = subprocess.run(["node", "cosmos.js", *args], cwd=app_dir, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_the_node_example_runs_unchanged(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    app_dir = copy_app("functions-node", tmp_path, {"CosmosDBConnection": server.connection_string})
    for name in ("worker.js", "functions.js", "tributary.toml", "cosmos.js"):
        assert (app_dir / name).read_bytes() == (REPO / "examples/functions-node" / name).read_bytes()

    # The example's own script creates the database and the monitored container (REST, no SDK).
    assert cosmos_js(app_dir, "setup") == ["created database shop", "created container shop/orders"]
    assert cosmos_js(app_dir, "setup") == ["database shop exists", "container shop/orders exists"]

    database = server.client().get_database_client("shop")
    orders = database.get_container_client("orders")
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function", count=2)
        assert "running function project_orders" in host.output()
        assert "running function log_shipped_orders" in host.output()
        # The host made the lease, view and dead-letter containers; both functions' leases share one.
        assert {"leases", "view", "deadletter"} <= {container["id"] for container in database.list_containers()}
        view = database.get_container_client("view")
        dead_letters = database.get_container_client("deadletter")

        # One customer: one partition, so feed order is write order.
        orders.create_item({"id": "o1", "customerId": "c1", "status": "pending", "total": 30, "items": [{"sku": "a", "quantity": 2}, {"sku": "b"}]})
        orders.create_item({"id": "o2", "customerId": "c1", "status": "shipped", "total": 12.5})
        wait_for("o1 and o2 in the view", lambda: len(query(view, "SELECT * FROM c WHERE c.customerId = 'c1'")) == 2)
        rows = {row["id"]: row for row in query(view, "SELECT c.id, c.customerId, c.status, c.total, c.itemCount FROM c")}
        assert rows == {
            "o1": {"id": "o1", "customerId": "c1", "status": "pending", "total": 30, "itemCount": 3},
            "o2": {"id": "o2", "customerId": "c1", "status": "shipped", "total": 12.5, "itemCount": 0},
        }

        # log_shipped_orders's context.log lines reach the host's log under its name; its filter
        # kept o1 (written before o2, so already skipped) away from it.
        host.wait_for_output("Order o2 of customer c1 shipped (total 12.5)")
        shipped_lines = function_log_lines(host.output(), "log_shipped_orders")
        assert len(shipped_lines) == 1 and " INFO " in shipped_lines[0], shipped_lines
        assert "Order o1" not in host.output()
        # console.log in a handler is a log line of its invocation too.
        assert any("Projected " in line for line in function_log_lines(host.output(), "project_orders"))

        # A thrown TypeError: retried (max_retry_count = 2), then dead-lettered with its stack.
        orders.create_item({"id": "o3", "customerId": "c2", "status": "paid", "total": "thirty"})
        wait_for("o3's dead letter", lambda: query(dead_letters, "SELECT * FROM c WHERE c.itemId = 'o3'"), timeout_s=20)
        [letter] = query(dead_letters, "SELECT * FROM c WHERE c.itemId = 'o3'")
        assert letter["function"] == "project_orders"
        assert letter["error"] == 'TypeError: order o3 has no numeric total (got "thirty")'
        assert letter["traceback"].startswith("TypeError: order o3 has no numeric total")
        assert "functions.js:" in letter["traceback"]
        assert "worker.js" not in letter["traceback"]  # the worker's own frames are cut off
        assert letter["attempts"] == 3
        assert letter["item"]["total"] == "thirty"
        assert letter["source"] == {"database": "shop", "container": "orders"}

        # A per-item failure: o5's unknown status is reported in batchItemFailures; o4, in the
        # same batch (one transactional batch, so one feed page), is projected, and only o5 is
        # retried, then dead-lettered.
        mark = len(host.output())
        orders.execute_item_batch(
            [("create", ({"id": "o4", "customerId": "c3", "status": "delivered", "total": 7},)), ("create", ({"id": "o5", "customerId": "c3", "status": "lost", "total": 9},))],
            partition_key="c3",
        )
        wait_for("o5's dead letter", lambda: query(dead_letters, "SELECT * FROM c WHERE c.itemId = 'o5'"), timeout_s=20)
        [letter] = query(dead_letters, "SELECT * FROM c WHERE c.itemId = 'o5'")
        assert letter["error"] == "the function reported these items as failed"
        assert letter["traceback"] is None
        assert letter["attempts"] == 3
        wait_for("o4 in the view", lambda: query(view, "SELECT * FROM c WHERE c.id = 'o4'"))
        assert not query(view, "SELECT * FROM c WHERE c.id IN ('o3', 'o5')")
        projecting = [line.split("function: ", 1)[1].split(" function=", 1)[0] for line in function_log_lines(host.output()[mark:], "project_orders") if "Projecting" in line]
        assert projecting == ["Projecting 2 order changes (attempt 1)", "Projecting 1 order changes (attempt 2)", "Projecting 1 order changes (attempt 3)"]
        warnings = [line for line in function_log_lines(host.output()[mark:], "project_orders") if 'unknown status "lost"' in line]
        assert len(warnings) == 3 and all(" WARN " in line for line in warnings)
        assert len(query(dead_letters, "SELECT * FROM c")) == 2

        # cosmos.js writes orders and lists containers too.
        assert cosmos_js(app_dir, "upsert", '{"id": "o6", "customerId": "c4", "status": "shipped", "total": 1}') == ["wrote order o6"]
        host.wait_for_output("Order o6 of customer c4 shipped (total 1)")
        wait_for("o6 in the view", lambda: query(view, "SELECT * FROM c WHERE c.id = 'o6'"))
        assert sorted(json.loads(line)["id"] for line in cosmos_js(app_dir, "list", "view")) == ["o1", "o2", "o4", "o6"]
    finally:
        assert host.stop() == 0
    assert "unexpected line" not in host.output() and "not JSON" not in host.output()


HANDLERS = r"""
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
exports.slow = async (documents, context) => {
  await sleep(400);
  console.log('slow done after', 400, 'ms');
  return { outputs: { out: documents.map((d) => ({ id: d.id, seen: true })), other: { id: 'single' }, unset: null } };
};
exports.fast = (documents, context) => {
  context.log('warning', `fast got ${documents.length} from ${context.lease} attempt ${context.attempt}`);
  return { outputs: { out: [] } };
};
exports.boom = async () => { await sleep(1); throw new RangeError('too far'); };
exports.raw = async () => { throw 'a string'; };
exports.partial = async (documents) => ({ batchItemFailures: documents.filter((d) => d.bad).map((d) => ({ itemIdentifier: d.id })) });
exports.nothing = async (documents, context) => { console.warn('inputs', JSON.stringify(context.inputs), JSON.stringify(context.outputs)); };
exports.bad_return = async () => 42;
exports.circular = async () => { const doc = { id: 'x' }; doc.self = doc; return { outputs: { out: doc } }; };
"""


class Worker:
    """`node worker.js handlers.js`, read line by line on a thread."""

    def __init__(self, app_dir: pathlib.Path, module: str):
        self.popen = subprocess.Popen(["node", str(REPO / "examples/functions-node/worker.js"), module], cwd=app_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: List[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(json.loads(line))

    def send(self, message: dict) -> None:
        self.popen.stdin.write(json.dumps(message) + "\n")
        self.popen.stdin.flush()

    def invoke(self, id: int, function: str, documents: List[dict], **extra) -> None:
        self.send({"type": "invoke", "id": id, "function": function, "trigger": "documents", "documents": documents, "inputs": {}, "outputs": ["out"], "context": {"lease": "-FF", "attempt": 1, "invocation_id": f"inv-{id}"}, **extra})

    def results(self) -> List[dict]:
        return [line for line in self.lines if line["type"] == "result"]

    def result(self, id: int) -> dict:
        wait_for(f"result {id}", lambda: any(line["id"] == id for line in self.results()), timeout_s=10)
        return next(line for line in self.results() if line["id"] == id)


def test_the_worker_speaks_the_protocol(tmp_path: pathlib.Path) -> None:
    (tmp_path / "handlers.js").write_text(HANDLERS)
    worker = Worker(tmp_path, "handlers.js")
    try:
        wait_for("ready", lambda: any(line["type"] == "ready" for line in worker.lines), timeout_s=10)
        assert [line for line in worker.lines if line["type"] != "log"] == [{"type": "ready", "functions": []}]
        assert all(line["id"] is None for line in worker.lines if line["type"] == "log")

        # Concurrent: the fast invocation is answered while the slow one still runs.
        started = time.monotonic()
        worker.invoke(1, "slow", [{"id": "a"}, {"id": "b"}])
        worker.invoke(2, "fast", [{"id": "c"}])
        assert worker.result(2) == {"type": "result", "id": 2, "ok": True, "outputs": {"out": []}, "failed_items": []}
        assert worker.results()[0]["id"] == 2
        assert worker.result(1) == {"type": "result", "id": 1, "ok": True, "outputs": {"out": [{"id": "a", "seen": True}, {"id": "b", "seen": True}], "other": [{"id": "single"}]}, "failed_items": []}
        assert time.monotonic() - started < 5
        logs = [line for line in worker.lines if line["type"] == "log" and line["id"] is not None]
        assert {"type": "log", "id": 2, "function": "fast", "level": "warning", "message": "fast got 1 from -FF attempt 1"} in logs
        # console.log after an await still knows its invocation.
        assert {"type": "log", "id": 1, "function": "slow", "level": "info", "message": "slow done after 400 ms"} in logs

        worker.invoke(3, "boom", [{"id": "d"}])
        boom = worker.result(3)
        assert boom["ok"] is False and boom["error"] == "RangeError: too far"
        assert boom["traceback"].startswith("RangeError: too far\n    at ") and "handlers.js" in boom["traceback"]
        worker.invoke(4, "raw", [])
        assert worker.result(4) == {"type": "result", "id": 4, "ok": False, "error": "non-Error thrown: 'a string'", "traceback": None}
        worker.invoke(5, "partial", [{"id": "e"}, {"id": "f", "bad": True}, {"id": "g", "bad": True}])
        assert worker.result(5) == {"type": "result", "id": 5, "ok": True, "outputs": {}, "failed_items": ["f", "g"]}
        worker.invoke(6, "missing", [])
        missing = worker.result(6)
        assert missing["ok"] is False and "exports no function 'missing'" in missing["error"] and "slow, fast" in missing["error"]
        worker.invoke(7, "nothing", [], inputs={"products": [{"id": "p1"}]})
        assert worker.result(7) == {"type": "result", "id": 7, "ok": True, "outputs": {}, "failed_items": []}
        assert {"type": "log", "id": 7, "function": "nothing", "level": "warning", "message": 'inputs {"products":[{"id":"p1"}]} ["out"]'} in worker.lines
        worker.invoke(8, "bad_return", [])
        bad = worker.result(8)
        assert bad["ok"] is False and bad["error"].startswith("TypeError: a handler returns nothing")
        worker.invoke(10, "circular", [])
        circular = worker.result(10)
        assert circular["ok"] is False and "cannot be sent as JSON" in circular["error"]
        worker.send({"type": "something"})
        worker.popen.stdin.write("not json\n")
        worker.popen.stdin.flush()
        wait_for("two warnings", lambda: sum(1 for line in worker.lines if line["type"] == "log" and line["level"] == "warning" and line["id"] is None) == 2, timeout_s=10)

        # Closing stdin stops it once what is in flight is answered.
        worker.invoke(9, "slow", [{"id": "h"}])
        worker.popen.stdin.close()
        assert worker.popen.wait(10) == 0
        worker.reader.join(5)
        assert worker.result(9)["ok"] is True
        assert worker.popen.stderr.read() == ""
    finally:
        if worker.popen.poll() is None:
            worker.popen.kill()
            worker.popen.wait()


def test_a_module_that_does_not_load_is_a_fatal_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "broken.js").write_text("exports.f = async () => {;\n")
    (tmp_path / "empty.js").write_text("exports.answer = 42;\n")
    for module, expected in (("broken.js", "SyntaxError"), ("empty.js", "exports no functions"), ("absent.js", "Cannot find module")):
        run = subprocess.run(["node", str(REPO / "examples/functions-node/worker.js"), module], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert run.returncode == 1
        [line] = [json.loads(line) for line in run.stdout.splitlines()]
        assert line["type"] == "fatal" and expected in line["error"] and "\n" not in line["error"], line
