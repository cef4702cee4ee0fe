# function_app.py
# Replication between two accounts (two `tributary serve` instances, or Tributary and Azure
# Cosmos DB): every change to CatalogDB/Products on the source account is upserted into the same
# container on the target account.
#
# - The trigger reads the source (CosmosDBConnection); its leases live on the source too.
# - The output binding's `connection` names a second setting, TargetConnection: the host writes
#   the outputs to that account. It creates CatalogDB/Products there if missing, with the
#   source's partition key (/category).
# - Upserts of whole documents are idempotent: a change delivered again writes the same document
#   again, and each document's changes arrive in order (one partition key, one lease), so the
#   target ends with the source's latest version.
# - Deletes are not replicated: the change feed this trigger reads (latest version) has no
#   deletes. Delete softly (an update that sets "deleted": true) if the target must follow.
import logging

import azure.functions as func

app = func.FunctionApp()

# Written by the source account on every document; the target sets its own.
SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")


@app.cosmos_db_trigger(
    arg_name="changes",
    container_name="Products",
    database_name="CatalogDB",
    connection="CosmosDBConnection",
    lease_container_name="leases",
    create_lease_container_if_not_exists=True,
    # The first run copies what the source already has, then follows its changes.
    start_from_beginning=True,
)
@app.cosmos_db_output(
    arg_name="replicas",
    connection="TargetConnection",
    database_name="CatalogDB",
    container_name="Products",
    create_if_not_exists=True,
    partition_key="/category",
)
def replicate_products(changes: func.DocumentList, replicas: func.Out[func.DocumentList]):
    copies = []
    for change in changes:
        document = {key: value for key, value in change.to_dict().items() if key not in SYSTEM_PROPERTIES}
        copies.append(func.Document.from_dict(document))
    replicas.set(func.DocumentList(copies))
    logging.info(f"replicated {len(copies)} changes: {', '.join(doc['id'] for doc in copies)}")
