#!/usr/bin/env bash
# The one test command for Tributary; CI runs it through .ci/run.
#
# From a fresh clone with Rust, Python 3 and Node it runs, in order:
#   fmt          cargo fmt --check
#   clippy       cargo clippy on every crate and target, warnings denied
#   build        the tributary-cli binary (the server the SDK tests talk to) and the
#                examples/materialized-view binary (a processor the Python lease test runs)
#   unit         the workspace's Rust tests (cargo-nextest when installed, plus doctests)
#   python-env   .venv with tests/sdk/python/requirements.txt (reused while unchanged)
#   harness      tests of this script's own machinery (scripts/lib/test_harness.py)
#   node-env     npm ci in tests/sdk/node (reused while package-lock.json is unchanged)
#   explorer-env Debian's chromium (apt-get, when /usr/bin/chromium is missing) and npm ci in
#                tests/explorer (playwright-core, which drives that browser; no browser download)
#   servers      three `tributary serve` processes on free ports with throwaway data dirs:
#                HTTPS and --http for the scenario tests (the --http one also has a read-only
#                key, from `tributary keys generate`), HTTPS for the SDK's own suite
#   python-https, python-http   the Python scenario tests against each server
#   node-https, node-http       the Node scenario tests against each server
#   explorer     the Explorer page in headless Chromium against the HTTPS server (tests/explorer;
#                its live feed step writes through the Python SDK with .venv's python, so it
#                runs only once python-env is ready)
#   sdk-suite    the azure-cosmos sdist's own tests (tests/sdk/python-suite/run.sh)
#   functions-env  .venv-functions-311 and -313: the two azure-functions lines (1.x on Python
#                3.11, 2.x on Python 3.13, from pyenv when not on PATH) with the test packages
#   functions-py311, functions-py313   the Python worker's tests and the end-to-end app tests
#                (tests/functions) with each of them
# and a summary with each stage's result and duration. python-env, functions-env, node-env and explorer-env run in the
# background from the start (while Rust compiles), and sdk-suite from the moment the servers are
# up, beside the Rust tests and the scenario tests. A failing stage does not stop the
# stages that do not depend on it; the exit status is non-zero if any stage failed. The
# servers are always stopped on exit, and their logs stay in target/test-logs/.
#
# Environment:
#   TRIBUTARY_PROFILE      Cargo profile for the Rust tests and the server binary (default:
#                          release; one profile so both share their compiled dependencies)
#   TRIBUTARY_SKIP_STAGES  space-separated stage names to skip, e.g. "fmt clippy sdk-suite"
#   CHROMIUM               the browser the Explorer's tests drive (default /usr/bin/chromium,
#                          installed from Debian's packages by explorer-env when missing)
#   PYTEST_ARGS            extra arguments for the Python scenario runs, which run inside
#                          tests/sdk/python, e.g. "-x test_items.py" or "-k change_feed"
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/stages.sh
source scripts/lib/stages.sh
# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

profile=${TRIBUTARY_PROFILE:-release}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case $profile in
    dev) binary_dir="$target_dir/debug" ;;
    *) binary_dir="$target_dir/$profile" ;;
