"""Tributary's Python functions worker: runs an Azure Functions Python app for the functions host.

The host (`crates/functions`) starts `python tributary_functions_worker.py APP_DIR`, with APP_DIR as
the working directory and the app's settings in the environment, and speaks the JSON-lines
protocol of docs/functions-protocol.md with it: invocations on stdin; `ready` or `fatal`, then
results and logs, on stdout. The app is a `function_app.py` written for Azure Functions' Python v2
programming model; the worker needs only the standard library and the `azure-functions` package.

- Startup imports `function_app` from APP_DIR, takes its module-level `app` and describes every
  function on it (bindings from `get_function_json()`, retry policy, whether it is `async def`).
- Invocations run concurrently and each is answered when it finishes: `def` functions in a thread
  pool of PYTHON_THREADPOOL_THREAD_COUNT threads (unset: Python's default, min(32, cores + 4), as
  Azure's own worker does on Python 3.9+), `async def` functions on one event loop in its own
  thread.
- Parameters are matched by name: the trigger and input bindings get a `func.DocumentList`, output
  bindings a `func.Out`, a parameter named `context` a `func.Context`. What the function `set` on an
  output becomes a list of JSON documents; a returned `{"batchItemFailures": [...]}` becomes
  `failed_items`; any other return value is ignored.
- Root-logger records and printed lines become `log` lines of the invocation that produced them
  (a context variable tracks it). File descriptors 0 and 1 are moved aside so that neither user
  code nor its child processes can read from or write into the protocol streams.

Not supported: argument types of other triggers (the host invokes change-feed functions only),
`$return` bindings, and attributing logs of threads that a function starts itself.
"""

import asyncio
import concurrent.futures
import contextvars
import importlib
import inspect
import io
import json
import logging
import os
import sys
import threading
import traceback
from collections import UserList
from collections.abc import Mapping

try:
    import azure.functions as func
except ImportError as import_error:
    python = sys.executable
    message = (
        f"azure-functions is not installed for {python} ({import_error}): "
        f"run `{python} -m pip install azure-functions`"
    )
    print(json.dumps({"type": "fatal", "error": message}), flush=True)
    sys.exit(1)

# (invocation id, function name) of the invocation running in this context.
CURRENT_INVOCATION = contextvars.ContextVar("tributary_invocation", default=(None, None))
# How long the worker lets running invocations finish once stdin closes: less than the 5 s after
# which the host kills it, so that it exits on its own.
SHUTDOWN_WAIT_S = 4.5
THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


class StartupError(Exception):
    """The worker cannot start; the message is the `fatal` line's error."""


class ProtocolError(Exception):
    """An input line that is not a valid invoke message."""

    def __init__(self, problem, request_id=None):
        super().__init__(problem)
        self.request_id = request_id


class Channel:
    """The protocol's output stream: one JSON object per line, each written whole and flushed.

    The first line must be `ready` or `fatal`, so log lines sent before it are held until it is out.
    """

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self._held_logs = []  # None once the first line is out

    def send(self, message):
        line = json.dumps(message, allow_nan=False).encode("ascii") + b"\n"
        with self._lock:
            if self._held_logs is not None:
                if message["type"] == "log":
                    self._held_logs.append(line)
                    return
                line += b"".join(self._held_logs)
                self._held_logs = None
            self._stream.write(line)
            self._stream.flush()

    def log(self, level, message):
        invocation_id, function_name = CURRENT_INVOCATION.get()
        self.send({"type": "log", "id": invocation_id, "function": function_name,
                   "level": level, "message": message})


def level_name(levelno):
    for threshold, name in ((logging.CRITICAL, "critical"), (logging.ERROR, "error"),
                            (logging.WARNING, "warning"), (logging.INFO, "info"),
                            (logging.DEBUG, "debug")):
        if levelno >= threshold:
            return name
    return "trace"


