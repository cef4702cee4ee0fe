import azure.functions as func

blueprint = func.Blueprint()


@blueprint.cosmos_db_trigger(arg_name="documents", container_name="Orders", database_name="Shop",
                             connection="CosmosDBConnection", lease_container_name="leases")
def handle(documents: func.DocumentList):
    pass
