"""Tests of the Python functions worker, crates/functions/python/tributary_functions_worker.py.

Each test starts the worker as the functions host does (`PYTHON worker.py APP_DIR`, in APP_DIR)
with an app and asserts on the exact JSON lines of docs/functions-protocol.md. PYTHON is
TRIBUTARY_FUNCTIONS_PYTHON (default: the interpreter running pytest); it needs the packages of
requirements-py311.txt or requirements-py313.txt. examples/functions-seed/function_app.py is the
seed app, verbatim; apps/features/function_app.py covers what the seed does not.
"""

import datetime
import http.server
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

PYTHON = os.environ.get("TRIBUTARY_FUNCTIONS_PYTHON", sys.executable)
HERE = Path(__file__).resolve().parent
WORKER = HERE.parents[2] / "crates" / "functions" / "python" / "tributary_functions_worker.py"
APPS = HERE / "apps"
SEED = HERE.parents[2] / "examples" / "functions-seed"
FEATURES = APPS / "features"
LINE_TIMEOUT_S = 20
EXIT_TIMEOUT_S = 10


class Worker:
    """A worker process; its stdout lines are parsed as they come, so a non-JSON line fails."""

    def __init__(self, app_dir, env=None, python_flags=()):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}
        environment.update({"PYTHONDONTWRITEBYTECODE": "1", **(env or {})})
        self.process = subprocess.Popen(
            [PYTHON, *python_flags, str(WORKER), str(app_dir)],
            cwd=app_dir, env=environment,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.stderr_lines = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.stderr_reader = threading.Thread(
            target=lambda: self.stderr_lines.extend(self.process.stderr), daemon=True)
        self.stderr_reader.start()

    def _read_stdout(self):
        for raw in self.process.stdout:
            self.lines.put(raw)
        self.lines.put(None)

    def next_line(self):
        raw = self.lines.get(timeout=LINE_TIMEOUT_S)
        assert raw is not None, f"the worker closed stdout; stderr: {self.stderr()!r}"
        return json.loads(raw)

    def send_raw(self, text):
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def invoke(self, request_id, function, documents, **fields):
        self.send_raw(json.dumps({
            "type": "invoke", "id": request_id, "function": function, "trigger": "documents",
            "documents": documents, "inputs": {}, "outputs": [],
            "context": {"lease": "-FF", "attempt": 1, "invocation_id": f"inv-{request_id}"},
            **fields,
        }))

    def read_until_results(self, *request_ids):
        """Every line up to and including the results of these invocations."""
        lines, unanswered = [], set(request_ids)
        while unanswered:
            lines.append(self.next_line())
            if lines[-1]["type"] == "result":
                unanswered.discard(lines[-1]["id"])
        return lines

    def stderr(self):
        return b"".join(self.stderr_lines)

    def close(self):
        """Closes stdin; returns the lines written until stdout closed, and the exit code."""
        self.process.stdin.close()
        lines = []
        while (raw := self.lines.get(timeout=LINE_TIMEOUT_S)) is not None:
            lines.append(json.loads(raw))
        exit_code = self.process.wait(timeout=EXIT_TIMEOUT_S)
        self.stderr_reader.join(timeout=EXIT_TIMEOUT_S)
        return lines, exit_code


@pytest.fixture
def start_worker():
    workers = []

    def start(app_dir, **kwargs):
        workers.append(Worker(app_dir, **kwargs))
        return workers[-1]

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture(scope="session")
def worker_executable():
    """sys.executable as the worker sees it, which its messages name."""
    command = [PYTHON, "-c", "import sys; print(sys.executable)"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def line_of(path, text):
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1)
                if text in line)


def log(request_id, function, level, message):
    return {"type": "log", "id": request_id, "function": function, "level": level,
            "message": message}


def logs_of(lines, request_id):
    return [line for line in lines if line["type"] == "log" and line["id"] == request_id]


def result_of(lines, request_id):
    return next(line for line in lines if line["type"] == "result" and line["id"] == request_id)


