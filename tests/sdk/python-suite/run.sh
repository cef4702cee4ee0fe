#!/usr/bin/env bash
# Runs the azure-cosmos SDK's own test suite (shipped in its sdist under tests/) against a
# Cosmos DB endpoint, normally a `tributary serve` that scripts/test.sh started.
#
#   TRIBUTARY_ENDPOINT=https://127.0.0.1:8081/ tests/sdk/python-suite/run.sh [test files/node ids] [pytest options]
#
# Environment:
#   TRIBUTARY_ENDPOINT      account endpoint (required)
#   TRIBUTARY_KEY           master key (default: the emulator key)
#   PYTHON                  interpreter with requirements.txt installed (default: .venv/bin/python)
#   TRIBUTARY_SUITE_CACHE   where the sdist is kept and unpacked (default: target/sdk-suite)
#   TRIBUTARY_SUITE_TIMEOUT per-test timeout in seconds (default: 600; the split tests poll for long)
#   TRIBUTARY_SUITE_AS_EMULATOR  1 (default) makes the suite treat the endpoint as the emulator
#
# The azure-cosmos version comes from tests/sdk/python/requirements.txt, so the suite always
# matches the installed SDK; sdist.sha256 pins the exact archive. Test files come from
# files.txt unless arguments name others (*.py or *.py::...); other arguments go to pytest;
# skip.txt deselects tests (see README.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
emulator_key="C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
requirements="$repo/tests/sdk/python/requirements.txt"

die() {
    echo "python-suite: $*" >&2
    exit 2
}

[[ -n ${TRIBUTARY_ENDPOINT:-} ]] || die "TRIBUTARY_ENDPOINT is not set"
[[ -x $python ]] || die "no interpreter at $python (run scripts/test.sh, or set PYTHON)"

version=$(sed -n 's/^azure-cosmos==\([^[:space:]#]*\).*/\1/p' "$requirements")
[[ -n $version ]] || die "$requirements pins no azure-cosmos version"
installed=$("$python" -c 'import importlib.metadata as m; print(m.version("azure-cosmos"))')
[[ $installed == "$version" ]] ||
    die "azure-cosmos $installed is installed but $requirements pins $version"

archive="azure_cosmos-$version.tar.gz"
read -r expected_sha256 pinned_archive <"$here/sdist.sha256"
[[ $pinned_archive == "$archive" ]] ||
    die "sdist.sha256 pins $pinned_archive but requirements.txt asks for $archive: update sdist.sha256"

cache=${TRIBUTARY_SUITE_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/sdk-suite}
mkdir -p "$cache"
if [[ ! -f $cache/$archive ]]; then
    echo "downloading the azure-cosmos $version sdist into $cache"
    "$python" -m pip download --disable-pip-version-check --no-input --quiet \
        --no-deps --no-binary :all: --dest "$cache" "azure-cosmos==$version"
fi
actual_sha256=$(sha256sum "$cache/$archive" | cut -d ' ' -f 1)
if [[ $actual_sha256 != "$expected_sha256" ]]; then
    rm -f "$cache/$archive"
    die "$archive has sha256 $actual_sha256, expected $expected_sha256 (deleted; rerun to download again)"
fi

# Unpack the tests afresh on every run so nothing left by an earlier run changes this one.
unpacked="$cache/azure_cosmos-$version"
rm -rf "$unpacked"
tar -xzf "$cache/$archive" -C "$cache" "azure_cosmos-$version/tests"
tests_dir="$unpacked/tests"

# Arguments naming test files (or node ids inside them) replace files.txt; others go to pytest.
selection=()
pytest_options=()
for argument in "$@"; do
    case $argument in
        *.py | *.py::*) selection+=("$argument") ;;
        *) pytest_options+=("$argument") ;;
    esac
done
if ((${#selection[@]} == 0)); then
    mapfile -t selection < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$here/files.txt")
fi

report="$cache/report.xml"
echo "azure-cosmos $version suite against $TRIBUTARY_ENDPOINT: ${selection[*]}"
set +e
(
    cd "$tests_dir"
    ACCOUNT_HOST="$TRIBUTARY_ENDPOINT" \
        ACCOUNT_KEY="${TRIBUTARY_KEY:-$emulator_key}" \
        COSMOS_TEST_DATA_AUTH_MODE=key \
        AZURE_COSMOS_ENABLE_CIRCUIT_BREAKER=False \
        TRIBUTARY_SUITE_SKIP_FILE="$here/skip.txt" \
        PYTHONPATH="$here/shim${PYTHONPATH:+:$PYTHONPATH}" \
        PYTHONDONTWRITEBYTECODE=1 \
        "$python" -m pytest \
        -p tributary_suite_plugin -p no:cacheprovider \
        --rootdir "$tests_dir" -o addopts= -o console_output_style=classic \
        --timeout "${TRIBUTARY_SUITE_TIMEOUT:-600}" \
        -rfE --junitxml "$report" \
        "${pytest_options[@]}" "${selection[@]}"
)
status=$?
set -e
echo "python-suite: pytest exited with $status; JUnit report: $report"
exit "$status"
