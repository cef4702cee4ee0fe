#!/usr/bin/env bash
# Runs the Node.js example against a `tributary serve` on localhost:8081 (the account in
# local.settings.json; start one with `tributary serve`):
#   1. creates the database shop and its container orders if missing (node cosmos.js setup;
#      the host creates the lease, view and dead-letter containers itself),
#   2. runs `tributary functions run` on this directory until Ctrl-C.
# Needs Node.js 16 or later on PATH, nothing from npm.
# TRIBUTARY (default: `tributary` on PATH, else target/release/tributary) names the binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
command -v node >/dev/null || { echo "run.sh: node is not on PATH" >&2; exit 1; }
tributary=${TRIBUTARY:-$(command -v tributary || echo "$here/../../target/release/tributary")}
node cosmos.js setup
exec "$tributary" functions run "$here"
