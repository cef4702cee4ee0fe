#!/usr/bin/env bash
# Starts `tributary serve` (plain HTTP, relaxed durability, a fresh data dir) and runs
# scan_stall.py against it. Usage: bench/scan-stall/run.sh [BINARY] (default
# target/release/tributary). Needs ../shared/peers for run_tributary.py's import.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../target/release/tributary}
DIR=$(mktemp -d /tmp/scan-stall-XXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEY=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(64)).decode())')
TRIBUTARY_KEY=$KEY RUST_LOG=warn "$BIN" serve --http --addr 127.0.0.1 --port "$PORT" \
  --data-dir "$DIR/data" --durability relaxed > "$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
PYTHONDONTWRITEBYTECODE=1 python3 "$HERE/scan_stall.py" "$PORT" "$KEY"
