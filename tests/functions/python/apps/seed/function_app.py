# function_app.py
# Azure Functions app with Cosmos DB trigger for change feed processing
import azure.functions as func
import json
import logging
from datetime import datetime

app = func.FunctionApp()

@app.cosmos_db_trigger(
    arg_name="documents",
    container_name="Orders",
    database_name="ECommerceDB",
    connection="CosmosDBConnection",
    lease_container_name="leases",
    create_lease_container_if_not_exists=True,
)
@app.cosmos_db_output(
    arg_name="outputDoc",
    container_name="CustomerSummaries",
    database_name="ECommerceDB",
    connection="CosmosDBConnection",
    create_if_not_exists=True,
)
def materialize_customer_summary(documents: func.DocumentList, outputDoc: func.Out[func.Document]):
    """
    Triggered when orders are created or updated.
    Materializes a customer summary document with order totals.
    """
    if not documents:
        return

    logging.info(f"Processing {len(documents)} order changes")

    # Group changes by customer
    customer_updates = {}
    for doc in documents:
        order = doc.to_dict()
        customer_id = order.get("customerId")

        if customer_id not in customer_updates:
            customer_updates[customer_id] = {
                "orders": [],
                "total_spent": 0,
            }

        customer_updates[customer_id]["orders"].append({
            "orderId": order["id"],
            "total": order.get("total", 0),
            "status": order.get("status", "unknown"),
        })
        customer_updates[customer_id]["total_spent"] += order.get("total", 0)

    # Write a summary document for each customer
    summaries = []
    for customer_id, data in customer_updates.items():
        summary = {
            "id": f"summary-{customer_id}",
            "customerId": customer_id,
            "recentOrders": data["orders"][-10:],  # Keep last 10 orders
            "totalSpent": data["total_spent"],
            "lastUpdated": datetime.utcnow().isoformat(),
        }
        summaries.append(func.Document.from_dict(summary))

    # The output binding writes these to the CustomerSummaries container
    outputDoc.set(summaries[0] if len(summaries) == 1 else summaries)
    logging.info(f"Updated summaries for {len(customer_updates)} customers")

@app.cosmos_db_trigger(
    arg_name="documents",
    container_name="Orders",
    database_name="ECommerceDB",
    connection="CosmosDBConnection",
    lease_container_name="notification-leases",
    create_lease_container_if_not_exists=True,
)
def send_order_notifications(documents: func.DocumentList):
    """
    Watches for order status changes and sends notifications.
    Uses a separate lease container so it processes the feed independently.
    """
    if not documents:
        return

    for doc in documents:
        order = doc.to_dict()
        status = order.get("status", "")
        customer_id = order.get("customerId", "")
        order_id = order.get("id", "")

        # Only send notifications for specific status changes
        if status in ("shipped", "delivered", "cancelled"):
            notification = {
                "customerId": customer_id,
                "orderId": order_id,
                "status": status,
                "message": get_notification_message(status, order_id),
            }

            logging.info(f"Sending notification for order {order_id}: {status}")
            # In production, send this to a notification service
            # For example: send to Azure Service Bus, SendGrid, or Azure Notification Hubs
            send_notification(notification)

def get_notification_message(status, order_id):
    """Generate a human-readable notification message."""
    messages = {
        "shipped": f"Your order {order_id} has been shipped and is on its way.",
        "delivered": f"Your order {order_id} has been delivered.",
        "cancelled": f"Your order {order_id} has been cancelled.",
    }
    return messages.get(status, f"Your order {order_id} status updated to {status}.")

def send_notification(notification):
    """Placeholder for actual notification sending logic."""
    logging.info(f"Notification: {json.dumps(notification)}")

import os
import requests

@app.cosmos_db_trigger(
    arg_name="documents",
    container_name="Products",
    database_name="ECommerceDB",
    connection="CosmosDBConnection",
    lease_container_name="sync-leases",
    create_lease_container_if_not_exists=True,
    max_items_per_invocation=100,  # Process up to 100 changes at once
    start_from_beginning=False,     # Only process new changes
)
def sync_to_search_index(documents: func.DocumentList):
    """
    Sync product changes to an external search index.
    Processes changes in batches for efficiency.
    """
    if not documents:
        return

    logging.info(f"Syncing {len(documents)} product changes to search index")

    # Build a batch of updates for the search index
    batch = []
    for doc in documents:
        product = doc.to_dict()

        # Transform the Cosmos DB document into the search index format
        search_doc = {
            "id": product["id"],
            "name": product.get("name", ""),
            "description": product.get("description", ""),
            "category": product.get("category", ""),
            "price": product.get("price", 0),
            "tags": product.get("tags", []),
            "inStock": product.get("stockCount", 0) > 0,
        }
        batch.append(search_doc)

    # Send the batch to the search service
    try:
        search_endpoint = os.environ.get("SEARCH_ENDPOINT")
        search_key = os.environ.get("SEARCH_API_KEY")

        if search_endpoint:
            response = requests.post(
                f"{search_endpoint}/indexes/products/docs/index",
                headers={
                    "Content-Type": "application/json",
                    "api-key": search_key,
                },
                json={"value": [{"@search.action": "mergeOrUpload", **doc} for doc in batch]},
            )
            logging.info(f"Search index response: {response.status_code}")
        else:
            logging.warning("SEARCH_ENDPOINT not configured, skipping sync")
    except Exception as e:
        logging.error(f"Failed to sync to search index: {e}")
        raise  # Re-raise to trigger function retry