esac
binary="$binary_dir/tributary"
example_binary="$binary_dir/materialized-view"
venv="$repo/.venv"
functions_venvs=(311 313)
node_dir="$repo/tests/sdk/node"
explorer_dir="$repo/tests/explorer"
# The browser the Explorer's tests drive: Debian's package (browsers cannot be downloaded).
chromium=${CHROMIUM:-/usr/bin/chromium}
log_dir="$target_dir/test-logs"
# Per-test limit for the scenario tests (pytest.ini has the same default; split tests raise it).
python_timeout_s=120

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/tributary-test.XXXXXX")
cleanup() {
    local status=$?
    stop_all_servers "$run_dir"
    if [[ -d $run_dir ]]; then
        mkdir -p "$log_dir"
        cp "$run_dir"/*.log "$log_dir"/ 2>/dev/null || true
        rm -rf "$run_dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$log_dir"
mkdir -p "$log_dir"

echo "tributary test run: profile $profile, $(nproc) cores, $(cargo --version), $(python3 --version), node $(node --version 2>/dev/null || echo absent)"

stage_fmt() {
    cargo fmt --all -- --check
}

stage_clippy() {
    cargo clippy --workspace --all-targets -- -D warnings
}

stage_build() {
    cargo build --profile "$profile" -p tributary-cli -p tributary-example-materialized-view
    local built_binary
    for built_binary in "$binary" "$example_binary"; do
        [[ -x $built_binary ]] || {
            echo "cargo built tributary-cli and the example but $built_binary does not exist" >&2
            return 1
        }
    done
}

stage_unit() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --cargo-profile "$profile" --no-fail-fast --no-tests=warn
        # nextest does not run doctests, and every crate documents itself with a runnable example.
        cargo test --workspace --profile "$profile" --doc
    else
        cargo test --workspace --profile "$profile" --no-fail-fast
    fi
}

stage_python_env() {
    ensure_venv "$venv" tests/sdk/python/requirements.txt
}

# The harness's own tests (server.sh process handling, the suite's skip file), with a fake server.
stage_harness() {
    "$venv/bin/python" -m pytest scripts/lib -p no:cacheprovider --timeout 60 -q
}

stage_functions_env() {
    local version
    for version in "${functions_venvs[@]}"; do
        local dotted="${version:0:1}.${version:1}" python
        python=$(python_version "$dotted")
        ensure_venv "$repo/.venv-functions-$version" "tests/functions/python/requirements-py$version.txt" "$python"
    done
}

# functions_tests VERSION: the worker's and the apps' tests with .venv-functions-VERSION.
functions_tests() {
    local python="$repo/.venv-functions-$1/bin/python"
    cd tests/functions
    TRIBUTARY_BIN="$binary" TRIBUTARY_FUNCTIONS_PYTHON="$python" \
        "$python" -m pytest python e2e --tb=short --junitxml "$log_dir/functions-py$1.xml"
}

stage_node_env() {
    ensure_node_modules "$node_dir"
}

stage_explorer_env() {
    if [[ ! -x $chromium ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "$chromium is missing and installing it needs root: apt-get install -y --no-install-recommends chromium" >&2
            return 1
        fi
        local started=$SECONDS
        echo "installing Debian's chromium with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
        echo "chromium installed in $((SECONDS - started)) s"
    fi
    "$chromium" --version 2>/dev/null | grep -i chromium
    ensure_node_modules "$explorer_dir"
}

# The Explorer in headless Chromium against the HTTPS server (a live feed write goes through
# the Python SDK in .venv).
explorer_tests() {
    cd "$explorer_dir"
    TRIBUTARY_ENDPOINT=$(server_endpoint https "$run_dir") \
        TRIBUTARY_KEY=$(server_key https "$run_dir") \
        CHROMIUM="$chromium" \
        TRIBUTARY_BIN="$binary" \
        TRIBUTARY_PYTHON="$venv/bin/python" \
        npm test
}

stage_servers() {
    local readonly_key
    readonly_key=$("$binary" keys generate | python3 -c 'import json, sys; print(json.load(sys.stdin)["primaryReadonlyMasterKey"])')
    start_server https "$run_dir" "$binary"
    start_server http "$run_dir" "$binary" --http --readonly-key "$readonly_key"
    start_server suite "$run_dir" "$binary"
}

# python_scenarios SERVER: the scenario tests against one of the servers (the read-only key
# tests skip against a server without one).
python_scenarios() {
    local server=$1
    local -a extra=()
    read -r -a extra <<<"${PYTEST_ARGS:-}"
    cd tests/sdk/python
    TRIBUTARY_ENDPOINT=$(server_endpoint "$server" "$run_dir") \
        TRIBUTARY_KEY=$(server_key "$server" "$run_dir") \
        TRIBUTARY_READONLY_KEY=$(server_readonly_key "$server" "$run_dir") \
        TRIBUTARY_EXAMPLE_BIN="$example_binary" \
        "$venv/bin/python" -m pytest \
        --timeout "$python_timeout_s" --tb=short \
        --junitxml "$log_dir/python-$server.xml" \
        "${extra[@]}"
}

# node_scenarios SERVER: the Node scenario tests against one of the servers.
node_scenarios() {
    local server=$1
    cd "$node_dir"
    TRIBUTARY_ENDPOINT=$(server_endpoint "$server" "$run_dir") \
        TRIBUTARY_KEY=$(server_key "$server" "$run_dir") \
        npm test
}

sdk_suite() {
    TRIBUTARY_ENDPOINT=$(server_endpoint suite "$run_dir") \
        TRIBUTARY_KEY=$(server_key suite "$run_dir") \
        PYTHON="$venv/bin/python" \
        bash tests/sdk/python-suite/run.sh
}

export STAGE_DIR="$run_dir"
# Package installs need the network more than the CPU: they run while Rust compiles.
start_stage python-env stage_python_env
start_stage functions-env stage_functions_env
has_node=0
if [[ -f $node_dir/package.json ]]; then
    has_node=1
    start_stage node-env stage_node_env
fi
has_explorer=0
if [[ -f $explorer_dir/package.json ]]; then
    has_explorer=1
    start_stage explorer-env stage_explorer_env
fi

run_stage fmt stage_fmt || true
run_stage clippy stage_clippy || true
built=1
run_stage build stage_build || built=0

python_ready=1
collect_stage python-env || python_ready=0

servers_ready=0
if ((built)); then
    run_stage servers stage_servers && servers_ready=1
else
    record_stage servers "not run: the build failed"
fi

# The SDK's own suite is the longest stage and mostly waits on its server: it starts as soon
# as the server is built and runs beside the Rust tests and the scenario tests.
suite_started=0
if ((servers_ready && python_ready)); then
    start_stage sdk-suite sdk_suite
    suite_started=1
fi

run_stage unit stage_unit || true

if ((python_ready)); then
    run_stage harness stage_harness || true
else
    record_stage harness "not run: .venv missing"
fi
node_ready=0
if ((has_node)); then
    node_ready=1
    collect_stage node-env || node_ready=0
fi

for server in https http; do
    if ((servers_ready && python_ready)); then
        run_stage "python-$server" python_scenarios "$server" || true
    else
        record_stage "python-$server" "not run: servers or .venv missing"
    fi
done
if ((has_node)); then
    for server in https http; do
        if ((servers_ready && node_ready)); then
            run_stage "node-$server" node_scenarios "$server" || true
        else
            record_stage "node-$server" "not run: servers or node_modules missing"
        fi
    done
fi
if ((has_explorer)); then
    explorer_ready=1
    collect_stage explorer-env || explorer_ready=0
    # python-env was collected above, before the servers.
    if ((servers_ready && explorer_ready && python_ready)); then
        run_stage explorer explorer_tests || true
    else
        record_stage explorer "not run: servers, chromium, tests/explorer/node_modules or .venv missing"
    fi
fi
functions_ready=1
collect_stage functions-env || functions_ready=0
for version in "${functions_venvs[@]}"; do
    if ((built && functions_ready)); then
        run_stage "functions-py$version" functions_tests "$version" || true
    else
        record_stage "functions-py$version" "not run: the build failed or the functions venvs are missing"
    fi
done
if ((suite_started)); then
    collect_stage sdk-suite || true
else
    record_stage sdk-suite "not run: servers or .venv missing"
fi

echo "server logs and JUnit reports: $log_dir"
print_stage_summary