def ok(request_id, outputs=None, failed_items=None):
    return {"type": "result", "id": request_id, "ok": True, "outputs": outputs or {},
            "failed_items": failed_items or []}


AUTH_LEVEL_WARNING = "Auth level is not applied to non http function app."

SEED_TRIGGER = {"direction": "IN", "type": "cosmosDBTrigger", "name": "documents",
                "connection": "CosmosDBConnection", "databaseName": "ECommerceDB",
                "createLeaseContainerIfNotExists": True}
SEED_FUNCTIONS = [
    {"name": "materialize_customer_summary",
     "bindings": [{"direction": "OUT", "type": "cosmosDB", "name": "outputDoc",
                   "connection": "CosmosDBConnection", "databaseName": "ECommerceDB",
                   "containerName": "CustomerSummaries", "createIfNotExists": True},
                  {**SEED_TRIGGER, "containerName": "Orders", "leaseContainerName": "leases"}],
     "retry": None, "is_async": False},
    {"name": "send_order_notifications",
     "bindings": [{**SEED_TRIGGER, "containerName": "Orders",
                   "leaseContainerName": "notification-leases"}],
     "retry": None, "is_async": False},
    {"name": "sync_to_search_index",
     "bindings": [{**SEED_TRIGGER, "containerName": "Products", "leaseContainerName": "sync-leases",
                   "maxItemsPerInvocation": 100, "startFromBeginning": False}],
     "retry": None, "is_async": False},
]


def test_seed_ready_lists_every_function_with_its_bindings_then_the_import_logs(start_worker):
    worker = start_worker(SEED)
    assert worker.next_line() == {"type": "ready", "functions": SEED_FUNCTIONS}
    import_log = worker.next_line()
    assert import_log["message"].startswith(AUTH_LEVEL_WARNING)
    assert import_log == log(None, None, "warning", import_log["message"])
    assert worker.close() == ([], 0)


def without_timestamps(result):
    """The result's summaries, after checking and removing their `lastUpdated` timestamps."""
    for summary in result["outputs"]["outputDoc"]:
        datetime.datetime.fromisoformat(summary.pop("lastUpdated"))
    return result


def test_seed_summary_of_one_customer_is_sent_as_a_list_of_one(start_worker):
    worker = start_worker(SEED)
    worker.invoke(1, "materialize_customer_summary",
                  [{"id": "o1", "customerId": "c1", "total": 10, "status": "shipped"},
                   {"id": "o2", "customerId": "c1", "total": 5, "_ts": 1764670000}],
                  outputs=["outputDoc"])
    lines = worker.read_until_results(1)
    assert without_timestamps(result_of(lines, 1)) == ok(1, {"outputDoc": [
        {"id": "summary-c1", "customerId": "c1", "totalSpent": 15,
         "recentOrders": [{"orderId": "o1", "total": 10, "status": "shipped"},
                          {"orderId": "o2", "total": 5, "status": "unknown"}]}]})
    assert logs_of(lines, 1) == [
        log(1, "materialize_customer_summary", "info", "Processing 2 order changes"),
        log(1, "materialize_customer_summary", "info", "Updated summaries for 1 customers"),
    ]


def test_seed_summaries_of_two_customers_are_sent_in_order(start_worker):
    worker = start_worker(SEED)
    worker.invoke(1, "materialize_customer_summary",
                  [{"id": "o1", "customerId": "c1", "total": 10},
                   {"id": "o2", "customerId": "c2", "total": 7, "status": "paid"}],
                  outputs=["outputDoc"])
    lines = worker.read_until_results(1)
    assert without_timestamps(result_of(lines, 1)) == ok(1, {"outputDoc": [
        {"id": "summary-c1", "customerId": "c1", "totalSpent": 10,
         "recentOrders": [{"orderId": "o1", "total": 10, "status": "unknown"}]},
        {"id": "summary-c2", "customerId": "c2", "totalSpent": 7,
         "recentOrders": [{"orderId": "o2", "total": 7, "status": "paid"}]}]})
    assert logs_of(lines, 1)[-1]["message"] == "Updated summaries for 2 customers"


