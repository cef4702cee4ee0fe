# shellcheck shell=bash
# Starting and stopping `tributary serve` for the SDK tests.
#
# Every server gets a name; its files live in one run directory:
#   <run dir>/<name>.pid       process id (what stop_all_servers reads, e.g. from a trap)
#   <run dir>/<name>.log       everything the server printed
#   <run dir>/<name>.endpoint  the URL from its `endpoint: <url>` line
#   <run dir>/<name>.key       the key from its `key: <key>` line
#   <run dir>/<name>.readonly-key  the key from its `read-only key: <key>` line (empty if none)
#   <run dir>/<name>-data/     its --data-dir
# Keeping state in files lets stages that run in subshells find the servers, and lets the
# EXIT trap stop exactly the processes this script started.

# How long a server may take to print its endpoint and accept connections.
SERVER_READY_TIMEOUT_S=${SERVER_READY_TIMEOUT_S:-60}
# How long a server may take to exit after SIGTERM before it gets SIGKILL.
SERVER_STOP_TIMEOUT_S=${SERVER_STOP_TIMEOUT_S:-10}
# Attempts to start on a fresh port (another process can take a free port before we bind it).
SERVER_START_ATTEMPTS=3

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# process_alive PID: true while the process runs. A zombie counts as gone: a server started
# in a subshell stage is reparented when the subshell ends, and PID 1 may be slow to reap it.
process_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -E 's/.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null || true)
    [[ $state != Z ]]
}

# port_is_open HOST PORT: true when something accepts TCP connections there.
port_is_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_S: waits until the port accepts connections.
wait_for_port() {
    local host=$1 port=$2 timeout_s=$3
    local deadline=$((SECONDS + timeout_s))
    until port_is_open "$host" "$port"; do
        if ((SECONDS >= deadline)); then
            echo "nothing listens on $host:$port after ${timeout_s}s" >&2
            return 1
        fi
        sleep 0.2
    done
}

# printed_value LOG LABEL: the first whitespace-free word after "LABEL: " at the start of a line
# of the log, if any (so `key` is not read from a `read-only key: ...` line). Succeeds with no
# output when the label was not printed (yet), also under `set -e -o pipefail`.
printed_value() {
    { grep -oE "^$2: [^[:space:]]+" "$1" 2>/dev/null || true; } | head -n 1 | sed -E "s/^$2: //"
}

# start_server NAME RUN_DIR BINARY [EXTRA SERVE ARGS...]
# Starts `BINARY serve` on a free port of 127.0.0.1 with its own data dir and relaxed
# durability, waits until it printed its endpoint and accepts connections, and records it.
start_server() {
    local name=$1 run_dir=$2 binary=$3
    shift 3
    local log="$run_dir/$name.log" data_dir="$run_dir/$name-data"
    local attempt port pid endpoint key readonly_key deadline
    mkdir -p "$data_dir"
    for ((attempt = 1; attempt <= SERVER_START_ATTEMPTS; attempt++)); do
        port=$(free_port)
        "$binary" serve --addr 127.0.0.1 --port "$port" --data-dir "$data_dir" --durability relaxed "$@" \
            >"$log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$run_dir/$name.pid"
        deadline=$((SECONDS + SERVER_READY_TIMEOUT_S))
        endpoint=""
        while process_alive "$pid" && ((SECONDS < deadline)); do
            endpoint=$(printed_value "$log" endpoint)
            if [[ -n $endpoint ]] && port_is_open 127.0.0.1 "$port"; then
                break
            fi
            sleep 0.2
        done
        if [[ -n $endpoint ]] && process_alive "$pid" && port_is_open 127.0.0.1 "$port"; then
            key=$(printed_value "$log" key)
            readonly_key=$(printed_value "$log" "read-only key")
            echo "$endpoint" >"$run_dir/$name.endpoint"
            echo "${key:-}" >"$run_dir/$name.key"
            echo "${readonly_key:-}" >"$run_dir/$name.readonly-key"
            echo "server $name: pid $pid, $endpoint (log: $log)"
            return 0
        fi
        echo "server $name did not become ready on port $port (attempt $attempt); its output:" >&2
        tail -n 20 "$log" >&2 || true
        stop_server "$name" "$run_dir"
    done
    return 1
}

# server_endpoint NAME RUN_DIR / server_key NAME RUN_DIR / server_readonly_key NAME RUN_DIR:
# what the server printed (the read-only key is empty for a server that has none).
server_endpoint() {
    cat "$2/$1.endpoint"
}
server_key() {
    cat "$2/$1.key"
}
server_readonly_key() {
    cat "$2/$1.readonly-key"
}

# stop_server NAME RUN_DIR: SIGTERM, then SIGKILL after SERVER_STOP_TIMEOUT_S.
stop_server() {
    local name=$1 run_dir=$2
    local pid_file="$run_dir/$name.pid" pid deadline
    [[ -f $pid_file ]] || return 0
    pid=$(cat "$pid_file")
    rm -f "$pid_file"
    process_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + SERVER_STOP_TIMEOUT_S))
    while process_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            echo "server $name (pid $pid) ignored SIGTERM for ${SERVER_STOP_TIMEOUT_S}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

# stop_all_servers RUN_DIR: stops every server that has a pid file in RUN_DIR.
stop_all_servers() {
    local run_dir=$1 pid_file
    [[ -d $run_dir ]] || return 0
    for pid_file in "$run_dir"/*.pid; do
        [[ -e $pid_file ]] || continue
        stop_server "$(basename "$pid_file" .pid)" "$run_dir"
    done
}
