"""Tests of the test harness itself: server.sh process handling and the suite's skip file.

scripts/test.sh runs these (stage ``harness``) before any SDK test, with a stand-in for
``tributary serve`` so they need no Rust build. Run by hand with
``.venv/bin/python -m pytest scripts/lib``.
"""

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

LIB_DIR = Path(__file__).resolve().parent
REPO = LIB_DIR.parent.parent
sys.path.insert(0, str(REPO / "tests" / "sdk" / "python-suite" / "shim"))

import tributary_suite_plugin  # noqa: E402  (needs the path above)

# A stand-in for `tributary serve`: prints what the real one prints, then serves HTTP.
# FAKE_MODE=exit quits before listening; FAKE_MODE=stubborn ignores SIGTERM.
FAKE_SERVER = textwrap.dedent(
    """\
    #!{python}
    import http.server, os, signal, sys
    args = sys.argv[1:]
    assert args[0] == "serve", args
    port = int(args[args.index("--port") + 1])
    assert os.path.isdir(args[args.index("--data-dir") + 1])
    assert args[args.index("--durability") + 1] == "relaxed"
    scheme = "http" if "--http" in args else "https"
    if os.environ.get("FAKE_MODE") == "exit":
        print("error: address in use", flush=True)
        sys.exit(1)
    if os.environ.get("FAKE_MODE") == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("2026-01-01T00:00:00Z INFO listening", flush=True)
    print(f"endpoint: {{scheme}}://127.0.0.1:{{port}}/", flush=True)
    # Before the `key:` line (the real server prints it after): the key must not be read from it.
    if "--readonly-key" in args:
        print("read-only key: " + args[args.index("--readonly-key") + 1], flush=True)
    print("key: c2VjcmV0+a2V5/w==", flush=True)
    endpoint = f"{{scheme}}://127.0.0.1:{{port}}/"
    print(f"connection string: AccountEndpoint={{endpoint}};AccountKey=c2VjcmV0+a2V5/w==;", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), http.server.BaseHTTPRequestHandler).serve_forever()
    """
)


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "tributary"
    binary.write_text(FAKE_SERVER.format(python=sys.executable))
    binary.chmod(0o755)
    return binary


@pytest.fixture
def run_dir(tmp_path: Path):
    """A run directory whose servers are stopped after the test, even when it fails midway."""
    directory = tmp_path / "run"
    directory.mkdir()
    yield directory
    bash(f"stop_all_servers {directory}", env={"SERVER_STOP_TIMEOUT_S": "1"})


def bash(script: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with server.sh sourced."""
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {LIB_DIR / 'server.sh'}; {script}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_exit(pid: int, deadline_s: float = 10) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not process_exists(pid):
            return True
        time.sleep(0.05)
    return False


def test_start_server_records_endpoint_key_and_pid(run_dir: Path, fake_binary: Path) -> None:

    started = bash(f"start_server plain {run_dir} {fake_binary} --http")

    assert started.returncode == 0, started.stderr
    endpoint = (run_dir / "plain.endpoint").read_text().strip()
    assert endpoint.startswith("http://127.0.0.1:")
    assert (run_dir / "plain.key").read_text().strip() == "c2VjcmV0+a2V5/w=="
    assert (run_dir / "plain.readonly-key").read_text().strip() == ""
    port = int(endpoint.rsplit(":", 1)[1].strip("/"))
    pid = int((run_dir / "plain.pid").read_text())
    assert accepts_connections(port)
    assert (run_dir / "plain-data").is_dir()

    stopped = bash(f"stop_server plain {run_dir}")

    assert stopped.returncode == 0, stopped.stderr
    assert wait_for_exit(pid), "the server outlived stop_server"
    assert not (run_dir / "plain.pid").exists()


def test_start_server_records_the_read_only_key_apart_from_the_key(run_dir: Path, fake_binary: Path) -> None:

    started = bash(f"start_server limited {run_dir} {fake_binary} --http --readonly-key cmVhZA==")

    assert started.returncode == 0, started.stderr
    assert (run_dir / "limited.key").read_text().strip() == "c2VjcmV0+a2V5/w=="
    assert (run_dir / "limited.readonly-key").read_text().strip() == "cmVhZA=="
    assert bash(f"server_readonly_key limited {run_dir}").stdout.strip() == "cmVhZA=="


def test_start_server_gives_up_after_three_failed_attempts(run_dir: Path, fake_binary: Path) -> None:

    started = bash(f"start_server broken {run_dir} {fake_binary}", env={"FAKE_MODE": "exit"})

    assert started.returncode == 1
    assert started.stderr.count("did not become ready") == 3
    assert "address in use" in started.stderr
    assert not (run_dir / "broken.endpoint").exists()


def test_stop_all_servers_kills_a_server_that_ignores_sigterm(run_dir: Path, fake_binary: Path) -> None:
    started = bash(f"start_server stubborn {run_dir} {fake_binary}", env={"FAKE_MODE": "stubborn"})
    assert started.returncode == 0, started.stderr
    pid = int((run_dir / "stubborn.pid").read_text())

    stopped = bash(f"stop_all_servers {run_dir}", env={"SERVER_STOP_TIMEOUT_S": "1"})

    assert stopped.returncode == 0
    assert "ignored SIGTERM" in stopped.stderr
    assert wait_for_exit(pid)


def test_free_port_is_bindable() -> None:
    port = int(bash("free_port").stdout)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))


def test_skip_entry_matches_itself_parametrizations_and_inner_tests() -> None:
    entry = tributary_suite_plugin.SkipEntry(node_id="test_a.py::TestA::test_x", reason="r", line_number=1)
    whole_class = tributary_suite_plugin.SkipEntry(node_id="test_a.py::TestA", reason="r", line_number=2)

    assert entry.matches("test_a.py::TestA::test_x")
    assert entry.matches("test_a.py::TestA::test_x[1-True]")
    assert not entry.matches("test_a.py::TestA::test_xy")
    assert whole_class.matches("test_a.py::TestA::test_y")
    assert not whole_class.matches("test_a.py::TestAB::test_y")
    assert entry.file == "test_a.py"


def test_skip_file_needs_a_reason_on_every_entry(tmp_path: Path) -> None:
    skip_file = tmp_path / "skip.txt"
    skip_file.write_text("# comment\n\ntest_a.py::T::test_x  # not supported\ntest_a.py::T::test_y\n")

    with pytest.raises(pytest.UsageError, match=r"skip.txt:4: 'test_a.py::T::test_y' needs a '# reason'"):
        tributary_suite_plugin.read_skip_file(str(skip_file))


def test_skip_file_entries_keep_their_reason(tmp_path: Path) -> None:
    skip_file = tmp_path / "skip.txt"
    skip_file.write_text("test_a.py::T::test_x  # needs stored procedures\n")

    [entry] = tributary_suite_plugin.read_skip_file(str(skip_file))

    assert (entry.node_id, entry.reason, entry.line_number) == ("test_a.py::T::test_x", "needs stored procedures", 1)


def test_the_committed_skip_file_parses() -> None:
    entries = tributary_suite_plugin.read_skip_file(str(REPO / "tests" / "sdk" / "python-suite" / "skip.txt"))

    assert len({e.node_id for e in entries}) == len(entries), "skip.txt lists a test twice"