def test_seed_function_that_raises_answers_with_the_error_and_its_traceback(start_worker):
    worker = start_worker(SEED)
    worker.invoke(3, "materialize_customer_summary", [{"customerId": "c1"}], outputs=["outputDoc"])
    result = result_of(worker.read_until_results(3), 3)
    traceback = result.pop("traceback")
    assert result == {"type": "result", "id": 3, "ok": False, "error": "KeyError: 'id'"}
    script = SEED / "function_app.py"
    line = line_of(script, '"orderId": order["id"]')
    assert traceback.startswith(
        "Traceback (most recent call last):\n"
        f'  File "{script}", line {line}, in materialize_customer_summary\n')
    assert traceback.endswith("KeyError: 'id'\n")


def test_seed_notifications_are_logged_for_shipped_orders_only(start_worker):
    worker = start_worker(SEED)
    worker.invoke(1, "send_order_notifications",
                  [{"id": "o1", "customerId": "c1", "status": "shipped"},
                   {"id": "o2", "customerId": "c1", "status": "pending"}])
    lines = worker.read_until_results(1)
    notification = {"customerId": "c1", "orderId": "o1", "status": "shipped",
                    "message": "Your order o1 has been shipped and is on its way."}
    assert logs_of(lines, 1) == [
        log(1, "send_order_notifications", "info", "Sending notification for order o1: shipped"),
        log(1, "send_order_notifications", "info", f"Notification: {json.dumps(notification)}"),
    ]
    assert result_of(lines, 1) == ok(1)


def test_seed_search_sync_without_an_endpoint_warns_and_succeeds(start_worker):
    worker = start_worker(SEED)
    worker.invoke(1, "sync_to_search_index", [{"id": "p1", "name": "Pen"}])
    lines = worker.read_until_results(1)
    assert logs_of(lines, 1) == [
        log(1, "sync_to_search_index", "info", "Syncing 1 product changes to search index"),
        log(1, "sync_to_search_index", "warning", "SEARCH_ENDPOINT not configured, skipping sync"),
    ]
    assert result_of(lines, 1) == ok(1)


