# function_app.py
# A saga step with compensation: an order placed in SagaDB/orders reserves stock in
# SagaDB/inventory. If the stock covers it, the step decrements the stock and moves the order to
# `reserved`; if not (or the SKU is unknown, or the quantity is not a positive whole number), it
# compensates: the order moves to `rejected`, with the reason, and the stock is untouched.
#
# Orders:    {"id": "o1", "customerId": "c1", "sku": "sku-1", "quantity": 3, "status": "placed"}
# Inventory: {"id": "sku-1", "stock": 2, "reservations": {"o1": 3}}
#
# - The step writes the order back to the container that triggers it, so its own updates come
#   back on the feed. tributary.toml gives the function Tributary's feed filter
#   `c.status = 'placed'`: those updates are skipped before Python is invoked. The function still
#   ignores orders that are not `placed`, so the app is also correct where there is no filter
#   (on Azure).
# - `reservations` records which orders the stock was decremented for: a `placed` order delivered
#   again after its reservation was written (the change feed is at least once) is not reserved
#   twice.
# - The inventory output binding is the last decorator, so it is first in the function's bindings.
#   Where the outputs do not commit with the lease checkpoint in one transaction, the host writes
#   them binding by binding, the stock before the orders: an interruption between the two writes
#   leaves the order `placed`, and the redelivered order finds its reservation.
# - The function never raises on an order: a raised error makes the host retry and then split
#   the batch, and every part is invoked with the inventory as read before the batch, which
#   would lose the first part's decrements.
import copy
import logging

import azure.functions as func

app = func.FunctionApp()

DATABASE = "SagaDB"


@app.cosmos_db_trigger(
    arg_name="orders",
    container_name="orders",
    database_name=DATABASE,
    connection="CosmosDBConnection",
    lease_container_name="leases",
    create_lease_container_if_not_exists=True,
)
# The stock as it is now: an input binding reads a fixed query, here the whole (small) inventory.
@app.cosmos_db_input(
    arg_name="inventory",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="inventory",
    sql_query="SELECT * FROM c",
)
@app.cosmos_db_output(
    arg_name="order_updates",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="orders",
)
@app.cosmos_db_output(
    arg_name="stock_updates",
    connection="CosmosDBConnection",
    database_name=DATABASE,
    container_name="inventory",
)
def reserve_inventory(orders: func.DocumentList, inventory: func.DocumentList,
                      stock_updates: func.Out[func.DocumentList], order_updates: func.Out[func.DocumentList]):
    items = {item["id"]: without_system_properties(item.to_dict()) for item in inventory}
    changed_items = {}
    decided = []
    n_ignored = 0
    for document in orders:
        order = without_system_properties(document.to_dict())
        if order.get("status") != "placed":
            n_ignored += 1  # a later state, such as this step's own update: not this step's work
            continue
        sku, quantity = order.get("sku"), order.get("quantity")
        item = changed_items.get(sku) or copy.deepcopy(items.get(sku))
        if item is None:
            decided.append(reject(order, f"unknown sku {sku!r}"))
            continue
        reservations = item.setdefault("reservations", {})
        if order["id"] in reservations:
            # Reserved before (the inventory was written, the order update was not): no second decrement.
            decided.append(dict(order, status="reserved"))
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            decided.append(reject(order, f"quantity {quantity!r} is not a positive whole number"))
        elif item.get("stock", 0) < quantity:
            decided.append(reject(order, f"insufficient stock: {item.get('stock', 0)} of {sku} left, {quantity} ordered"))
        else:
            item["stock"] -= quantity
            reservations[order["id"]] = quantity
            changed_items[sku] = item
            decided.append(dict(order, status="reserved"))

    n_reserved = sum(order["status"] == "reserved" for order in decided)
    logging.info(f"{len(decided)} placed orders: {n_reserved} reserved, {len(decided) - n_reserved} rejected")
    if n_ignored:
        logging.info(f"ignored {n_ignored} orders that are not placed")
    if changed_items:
        stock_updates.set(func.DocumentList([func.Document.from_dict(item) for item in changed_items.values()]))
    if decided:
        order_updates.set(func.DocumentList([func.Document.from_dict(order) for order in decided]))


def reject(order, reason):
    """The compensation: the order is rejected, the stock is not touched."""
    logging.warning(f"order {order['id']} rejected: {reason}")
    return dict(order, status="rejected", reason=reason)


def without_system_properties(document):
    # _rid, _etag, _ts, ... : the documents are written back.
    return {key: value for key, value in document.items() if not key.startswith("_")}