class LogHandler(logging.Handler):
    """Sends each root-logger record as a `log` line of the invocation that logged it."""

    def __init__(self, channel):
        super().__init__()
        self._channel = channel

    def emit(self, record):
        try:
            self._channel.log(level_name(record.levelno), self.format(record))
        except Exception:
            self.handleError(record)


class PrintedLines(io.TextIOBase):
    """Stands in for sys.stdout: each printed line becomes an `info` log line."""

    def __init__(self, channel):
        self._channel = channel
        self._unfinished = threading.local()  # each thread's text after its last newline

    def writable(self):
        return True

    def write(self, text):
        *lines, self._unfinished.text = (getattr(self._unfinished, "text", "") + text).split("\n")
        for line in lines:
            self._channel.log("info", line)
        return len(text)

    def flush(self):
        text = getattr(self._unfinished, "text", "")
        if text:
            self._unfinished.text = ""
            self._channel.log("info", text)


class OutputBinding(func.Out):
    """What an output binding's parameter receives; the function `set`s its documents on it."""

    def __init__(self):
        self._value = None

    def set(self, val):
        self._value = val

    def get(self):
        return self._value


class InvocationContext(func.Context):
    """The `context` parameter. There is no distributed trace, and retries are the host's."""

    def __init__(self, invocation_id, function_name, function_directory):
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._function_name)
    function_directory = property(lambda self: self._function_directory)
    thread_local_storage = property(lambda self: self._thread_local_storage)
    trace_context = property(lambda self: None)
    retry_context = property(lambda self: None)


class Function:
    """One function of the app: its user function, and its description for the `ready` line."""

    def __init__(self, azure_function):
        self.name = azure_function.get_function_name()
        self.user_function = azure_function.get_user_function()
        self.parameters = inspect.signature(self.user_function).parameters
        self.is_async = inspect.iscoroutinefunction(self.user_function)
        retry = azure_function.get_settings_dict("retry_policy")
        self.description = {
            "name": self.name,
            "bindings": json.loads(azure_function.get_function_json())["bindings"],
            "retry": {k: v for k, v in retry.items() if k != "setting_name"} if retry else None,
            "is_async": self.is_async,
        }


def load_functions(app_dir):
    """The functions of the `app` in APP_DIR/function_app.py, by name."""
    script = os.path.join(app_dir, "function_app.py")
    if not os.path.isfile(script):
        raise StartupError(f"{script} does not exist: the app directory must hold the "
                           "function_app.py of an Azure Functions Python (v2 model) app")
    sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module("function_app")
    except SyntaxError as error:
        raise StartupError(
            f"{type(error).__name__}: {error.filename}:{error.lineno}: {error.msg}") from None
    except BaseException as error:
        raise StartupError(describe_import_failure(script, error)) from None
    app = getattr(module, "app", None)
    if not isinstance(app, func.FunctionRegister):
        problem = (f"{script} defines no module-level `app`" if app is None else
                   f"`app` in {script} is a {type(app).__name__}, not a func.FunctionApp")
        raise StartupError(f"{problem}: create it with `app = func.FunctionApp()` and register "
                           "the functions on it")
    try:
        return {function.name: function for function in map(Function, app.get_functions())}
    except Exception as error:
        raise StartupError(f"the functions of {script} are invalid: "
                           f"{type(error).__name__}: {one_line(error)}") from None


def describe_import_failure(script, error):
    description = f"{type(error).__name__}: {one_line(error)}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(frame.filename) == script]
    if frames:
        description += f" ({frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})"
    if isinstance(error, ModuleNotFoundError):
        description += (f"; install the app's dependencies for {sys.executable} "
                        f"(`{sys.executable} -m pip install -r requirements.txt`)")
    return description


def one_line(error):
    return " ".join(str(error).split("\n"))


def document_list(documents):
    return func.DocumentList([func.Document.from_dict(document) for document in documents])


