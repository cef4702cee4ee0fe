"""Bad configuration stops `tributary functions run` with one line that names the function and the
setting; functions with other triggers are skipped with a reason."""

import os
import pathlib
import re
import subprocess

from azure.cosmos import PartitionKey

from conftest import EMULATOR_KEY, Server, copy_test_app, free_port, start_host


def run_host(tributary_bin: str, app_python: str, app_dir: pathlib.Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TRIBUTARY_PYTHON=app_python)
    return subprocess.run([tributary_bin, "functions", "run", str(app_dir)], capture_output=True, text=True, env=environment, timeout=90)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("tributary: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_setting_names_the_function_and_the_setting(tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    app_dir = copy_test_app("mixed", tmp_path, {})
    line = error_line(run_host(tributary_bin, app_python, app_dir))
    assert line == "tributary: function 'on_items': setting 'CosmosDBConnection' is not set; add it to local.settings.json Values or the environment"


def test_a_bad_connection_string_is_refused(tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    app_dir = copy_test_app("mixed", tmp_path, {"CosmosDBConnection": "Endpoint=nowhere"})
    line = error_line(run_host(tributary_bin, app_python, app_dir))
    assert line.startswith("tributary: function 'on_items': setting 'CosmosDBConnection' is not a valid connection string"), line


def test_an_unreachable_server_is_named(tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/"
    app_dir = copy_test_app("mixed", tmp_path, {"CosmosDBConnection": f"AccountEndpoint={endpoint};AccountKey={EMULATOR_KEY};"})
    line = error_line(run_host(tributary_bin, app_python, app_dir))
    assert line.startswith("tributary: function 'on_items': ") and endpoint in line, line


def test_a_missing_container_is_named(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    server.client().create_database("config")
    app_dir = copy_test_app("mixed", tmp_path, {"CosmosDBConnection": server.connection_string})
    line = error_line(run_host(tributary_bin, app_python, app_dir))
    assert line.startswith("tributary: function 'on_items': ") and "'items'" in line, line


def test_a_syntax_error_names_the_file_and_line(tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    app_dir = copy_test_app("mixed", tmp_path, {})
    source = (app_dir / "function_app.py").read_text()
    (app_dir / "function_app.py").write_text(source.replace("    pass\n", "    pass(\n", 1))
    line = error_line(run_host(tributary_bin, app_python, app_dir))
    assert re.match(r"tributary: SyntaxError: .*function_app\.py:\d+: ", line), line


def test_python_without_azure_functions_says_how_to_install_it(tributary_bin: str, tmp_path: pathlib.Path) -> None:
    app_dir = copy_test_app("mixed", tmp_path, {})
    bare = tmp_path / "bare-venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(bare)], check=True)
    line = error_line(run_host(tributary_bin, str(bare / "bin" / "python"), app_dir))
    assert "azure-functions is not installed" in line and "pip install azure-functions" in line, line


def test_functions_with_other_triggers_are_skipped_with_a_reason(server: Server, tributary_bin: str, app_python: str, tmp_path: pathlib.Path) -> None:
    server.client().create_database("config").create_container("items", PartitionKey("/id"))
    app_dir = copy_test_app("mixed", tmp_path, {"CosmosDBConnection": server.connection_string})
    host = start_host(tributary_bin, app_python, app_dir, tmp_path / "host.log")
    try:
        host.wait_for_output("running function on_items")
        assert "skipping function hello: its trigger is httpTrigger; this host runs Cosmos DB triggers only" in host.output()
    finally:
        host.stop()
