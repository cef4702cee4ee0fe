"""One change feed function and one HTTP function: the host runs the first and says why it skips the second."""

import azure.functions as func

app = func.FunctionApp()


@app.cosmos_db_trigger(arg_name="items", connection="CosmosDBConnection", database_name="config", container_name="items", lease_container_name="leases", create_lease_container_if_not_exists=True)
def on_items(items: func.DocumentList) -> None:
    pass


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello")
