# An app that exercises what the seed app does not: async def, a retry policy, an input binding,
# a context parameter, per-item failures, a blueprint, logging and printing, and output values of
# every shape. The tests in ../../test_worker.py drive it through the worker.
import asyncio
import datetime
import json
import logging
import subprocess
import sys
import threading

import azure.functions as func

app = func.FunctionApp()
print("function_app.py imported")

COSMOS = {"database_name": "Shop", "connection": "CosmosDBConnection"}


@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:01")
@app.cosmos_db_trigger(arg_name="orders", container_name="Orders",
                       lease_container_name="enrich-leases", max_items_per_invocation=10, **COSMOS)
@app.cosmos_db_input(arg_name="products", container_name="Products",
                     sql_query="SELECT * FROM p", **COSMOS)
@app.cosmos_db_output(arg_name="enriched", container_name="EnrichedOrders", **COSMOS)
async def enrich_orders(orders: func.DocumentList, products: func.DocumentList,
                        enriched: func.Out[func.DocumentList], context: func.Context):
    await asyncio.sleep(0)
    logging.info(f"context {context.invocation_id} {context.function_name} "
                 f"{context.function_directory}")
    names = {product["id"]: product["name"] for product in products}
    enriched.set(func.DocumentList(
        func.Document.from_dict({"id": order["id"], "product": names[order["productId"]]})
        for order in orders))


partner_arrived = threading.Event()
async_partner_arrived = asyncio.Event()


@app.cosmos_db_trigger(arg_name="documents", container_name="Rendezvous",
                       lease_container_name="rendezvous-leases", **COSMOS)
def wait_for_partner(documents: func.DocumentList):
    """The first invocation waits until a second one runs beside it."""
    document = documents[0]
    if document["role"] == "first":
        logging.info("first is waiting")
        if not partner_arrived.wait(timeout=document["wait_s"]):
            raise TimeoutError("no partner ran while the first invocation waited")
        logging.info("first is released")
    else:
        logging.info("second is running")
        partner_arrived.set()


@app.cosmos_db_trigger(arg_name="documents", container_name="Rendezvous",
                       lease_container_name="async-rendezvous-leases", **COSMOS)
async def wait_for_partner_async(documents: func.DocumentList):
    document = documents[0]
    if document["role"] == "first":
        logging.info("first is waiting")
        await asyncio.wait_for(async_partner_arrived.wait(), timeout=document["wait_s"])
        logging.info("first is released")
    else:
        logging.info("second is running")
        async_partner_arrived.set()


@app.cosmos_db_trigger(arg_name="documents", container_name="Chatty",
                       lease_container_name="chatty-leases", **COSMOS)
def log_and_print(documents: func.DocumentList):
    logging.debug("not sent: the root logger's level is info")
    logging.warning("a warning")
    logging.getLogger("app.orders").error("an error from a named logger")
    print("printed", len(documents), "documents")
    print("a partial line", end="")
    print(" finished")
    subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)


@app.cosmos_db_trigger(arg_name="documents", container_name="Outputs",
                       lease_container_name="output-leases", **COSMOS)
@app.cosmos_db_output(arg_name="out", container_name="Written", **COSMOS)
def set_output(documents: func.DocumentList, out: func.Out[func.Document]):
    """Sets `out` to the value that the first document's `shape` names."""
    shape = documents[0]["shape"]
    values = {
        "dict": {"id": "d1"},
        "json_object": json.dumps({"id": "j1"}),
        "json_array": json.dumps([{"id": "j1"}, {"id": "j2"}]),
        "list_of_mixed": [func.Document.from_dict({"id": "m1"}), {"id": "m2"}, '{"id": "m3"}'],
        "number": 42,
        "not_json": "{",
        "datetime": {"id": "t1", "at": datetime.datetime(2026, 1, 1)},
        "unset": None,
    }
    if shape != "unset":
        out.set(values[shape])
    return {"ignored": "a return value without batchItemFailures"}


blueprint = func.Blueprint()


@blueprint.cosmos_db_trigger(arg_name="documents", container_name="Orders",
                             lease_container_name="validate-leases", **COSMOS)
def validate_orders(documents: func.DocumentList):
    """Reports orders without a total as failed instead of raising."""
    return {"batchItemFailures": [{"itemIdentifier": document["id"]}
                                  for document in documents if "total" not in document]}


app.register_functions(blueprint)
