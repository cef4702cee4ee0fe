#!/usr/bin/env bash
# Runs function_app.py against a `tributary serve` on localhost:8081:
#   1. makes .venv here with requirements.txt and azure-cosmos (for append.py) (once),
#   2. creates EventsDB with events (partition key /streamId) if missing,
#   3. runs `tributary functions run` on this directory until Ctrl-C.
# TRIBUTARY (default: `tributary` on PATH, else target/release/tributary) names the binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
tributary=${TRIBUTARY:-$(command -v tributary || echo "$here/../../target/release/tributary")}
if [[ ! -x $here/.venv/bin/python ]]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" azure-cosmos
fi
"$here/.venv/bin/python" - <<'PY'
import json, pathlib
from azure.cosmos import CosmosClient, PartitionKey
settings = json.loads(pathlib.Path("local.settings.json").read_text())["Values"]
client = CosmosClient.from_connection_string(settings["CosmosDBConnection"], connection_verify=False)
database = client.create_database_if_not_exists("EventsDB")
database.create_container_if_not_exists("events", PartitionKey("/streamId"))
PY
exec "$tributary" functions run "$here"
