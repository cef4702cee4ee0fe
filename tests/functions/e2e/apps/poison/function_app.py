"""Copies items to a view; an item with "poison": true makes the whole batch fail."""

import azure.functions as func

app = func.FunctionApp()


@app.retry(strategy="fixed_delay", max_retry_count="1", delay_interval="00:00:01")
@app.cosmos_db_trigger(arg_name="items", connection="CosmosDBConnection", database_name="faults", container_name="items", lease_container_name="leases", create_lease_container_if_not_exists=True, start_from_beginning=True)
@app.cosmos_db_output(arg_name="view", connection="CosmosDBConnection", database_name="faults", container_name="view", create_if_not_exists=True)
def copy_items(items: func.DocumentList, view: func.Out[func.Document]) -> None:
    for item in items:
        if item.get("poison"):
            raise ValueError(f"item {item['id']} is poison")
    view.set([func.Document.from_dict({"id": item["id"], "n": item["n"]}) for item in items])