class SearchIndex(http.server.BaseHTTPRequestHandler):
    """A search service on loopback that records what it is sent."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((self.path, self.headers["api-key"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_seed_search_sync_posts_the_products_to_the_configured_endpoint(start_worker):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SearchIndex)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        worker = start_worker(SEED, env={"SEARCH_ENDPOINT": endpoint, "SEARCH_API_KEY": "key-1",
                                         "NO_PROXY": "127.0.0.1"})
        worker.invoke(1, "sync_to_search_index",
                      [{"id": "p1", "name": "Pen", "price": 2, "stockCount": 0}])
        lines = worker.read_until_results(1)
    finally:
        server.shutdown()
    assert server.received == [("/indexes/products/docs/index", "key-1", {"value": [
        {"@search.action": "mergeOrUpload", "id": "p1", "name": "Pen", "description": "",
         "category": "", "price": 2, "tags": [], "inStock": False}]})]
    assert logs_of(lines, 1)[-1] == log(1, "sync_to_search_index", "info",
                                        "Search index response: 200")
    assert result_of(lines, 1) == ok(1)


def test_ready_describes_async_functions_retry_policies_inputs_and_blueprints(start_worker):
    worker = start_worker(FEATURES)
    ready = worker.next_line()
    functions = {function["name"]: function for function in ready["functions"]}
    assert list(functions) == ["enrich_orders", "wait_for_partner", "wait_for_partner_async",
                               "log_and_print", "set_output", "validate_orders"]
    cosmos = {"connection": "CosmosDBConnection", "databaseName": "Shop"}
    assert functions["enrich_orders"] == {
        "name": "enrich_orders",
        "bindings": [
            {"direction": "OUT", "type": "cosmosDB", "name": "enriched",
             "containerName": "EnrichedOrders", **cosmos},
            {"direction": "IN", "type": "cosmosDB", "name": "products",
             "containerName": "Products", "sqlQuery": "SELECT * FROM p", **cosmos},
            {"direction": "IN", "type": "cosmosDBTrigger", "name": "orders",
             "containerName": "Orders", "leaseContainerName": "enrich-leases",
             "maxItemsPerInvocation": 10, **cosmos},
        ],
        "retry": {"strategy": "fixed_delay", "max_retry_count": "2",
                  "delay_interval": "00:00:01"},
        "is_async": True,
    }
    assert [f["is_async"] for f in functions.values()] == [True, False, True, False, False, False]
    assert functions["validate_orders"]["bindings"][0]["leaseContainerName"] == "validate-leases"
    assert worker.next_line() == log(None, None, "info", "function_app.py imported")


def test_async_function_gets_its_inputs_and_context_and_sets_a_document_list(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(7, "enrich_orders",
                  [{"id": "o1", "productId": "p2"}, {"id": "o2", "productId": "p1"}],
                  trigger="orders", inputs={"products": [{"id": "p1", "name": "Pen"},
                                                         {"id": "p2", "name": "Ink"}]},
                  outputs=["enriched"])
    lines = worker.read_until_results(7)
    assert logs_of(lines, 7) == [
        log(7, "enrich_orders", "info", f"context inv-7 enrich_orders {FEATURES}")]
    assert result_of(lines, 7) == ok(7, {"enriched": [{"id": "o1", "product": "Ink"},
                                                      {"id": "o2", "product": "Pen"}]})


@pytest.mark.parametrize("shape, documents", [
    ("dict", [{"id": "d1"}]),
    ("json_object", [{"id": "j1"}]),
    ("json_array", [{"id": "j1"}, {"id": "j2"}]),
    ("list_of_mixed", [{"id": "m1"}, {"id": "m2"}, {"id": "m3"}]),
])
def test_output_values_are_sent_as_lists_of_documents(start_worker, shape, documents):
    worker = start_worker(FEATURES)
    worker.invoke(1, "set_output", [{"shape": shape}], outputs=["out"])
    assert result_of(worker.read_until_results(1), 1) == ok(1, {"out": documents})


def test_an_output_left_unset_is_omitted(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(1, "set_output", [{"shape": "unset"}], outputs=["out"])
    assert result_of(worker.read_until_results(1), 1) == ok(1)


@pytest.mark.parametrize("shape, error", [
    ("number", "TypeError: output binding 'out' was set to a value of type int; set a "
               "func.Document, a dict, a JSON string, or a list of them"),
    ("not_json", "ValueError: output binding 'out' was set to a string that is not JSON "
                 "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("datetime", "TypeError: the output documents are not JSON: "
                 "Object of type datetime is not JSON serializable"),
])
def test_output_values_that_are_not_documents_fail_the_invocation(start_worker, shape, error):
    worker = start_worker(FEATURES)
    worker.invoke(1, "set_output", [{"shape": shape}], outputs=["out"])
    result = result_of(worker.read_until_results(1), 1)
    assert (result["ok"], result["error"]) == (False, error)
    assert result["traceback"].endswith(f"{error}\n")


def test_returned_batch_item_failures_are_sent_as_failed_items(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(1, "validate_orders",
                  [{"id": "o1", "total": 3}, {"id": "o2"}, {"id": "o3", "total": 0}, {"id": "o4"}])
    assert result_of(worker.read_until_results(1), 1) == ok(1, failed_items=["o2", "o4"])


@pytest.mark.parametrize("function", ["wait_for_partner", "wait_for_partner_async"])
def test_invocations_run_concurrently_and_each_log_line_names_its_invocation(
        start_worker, function):
    worker = start_worker(FEATURES)
    # Run one after another, the first would wait its 10 s for the second and fail.
    worker.invoke(1, function, [{"role": "first", "wait_s": 10}])
    worker.invoke(2, function, [{"role": "second"}])
    lines = worker.read_until_results(1, 2)
    assert logs_of(lines, 1) == [log(1, function, "info", "first is waiting"),
                                 log(1, function, "info", "first is released")]
    assert logs_of(lines, 2) == [log(2, function, "info", "second is running")]
    assert [result_of(lines, 1), result_of(lines, 2)] == [ok(1), ok(2)]


def test_a_thread_pool_of_one_runs_sync_invocations_one_after_another(start_worker):
    worker = start_worker(FEATURES, env={"PYTHON_THREADPOOL_THREAD_COUNT": "1"})
    worker.invoke(1, "wait_for_partner", [{"role": "first", "wait_s": 0.5}])
    worker.invoke(2, "wait_for_partner", [{"role": "second"}])
    lines = [line for line in worker.read_until_results(1, 2) if line.get("id") is not None]
    assert lines[0] == log(1, "wait_for_partner", "info", "first is waiting")
    assert (lines[1]["id"], lines[1]["error"]) == (
        1, "TimeoutError: no partner ran while the first invocation waited")
    assert lines[2:] == [log(2, "wait_for_partner", "info", "second is running"), ok(2)]


def test_a_bad_thread_count_is_reported_and_the_default_used(start_worker):
    worker = start_worker(FEATURES, env={"PYTHON_THREADPOOL_THREAD_COUNT": "many"})
    lines, exit_code = worker.close()
    assert log(None, None, "warning", "PYTHON_THREADPOOL_THREAD_COUNT='many' is not a whole "
                                      "number of at least 1; using the default") in lines
    assert exit_code == 0


def test_logged_and_printed_lines_are_sent_as_logs_of_their_invocation(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(4, "log_and_print", [{"id": "a"}, {"id": "b"}])
    lines = worker.read_until_results(4)
    assert logs_of(lines, 4) == [
        log(4, "log_and_print", "warning", "a warning"),
        log(4, "log_and_print", "error", "an error from a named logger"),
        log(4, "log_and_print", "info", "printed 2 documents"),
        log(4, "log_and_print", "info", "a partial line finished"),
    ]
    assert result_of(lines, 4) == ok(4)
    assert worker.close() == ([], 0)
    # A child process's stdout goes to the worker's stderr, not into the protocol.
    assert b"from a child process\n" in worker.stderr()


def test_bad_input_lines_are_logged_and_answered_when_they_have_an_id(start_worker):
    worker = start_worker(FEATURES)
    documents = [{"id": "o1", "total": 1}]
    bad_lines = [
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"type": "cancel", "id": 10}), "unknown message type 'cancel'"),
        (json.dumps({"type": "invoke", "id": 11, "function": "nope", "trigger": "documents",
                     "documents": documents}), "no function named 'nope'"),
        (json.dumps({"type": "invoke", "id": 12, "function": "validate_orders",
                     "trigger": "documents", "documents": "o1"}),
         "`documents` must be a list of JSON objects"),
        (json.dumps({"type": "invoke", "function": "validate_orders", "trigger": "documents",
                     "documents": documents}), "an invoke without an id"),
    ]
    worker.send_raw("not json")
    for bad_line, _ in bad_lines:
        worker.send_raw(bad_line)
    worker.invoke(13, "validate_orders", documents)
    lines = worker.read_until_results(10, 11, 12, 13)
    problems = [line for line in logs_of(lines, None) if line["level"] == "error"]
    assert problems[0]["message"].startswith("input line 1 ignored: not a line of JSON (")
    assert problems[1:] == [
        log(None, None, "error", f"input line {number} ignored: {problem}: {bad_line!r}")
        for number, (bad_line, problem) in enumerate(bad_lines, start=2)]

    def rejected(request_id, problem):
        return {"type": "result", "id": request_id, "ok": False,
                "error": f"ProtocolError: {problem}", "traceback": ""}

    assert [line for line in lines if line["type"] == "result"] == [
        rejected(10, "unknown message type 'cancel'"),
        rejected(11, "no function named 'nope'"),
        rejected(12, "`documents` must be a list of JSON objects"),
        ok(13),
    ]


def test_closing_stdin_lets_running_invocations_finish_then_exits_0(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(1, "wait_for_partner", [{"role": "first", "wait_s": 1}])
    assert worker.next_line()["type"] == "ready"
    lines, exit_code = worker.close()
    assert result_of(lines, 1)["error"] == (
        "TimeoutError: no partner ran while the first invocation waited")
    assert exit_code == 0


def test_closing_stdin_exits_0_after_a_bounded_wait_for_a_stuck_invocation(start_worker):
    worker = start_worker(FEATURES)
    worker.invoke(1, "wait_for_partner", [{"role": "first", "wait_s": 30}])
    lines, exit_code = worker.close()
    assert lines[-1] == log(None, None, "warning",
                            "stdin closed; exiting with 1 invocation(s) still running after 4.5 s")
    assert [line for line in lines if line["type"] == "result"] == []
    assert exit_code == 0


def assert_fatal(worker, error):
    assert worker.close() == ([{"type": "fatal", "error": error}], 1)


def test_syntax_error_in_the_app_is_fatal_with_file_and_line(start_worker):
    worker = start_worker(APPS / "syntax_error")
    lines, exit_code = worker.close()
    script = APPS / "syntax_error" / "function_app.py"
    assert [line["type"] for line in lines] == ["fatal"]
    assert lines[0]["error"].startswith(f"SyntaxError: {script}:3: ")
    assert exit_code == 1


def test_exception_while_importing_the_app_is_fatal_with_the_innermost_app_frame(start_worker):
    script = APPS / "raises_on_import" / "function_app.py"
    assert_fatal(start_worker(script.parent),
                 f"KeyError: 'TRIBUTARY_TEST_UNSET_SETTING' "
                 f"({script}:{line_of(script, 'return os.environ')}, in required_setting)")


def test_missing_dependency_of_the_app_is_fatal_with_how_to_install_it(start_worker,
                                                                       worker_executable):
    script = APPS / "missing_dependency" / "function_app.py"
    assert_fatal(start_worker(script.parent),
                 "ModuleNotFoundError: No module named "
                 f"'tributary_test_dependency_that_is_not_installed' ({script}:2, in <module>); "
                 f"install the app's dependencies for {worker_executable} "
                 f"(`{worker_executable} -m pip install -r requirements.txt`)")


def test_app_without_an_app_object_is_fatal(start_worker):
    script = APPS / "no_app" / "function_app.py"
    assert_fatal(start_worker(script.parent),
                 f"{script} defines no module-level `app`: create it with "
                 "`app = func.FunctionApp()` and register the functions on it")


def test_app_whose_app_is_a_blueprint_is_fatal(start_worker, tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n\napp = func.Blueprint()\n")
    assert_fatal(start_worker(tmp_path),
                 f"`app` in {tmp_path / 'function_app.py'} is a Blueprint, not a "
                 "func.FunctionApp: create it with `app = func.FunctionApp()` and register the "
                 "functions on it")


def test_directory_without_function_app_py_is_fatal(start_worker, tmp_path):
    assert_fatal(start_worker(tmp_path),
                 f"{tmp_path / 'function_app.py'} does not exist: the app directory must hold "
                 "the function_app.py of an Azure Functions Python (v2 model) app")


def test_python_without_azure_functions_is_fatal_with_how_to_install_it(start_worker,
                                                                        worker_executable):
    # -S leaves site-packages, and with them azure-functions, off sys.path.
    assert_fatal(start_worker(SEED, python_flags=["-S"]),
                 f"azure-functions is not installed for {worker_executable} (No module named "
                 f"'azure'): run `{worker_executable} -m pip install azure-functions`")
