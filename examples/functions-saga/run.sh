#!/usr/bin/env bash
# Runs function_app.py (with the filter in tributary.toml) against a `tributary serve` on
# localhost:8081:
#   1. makes .venv here with requirements.txt (once),
#   2. creates SagaDB with orders (partition key /customerId) and inventory (partition key /id)
#      if missing, and stocks sku-1 (5) and sku-2 (1) if they are not there,
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
from azure.cosmos import CosmosClient, PartitionKey, exceptions
settings = json.loads(pathlib.Path("local.settings.json").read_text())["Values"]
client = CosmosClient.from_connection_string(settings["CosmosDBConnection"], connection_verify=False)
database = client.create_database_if_not_exists("SagaDB")
database.create_container_if_not_exists("orders", PartitionKey("/customerId"))
inventory = database.create_container_if_not_exists("inventory", PartitionKey("/id"))
for sku, stock in (("sku-1", 5), ("sku-2", 1)):
    try:
        inventory.create_item({"id": sku, "stock": stock, "reservations": {}})
    except exceptions.CosmosResourceExistsError:
        pass
PY
exec "$tributary" functions run "$here"
