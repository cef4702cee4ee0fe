"""Copies items to a view; an item with "hang": true never returns."""

import time

import azure.functions as func

app = func.FunctionApp()


@app.cosmos_db_trigger(arg_name="items", connection="CosmosDBConnection", database_name="faults", container_name="items", lease_container_name="leases", create_lease_container_if_not_exists=True, start_from_beginning=True)
@app.cosmos_db_output(arg_name="view", connection="CosmosDBConnection", database_name="faults", container_name="view", create_if_not_exists=True)
def copy_items(items: func.DocumentList, view: func.Out[func.Document]) -> None:
    if any(item.get("hang") for item in items):
        time.sleep(3600)
    view.set([func.Document.from_dict({"id": item["id"]}) for item in items])
