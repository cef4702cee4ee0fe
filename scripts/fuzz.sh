#!/usr/bin/env bash
# Coverage-guided fuzzing of Tributary's decoders of untrusted input (docs/fuzzing.md).
#
#   scripts/fuzz.sh                  every target for 60 s each, one after the other
#   scripts/fuzz.sh sql              one target for 60 s
#   scripts/fuzz.sh sql 600          one target for 600 s
#   scripts/fuzz.sh all 300          every target for 300 s each (the documented long run)
#
# Each target runs as one libFuzzer process (one core), starting from its corpus in
# fuzz/corpus/<target> (kept between runs, not committed), the committed seeds in
# fuzz/seeds/<target>, and the inputs of crashes already fixed in fuzz/regressions/<target>
# (so every run replays them first). A crash leaves its input in fuzz/artifacts/<target>/;
# reproduce it with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`, fix it,
# turn it into a regression test named after what it checks, and keep the input in
# fuzz/regressions/<target>/. The summary gives each target's executions,
# coverage and result; the exit status is non-zero if any target crashed.
#
# Needs a nightly toolchain and cargo-fuzz: `rustup toolchain install nightly` and
# `cargo install cargo-fuzz`.
# Environment: FUZZ_ARGS  extra libFuzzer flags, e.g. "-max_len=8192 -dict=my.dict".
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

target=${1:-all}
seconds=${2:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [target|all] [seconds]" >&2
    exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain; install it with 'rustup toolchain install nightly'" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing; install it with 'cargo install cargo-fuzz'" >&2
    exit 2
fi

mapfile -t all_targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
if [[ $target == all ]]; then
    targets=("${all_targets[@]}")
elif printf '%s\n' "${all_targets[@]}" | grep -qx -- "$target"; then
    targets=("$target")
else
    echo "fuzz.sh: no target '$target'; the targets are: ${all_targets[*]}" >&2
    exit 2
fi

echo "fuzz.sh: building with $(cargo +nightly --version)"
if [[ $target == all ]]; then
    cargo +nightly fuzz build --fuzz-dir fuzz
else
    cargo +nightly fuzz build --fuzz-dir fuzz "$target"
fi

summary=()
failed=0
for name in "${targets[@]}"; do
    corpus="$repo/fuzz/corpus/$name"
    seeds="$repo/fuzz/seeds/$name"
    log="$repo/fuzz/artifacts/$name.log"
    mkdir -p "$corpus" "$repo/fuzz/artifacts/$name"
    regressions="$repo/fuzz/regressions/$name"
    inputs=("$corpus")
    [[ -d $seeds ]] && inputs+=("$seeds")
    [[ -d $regressions ]] && inputs+=("$regressions")
    echo "fuzz.sh: $name for $seconds s (log: ${log#"$repo"/})"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo +nightly fuzz run --fuzz-dir fuzz "$name" "${inputs[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cover=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    if [[ $status -eq 0 ]]; then
        result=ok
    else
        result="CRASH (exit $status): see $log and fuzz/artifacts/$name/"
        failed=1
        tail -n 30 "$log" >&2
    fi
    summary+=("$(printf '%-14s %6s s  %12s execs  cov %6s  %s' "$name" "$seconds" "${runs:-?}" "${cover:-?}" "$result")")
done

echo
echo "fuzz.sh summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
