# shellcheck shell=bash
# Stage bookkeeping for scripts/test.sh: a banner before each stage, its result and duration
# after it, and a summary table at the end.
#
# A stage is a shell function (or command) run in a subshell with `set -e` in force, so the
# first failing command ends the stage but never the whole script; the caller decides what a
# failure means for later stages. Name stages with single words: `TRIBUTARY_SKIP_STAGES`
# (space-separated names) skips them, which is handy when iterating locally.

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_SECONDS=()

# Milliseconds since the epoch.
now_ms() {
    date +%s%3N
}

# Formats a millisecond duration as seconds with one decimal.
format_ms() {
    local ms=$1
    printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# Prints a banner that stands out in a long CI log.
banner() {
    printf '\n==================== %s ====================\n' "$*"
}

# True when the stage was named in TRIBUTARY_SKIP_STAGES.
stage_is_skipped() {
    [[ " ${TRIBUTARY_SKIP_STAGES:-} " == *" $1 "* ]]
}

# Records a stage outcome without running anything (e.g. blocked by an earlier failure).
record_stage() {
    local name=$1 result=$2
    STAGE_NAMES+=("$name")
    STAGE_RESULTS+=("$result")
    STAGE_SECONDS+=("-")
    printf -- '---- %s: %s\n' "$name" "$result"
}

# run_stage NAME COMMAND [ARGS...]
# Runs COMMAND as stage NAME and returns its exit status (0 when skipped).
run_stage() {
    local name=$1
    shift
    if stage_is_skipped "$name"; then
        record_stage "$name" "skipped (TRIBUTARY_SKIP_STAGES)"
        return 0
    fi
    banner "$name"
    local started status
    started=$(now_ms)
    set +e
    (
        set -e
        "$@"
    )
    status=$?
    set -e
    local took=$(($(now_ms) - started))
    local result=ok
    if ((status != 0)); then
        result="FAILED (exit $status)"
    fi
    STAGE_NAMES+=("$name")
    STAGE_RESULTS+=("$result")
    STAGE_SECONDS+=("$(format_ms "$took")")
    printf -- '---- %s: %s in %s\n' "$name" "$result" "$(format_ms "$took")"
    return "$status"
}

# Prints every stage with its result and duration; returns 1 if any stage failed or was blocked.
print_stage_summary() {
    local failed=0 index
    banner "summary"
    for index in "${!STAGE_NAMES[@]}"; do
        printf '  %-16s %-8s %s\n' "${STAGE_NAMES[$index]}" "${STAGE_SECONDS[$index]}" "${STAGE_RESULTS[$index]}"
        case ${STAGE_RESULTS[$index]} in
            ok | skipped*) ;;
            *) failed=1 ;;
        esac
    done
    return "$failed"
}

# Stages run in the background: start_stage NAME COMMAND [ARGS...] starts one, its output going
# to a log under STAGE_DIR; collect_stage NAME waits for it, prints its log, records its result
# like run_stage and returns its exit status. Independent stages overlap this way (package
# installs while Rust compiles, the SDK suite beside the scenario tests).
declare -A STAGE_PIDS=()
declare -A STAGE_STARTED=()

start_stage() {
    local name=$1
    shift
    if stage_is_skipped "$name"; then
        STAGE_PIDS[$name]=skipped
        return 0
    fi
    printf -- '---- %s: started in the background\n' "$name"
    STAGE_STARTED[$name]=$(now_ms)
    (
        set +e
        (
            set -e
            "$@"
        ) >"${STAGE_DIR:?}/$name.log" 2>&1
        echo $? >"$STAGE_DIR/$name.status"
    ) &
    STAGE_PIDS[$name]=$!
}

collect_stage() {
    local name=$1
    local pid=${STAGE_PIDS[$name]:-}
    if [[ -z $pid ]]; then
        record_stage "$name" "not run: never started"
        return 1
    fi
    if [[ $pid == skipped ]]; then
        record_stage "$name" "skipped (TRIBUTARY_SKIP_STAGES)"
        return 0
    fi
    wait "$pid" || true
    local took=$(($(now_ms) - STAGE_STARTED[$name]))
    banner "$name (ran in the background)"
    cat "$STAGE_DIR/$name.log" 2>/dev/null || true
    local status
    status=$(cat "$STAGE_DIR/$name.status" 2>/dev/null || echo 1)
    local result=ok
    if ((status != 0)); then
        result="FAILED (exit $status)"
    fi
    STAGE_NAMES+=("$name")
    STAGE_RESULTS+=("$result")
    STAGE_SECONDS+=("$(format_ms "$took")")
    printf -- '---- %s: %s in %s (wall time, overlapping other stages)\n' "$name" "$result" "$(format_ms "$took")"
    return "$status"
}