def output_documents(name, value):
    """The documents an output binding was set to, as a list of plain dicts."""
    def parse(text):
        try:
            return json.loads(text)
        except ValueError as error:
            raise ValueError(f"output binding {name!r} was set to a string that is not JSON "
                             f"({error})") from None

    if isinstance(value, str):
        value = parse(value)
    documents = []
    for item in value if isinstance(value, (list, tuple, UserList)) else [value]:
        if isinstance(item, str):
            item = parse(item)
        if not isinstance(item, Mapping):
            raise TypeError(f"output binding {name!r} was set to a value of type "
                            f"{type(item).__name__}; set a func.Document, a dict, a JSON string, "
                            "or a list of them")
        documents.append(dict(item))
    return documents


def failed_items(returned):
    """The document ids in a returned `{"batchItemFailures": [{"itemIdentifier": id}, ...]}`."""
    if not isinstance(returned, Mapping) or "batchItemFailures" not in returned:
        return []
    failures = returned["batchItemFailures"]
    if not isinstance(failures, list) or not all(
            isinstance(failure, Mapping) and isinstance(failure.get("itemIdentifier"), str)
            for failure in failures):
        raise TypeError('batchItemFailures must be a list of {"itemIdentifier": "<document id>"}')
    return [failure["itemIdentifier"] for failure in failures]


def is_documents(value):
    return isinstance(value, list) and all(isinstance(document, dict) for document in value)


def parse_invoke(line, functions):
    """The invoke message on one input line, with `inputs`, `outputs` and `context` defaulted."""
    try:
        message = json.loads(line.decode("utf-8"))
    except ValueError as error:
        raise ProtocolError(f"not a line of JSON ({error})") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    request_id = message.get("id")

    def check(valid, problem):
        if not valid:
            raise ProtocolError(problem, request_id)

    check(message.get("type") == "invoke", f"unknown message type {message.get('type')!r}")
    check(request_id is not None, "an invoke without an id")
    name = message.get("function")
    check(isinstance(name, str) and name in functions, f"no function named {name!r}")
    check(isinstance(message.get("trigger"), str), "`trigger` must be a parameter name")
    check(is_documents(message.get("documents")), "`documents` must be a list of JSON objects")
    inputs = message.get("inputs") or {}
    check(isinstance(inputs, dict) and all(map(is_documents, inputs.values())),
          "`inputs` must map parameter names to lists of JSON objects")
    outputs = message.get("outputs") or []
    check(isinstance(outputs, list) and all(isinstance(output, str) for output in outputs),
          "`outputs` must be a list of parameter names")
    context = message.get("context") or {}
    check(isinstance(context, dict), "`context` must be a JSON object")
    return {**message, "inputs": inputs, "outputs": outputs, "context": context}


def thread_pool_size():
    setting = os.environ.get(THREAD_COUNT_SETTING)
    if setting is None:
        return None
    if setting.strip().isdigit() and int(setting) >= 1:
        return int(setting)
    logging.warning("%s=%r is not a whole number of at least 1; using the default",
                    THREAD_COUNT_SETTING, setting)
    return None


