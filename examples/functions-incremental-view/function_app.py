# function_app.py
# An incremental materialized view: per-customer order totals that stay exact when a change is
# retried or delivered again (the change feed delivers at least once).
#
# Each view document records every order's contribution, keyed by order id, with the `_lsn` of
# the order version it came from:
#
#   {"id": "c1", "customerId": "c1", "orderCount": 2, "total": 60,
#    "orders": {"o1": {"total": 40, "status": "placed", "lsn": 7},
#               "o2": {"total": 20, "status": "placed", "lsn": 3}}}
#
# Applying a change *replaces* that order's entry (an update never adds to the old amount), and
# a version whose `_lsn` is not newer than the recorded one is skipped (the same version again,
# or an older one such as a replayed dead letter). The sums are recomputed from the map, so the
# document is a pure function of the latest version of each order: a redelivered batch leaves it
# unchanged, and the function then writes nothing at all.
import copy
import logging

import azure.functions as func

app = func.FunctionApp()

DATABASE = "ShopDB"
# Orders that count towards the totals: every status but these.
NOT_COUNTED = {"cancelled"}


@app.cosmos_db_trigger(
    arg_name="orders",
    container_name="Orders",
    database_name=DATABASE,
    connection="CosmosDBConnection",
    lease_container_name="leases",
    create_lease_container_if_not_exists=True,
)
# The view as it is now. An input binding reads a fixed query, not one per change, so it reads
# the whole (small: one document per customer) view container before each batch.
@app.cosmos_db_input(
    arg_name="totals",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="CustomerTotals",
    sql_query="SELECT * FROM c",
)
@app.cosmos_db_output(
    arg_name="updated",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="CustomerTotals",
    create_if_not_exists=True,
    partition_key="/customerId",
)
def update_customer_totals(orders: func.DocumentList, totals: func.DocumentList, updated: func.Out[func.DocumentList]):
    # Without the system properties (_rid, _etag, _ts, ...): the documents are written back.
    views = {view["id"]: {k: v for k, v in view.to_dict().items() if not k.startswith("_")} for view in totals}
    changed = {}
    applied = 0
    for document in orders:
        order = document.to_dict()
        customer_id, order_id = order.get("customerId"), order.get("id")
        if not customer_id or not order_id:
            # Raising would retry the batch and then split it; a malformed order is only logged.
            logging.warning(f"order {order_id!r} has no customerId; not counted")
            continue
        view = changed.get(customer_id) or copy.deepcopy(views.get(customer_id)) or new_view(customer_id)
        if apply_order(view, order):
            applied += 1
            changed[customer_id] = view

    logging.info(f"{len(orders)} order changes: {applied} applied, {len(orders) - applied} already in the view")
    if changed:
        updated.set(func.DocumentList([func.Document.from_dict(view) for view in changed.values()]))


def new_view(customer_id):
    return {"id": customer_id, "customerId": customer_id, "orderCount": 0, "total": 0, "orders": {}}


def apply_order(view, order):
    """Puts the order's current version in the view; False if this version (or a newer one) is in it."""
    lsn = order.get("_lsn", 0)
    recorded = view["orders"].get(order["id"])
    if recorded is not None and recorded.get("lsn", 0) >= lsn:
        return False
    view["orders"][order["id"]] = {"total": order.get("total", 0), "status": order.get("status", "placed"), "lsn": lsn}
    counted = [entry for _, entry in sorted(view["orders"].items()) if entry["status"] not in NOT_COUNTED]
    view["orderCount"] = len(counted)
    view["total"] = round(sum(entry["total"] for entry in counted), 2)
    return True
