#!/usr/bin/env bash
# Runs function_app.py between two `tributary serve` instances, the source on localhost:8081 and
# the target on localhost:8082 (CosmosDBConnection and TargetConnection in local.settings.json):
#   1. makes .venv here with requirements.txt (once),
#   2. creates CatalogDB with Products (partition key /category) on the source if missing (the
#      function creates it on the target),
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
database = client.create_database_if_not_exists("CatalogDB")
database.create_container_if_not_exists("Products", PartitionKey("/category"))
PY
exec "$tributary" functions run "$here"
