"""Copies items to a view; lease intervals short enough for a test of hosts joining and dying."""

import os

import azure.functions as func

app = func.FunctionApp()


@app.cosmos_db_trigger(arg_name="items", connection="CosmosDBConnection", database_name="faults", container_name="items", lease_container_name="leases", create_lease_container_if_not_exists=True, start_from_beginning=True, lease_acquire_interval=300, lease_renew_interval=300, lease_expiration_interval=2000)
@app.cosmos_db_output(arg_name="view", connection="CosmosDBConnection", database_name="faults", container_name="view", create_if_not_exists=True)
def copy_items(items: func.DocumentList, view: func.Out[func.Document]) -> None:
    host = os.environ["HOST_LABEL"]
    view.set([func.Document.from_dict({"id": item["id"], "host": host}) for item in items])