class Worker:
    """Runs invocations concurrently and answers each one when it finishes."""

    def __init__(self, channel, functions, app_dir):
        self.channel = channel
        self.functions = functions
        self.app_dir = app_dir
        self.threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=thread_pool_size(), thread_name_prefix="invocation")
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="async-invocations",
                         daemon=True).start()
        self.running = set()
        self.running_lock = threading.Lock()

    def serve(self, lines):
        for line_number, line in enumerate(lines, start=1):
            try:
                self.start(parse_invoke(line, self.functions))
            except ProtocolError as error:
                self.reject(line_number, line, error)
        self.finish_running()

    def start(self, request):
        function = self.functions[request["function"]]
        if function.is_async:
            future = asyncio.run_coroutine_threadsafe(self.run_async(function, request), self.loop)
        else:
            future = self.threads.submit(contextvars.copy_context().run,
                                         self.run_sync, function, request)
        with self.running_lock:
            self.running.add(future)
        future.add_done_callback(self.forget)

    def forget(self, future):
        with self.running_lock:
            self.running.discard(future)

    def run_sync(self, function, request):
        CURRENT_INVOCATION.set((request["id"], function.name))
        try:
            kwargs, outputs = self.arguments(function, request)
            self.succeed(request, outputs, function.user_function(**kwargs))
        except BaseException as error:
            self.fail(request, error)

    async def run_async(self, function, request):
        CURRENT_INVOCATION.set((request["id"], function.name))
        try:
            kwargs, outputs = self.arguments(function, request)
            self.succeed(request, outputs, await function.user_function(**kwargs))
        except BaseException as error:
            self.fail(request, error)

    def arguments(self, function, request):
        """The keyword arguments for the parameters the function declares, and its outputs."""
        outputs = {name: OutputBinding() for name in request["outputs"]}
        invocation_id = request["context"].get("invocation_id") or str(request["id"])
        offered = {
            "context": InvocationContext(invocation_id, function.name, self.app_dir),
            **{name: document_list(documents) for name, documents in request["inputs"].items()},
            request["trigger"]: document_list(request["documents"]),
            **outputs,
        }
        kwargs = {name: value for name, value in offered.items() if name in function.parameters}
        return kwargs, outputs

    def succeed(self, request, outputs, returned):
        result = {
            "type": "result", "id": request["id"], "ok": True,
            "outputs": {name: output_documents(name, binding.get())
                        for name, binding in outputs.items() if binding.get() is not None},
            "failed_items": failed_items(returned),
        }
        try:
            self.channel.send(result)
        except (TypeError, ValueError) as error:
            raise TypeError(f"the output documents are not JSON: {error}") from None

    def fail(self, request, error):
        message = str(error)
        # The first frame is run_sync's or run_async's; the traceback starts at the user's code.
        frames = error.__traceback__.tb_next if error.__traceback__ else None
        self.channel.send({
            "type": "result", "id": request["id"], "ok": False,
            "error": f"{type(error).__name__}: {message}" if message else type(error).__name__,
            "traceback": "".join(traceback.format_exception(type(error), error, frames)),
        })

    def reject(self, line_number, line, error):
        excerpt = line[:200].decode("utf-8", "replace").rstrip("\n")
        self.channel.log("error", f"input line {line_number} ignored: {error}: {excerpt!r}")
        if error.request_id is not None:
            self.channel.send({"type": "result", "id": error.request_id, "ok": False,
                               "error": f"ProtocolError: {error}", "traceback": ""})

    def finish_running(self):
        with self.running_lock:
            running = list(self.running)
        _, unfinished = concurrent.futures.wait(running, timeout=SHUTDOWN_WAIT_S)
        if unfinished:
            self.channel.log("warning", f"stdin closed; exiting with {len(unfinished)} "
                                        f"invocation(s) still running after {SHUTDOWN_WAIT_S} s")
            os._exit(0)  # a normal exit would wait for the pool's threads


def main(argv):
    # Keep the protocol's streams for the worker; user code and child processes get stdin from
    # /dev/null and write to stderr (which the host logs) instead of into the protocol.
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    channel = Channel(protocol_out)

    root_logger = logging.getLogger()
    for handler in list(root_logger.handlers):
        root_logger.removeHandler(handler)
    root_logger.addHandler(LogHandler(channel))
    root_logger.setLevel(logging.INFO)  # as in Azure's worker; the app may change it
    sys.stdout = PrintedLines(channel)

    try:
        if len(argv) != 2:
            raise StartupError(f"usage: {sys.executable} {argv[0]} APP_DIR")
        app_dir = os.path.abspath(argv[1])
        functions = load_functions(app_dir)
    except StartupError as error:
        channel.send({"type": "fatal", "error": str(error)})
        return 1
    channel.send({"type": "ready",
                  "functions": [function.description for function in functions.values()]})
    Worker(channel, functions, app_dir).serve(protocol_in)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
