"""Fixtures for the functions host's end-to-end tests: a `tributary serve` of their own, a host
process running an app directory, and an HTTP receiver.

Configured by the environment:

* ``TRIBUTARY_BIN`` (required): the `tributary` binary;
* ``TRIBUTARY_FUNCTIONS_PYTHON`` (optional): the Python that runs the apps (it needs
  ``azure-functions`` and ``requests``); the test's own interpreter when unset.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, List, Optional

import pytest
from azure.cosmos import CosmosClient

EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
REPO = pathlib.Path(__file__).resolve().parents[3]
# Longest a test waits for something that should happen.
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Process:
    """A child process whose output goes to a log file."""

    def __init__(self, args: List[str], log: pathlib.Path, env: Optional[dict] = None, cwd: Optional[pathlib.Path] = None):
        self.log_path = log
        self._log = open(log, "wb")
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, count: int = 1, timeout_s: float = WAIT_S) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None and self.output().count(text) < count:
                raise AssertionError(f"{self.popen.args[0]} exited ({self.popen.returncode}) before printing {text!r}:\n{self.output()}")
            return self.output().count(text) >= count

        wait_for(f"{text!r} x{count} in {self.log_path.name}", seen, timeout_s)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


@pytest.fixture(scope="session")
def tributary_bin() -> str:
    binary = os.environ.get("TRIBUTARY_BIN")
    if not binary:
        raise RuntimeError("set TRIBUTARY_BIN to the tributary binary (scripts/test.sh does)")
    return binary


@pytest.fixture(scope="session")
def app_python() -> str:
    return os.environ.get("TRIBUTARY_FUNCTIONS_PYTHON", sys.executable)


class Server:
    def __init__(self, process: Process, endpoint: str, data_dir: pathlib.Path):
        self.process = process
        self.endpoint = endpoint
        self.data_dir = data_dir
        self.connection_string = f"AccountEndpoint={endpoint};AccountKey={EMULATOR_KEY};"

    def client(self) -> CosmosClient:
        return CosmosClient(self.endpoint, EMULATOR_KEY)


def start_server(tributary_bin: str, directory: pathlib.Path, name: str, extra: List[str] = ()) -> Server:
    port = free_port()
    data_dir = directory / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    process = Process(
        [tributary_bin, "serve", "--http", "--addr", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--durability", "relaxed", *extra],
        directory / f"{name}.log",
    )
    process.wait_for_output("ready in")
    return Server(process, f"http://127.0.0.1:{port}/", data_dir)


@pytest.fixture
def server(tributary_bin: str, tmp_path: pathlib.Path) -> Iterator[Server]:
    started = start_server(tributary_bin, tmp_path, "server")
    yield started
    started.process.stop()


class Receiver:
    """An HTTP server recording every POST body (the seed's search service stand-in)."""

    def __init__(self) -> None:
        self.requests: List[dict] = []
        records = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                records.append({"path": self.path, "api_key": self.headers.get("api-key"), "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.server.shutdown()


def copy_app(name: str, destination: pathlib.Path, values: dict) -> pathlib.Path:
    """Copies ``examples/NAME`` (without its .venv) and writes its local.settings.json Values."""
    app_dir = destination / name
    shutil.copytree(REPO / "examples" / name, app_dir, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    settings_path = app_dir / "local.settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {"IsEncrypted": False, "Values": {}}
    settings["Values"].update(values)
    settings_path.write_text(json.dumps(settings, indent=2))
    return app_dir


def start_host(tributary_bin: str, app_python: str, app_dir: pathlib.Path, log: pathlib.Path, extra: List[str] = (), env: Optional[dict] = None) -> Process:
    environment = dict(os.environ, TRIBUTARY_PYTHON=app_python, RUST_LOG="info,fjall=warn,lsm_tree=warn", **(env or {}))
    return Process([tributary_bin, "functions", "run", str(app_dir), *extra], log, env=environment)


def copy_test_app(name: str, destination: pathlib.Path, values: dict) -> pathlib.Path:
    """Copies ``tests/functions/e2e/apps/NAME`` and writes its local.settings.json Values."""
    app_dir = destination / name
    shutil.copytree(pathlib.Path(__file__).parent / "apps" / name, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
    return app_dir
