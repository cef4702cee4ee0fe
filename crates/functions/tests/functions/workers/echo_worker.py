"""A test worker speaking docs/functions-protocol.md with the standard library only.

Functions (by name):
- echo: outputs the documents as `out`, and the invoke request without its documents as
  `request`.
- partial: succeeds and reports every document's id as a failed item.
- fail: raises (answers ok: false with a traceback).
- log: sends one log line per level, then succeeds.
- pid: outputs [{"pid": <this process's id>}].
- rendezvous: documents[0] is {"dir": D, "count": N}; writes D/<pid> and waits (at most 60 s)
  until D holds N files, then outputs its pid.
- hang: documents[0] may be {"marker": PATH}; writes PATH, then never answers.
- crash: documents[0] may be {"marker": PATH}; writes PATH, then (with `crash_now` in the
  documents) writes to stderr and exits with status 3.
- garbage: writes lines that are not protocol messages, then succeeds.
- huge: writes a line longer than the host's 64 MiB limit.

Invocations run on threads, so several run at once. With TEST_WORKER_IGNORE_EOF=1 the worker
keeps running after its stdin closes.
"""

import json
import os
import sys
import threading
import time

OUT = sys.stdout.buffer
OUT_LOCK = threading.Lock()


def send(message):
    line = json.dumps(message).encode("utf-8") + b"\n"
    with OUT_LOCK:
        OUT.write(line)
        OUT.flush()


def send_raw(data):
    with OUT_LOCK:
        OUT.write(data)
        OUT.flush()


def ok(request, outputs, failed_items=()):
    send({"type": "result", "id": request["id"], "ok": True, "outputs": outputs,
          "failed_items": list(failed_items)})


def write_marker(request):
    documents = request["documents"]
    if documents and "marker" in documents[0]:
        with open(documents[0]["marker"], "w") as marker:
            marker.write(str(os.getpid()))


def run(request):
    function = request["function"]
    documents = request["documents"]
    if function == "echo":
        rest = {key: value for key, value in request.items() if key != "documents"}
        ok(request, {"out": documents, "request": [rest]})
    elif function == "partial":
        ok(request, {}, [document["id"] for document in documents])
    elif function == "fail":
        send({"type": "result", "id": request["id"], "ok": False,
              "error": "KeyError: 'total'",
              "traceback": "Traceback (most recent call last):\n  ...\nKeyError: 'total'\n"})
    elif function == "log":
        for level in ("trace", "debug", "info", "warning", "error", "critical"):
            send({"type": "log", "id": request["id"], "function": function, "level": level,
                  "message": f"a {level} line"})
        ok(request, {})
    elif function == "pid":
        ok(request, {"out": [{"pid": os.getpid()}]})
    elif function == "rendezvous":
        directory, count = documents[0]["dir"], documents[0]["count"]
        with open(os.path.join(directory, str(os.getpid())), "w"):
            pass
        deadline = time.monotonic() + 60
        while len(os.listdir(directory)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        ok(request, {"out": [{"pid": os.getpid()}]})
    elif function == "hang":
        write_marker(request)
        while True:
            time.sleep(3600)
    elif function == "crash":
        write_marker(request)
        if any(document.get("crash_now") for document in documents):
            sys.stderr.write("crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        while True:
            time.sleep(3600)
    elif function == "garbage":
        send_raw(b"this is not JSON\n[1, 2, 3]\n{\"type\": \"mystery\"}\n")
        send({"type": "result", "id": 999999, "ok": True})
        ok(request, {"out": documents})
    elif function == "huge":
        send_raw(b"x" * (64 * 1024 * 1024 + 16) + b"\n")
    else:
        send({"type": "result", "id": request["id"], "ok": False,
              "error": f"unknown function {function!r}"})


def main():
    send({"type": "log", "id": None, "function": None, "level": "info",
          "message": "echo worker starting"})
    send({"type": "ready", "functions": [
        {"name": "echo",
         "bindings": [{"direction": "IN", "type": "cosmosDBTrigger", "name": "documents",
                       "containerName": "orders"}],
         "retry": {"strategy": "fixed_delay", "max_retry_count": "2"},
         "is_async": True},
        {"name": "minimal"},
    ]})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        threading.Thread(target=run, args=(request,), daemon=True).start()
    if os.environ.get("TEST_WORKER_IGNORE_EOF") == "1":
        while True:
            time.sleep(3600)
    os._exit(0)


main()
