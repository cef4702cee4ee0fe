"""Appends every event id to one `total` document: read with an input binding, written back with
an output binding. Run inside `tributary serve --functions`, the write commits with the lease
checkpoint, so after any crash each id is in the list exactly once."""

import logging
import os
import time

import azure.functions as func

app = func.FunctionApp()


@app.cosmos_db_trigger(arg_name="events", connection="CosmosDBConnection", database_name="faults", container_name="events", lease_container_name="leases", create_lease_container_if_not_exists=True, start_from_beginning=True, max_items_per_invocation=5, lease_acquire_interval=300, lease_renew_interval=500, lease_expiration_interval=2000)
@app.cosmos_db_input(arg_name="current", connection="CosmosDBConnection", database_name="faults", container_name="counts", id="total", partition_key="total")
@app.cosmos_db_output(arg_name="total", connection="CosmosDBConnection", database_name="faults", container_name="counts", create_if_not_exists=True)
def count_events(events: func.DocumentList, current: func.DocumentList, total: func.Out[func.Document]) -> None:
    previous = current[0].to_dict() if current else {"id": "total", "ids": []}
    ids = [event["id"] for event in events]
    logging.info("counting %s", ",".join(ids))
    # The test kills the host while this batch is in hand.
    if os.environ.get("HOLD_EVENT") in ids:
        time.sleep(30)
    total.set(func.Document.from_dict({"id": "total", "ids": previous["ids"] + ids}))
