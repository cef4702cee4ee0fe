# function_app.py
# Event sourcing: `events` is append-only (one document per event, id "<streamId>-<version>",
# partition key /streamId; append.py writes them with optimistic concurrency). This function
# projects the events into `projections`: one document per stream with its current state and the
# version of the last event applied to it.
#
# Redelivery is harmless: events are applied in version order, and an event whose version is not
# above the projection's `version` is already in it and is skipped. A projection that nothing
# changed is not written.
import logging

import azure.functions as func

from account import apply_event, initial_state

app = func.FunctionApp()

DATABASE = "EventsDB"


@app.cosmos_db_trigger(
    arg_name="events",
    container_name="events",
    database_name=DATABASE,
    connection="CosmosDBConnection",
    lease_container_name="leases",
    create_lease_container_if_not_exists=True,
    # A projection is built from the whole history when it is first deployed.
    start_from_beginning=True,
)
# The projections as they are now (an input binding reads a fixed query: the whole container,
# one small document per stream).
@app.cosmos_db_input(
    arg_name="current",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="projections",
    sql_query="SELECT * FROM c",
)
@app.cosmos_db_output(
    arg_name="projections",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="projections",
    create_if_not_exists=True,
    partition_key="/streamId",
)
def project_accounts(events: func.DocumentList, current: func.DocumentList, projections: func.Out[func.DocumentList]):
    # Without the system properties (_rid, _etag, _ts, ...): the documents are written back.
    states = {doc["id"]: {k: v for k, v in doc.to_dict().items() if not k.startswith("_")} for doc in current}
    changed = {}
    applied = skipped = 0
    batch = [event.to_dict() for event in events]
    # Within a stream the feed is in append order already; sorting makes the rule explicit.
    for event in sorted(batch, key=lambda event: (event["streamId"], event["version"])):
        stream_id, version = event["streamId"], event["version"]
        state = changed.get(stream_id) or states.get(stream_id) or initial_state(stream_id)
        if version <= state["version"]:
            skipped += 1  # already projected: a redelivery
            continue
        if version != state["version"] + 1:
            # An event is missing (a writer skipped a version): applying this one would build a
            # wrong state. Logged, not raised: the projection stays at its version, visibly.
            logging.error(f"stream {stream_id}: event version {version} follows version {state['version']}; not applied")
            continue
        changed[stream_id] = apply_event(state, event)
        applied += 1

    logging.info(f"{len(batch)} events: {applied} applied, {skipped} already projected")
    if changed:
        projections.set(func.DocumentList([func.Document.from_dict(state) for state in changed.values()]))
