"""The account resource (``GET /``) and master-key authentication."""

import base64
import os

import pytest
from azure.cosmos import CosmosClient, exceptions

import cosmos_support


def test_account_read_reports_locations_and_session_consistency(client: CosmosClient) -> None:
    account = client.get_database_account()

    assert account.WritableLocations, "the account must list at least one writable location"
    assert account.ReadableLocations, "the account must list at least one readable location"
    for location in account.WritableLocations + account.ReadableLocations:
        assert location["name"]
        assert location["databaseAccountEndpoint"].startswith(("http://", "https://"))
    assert account.ConsistencyPolicy["defaultConsistencyLevel"] in (
        "Strong",
        "BoundedStaleness",
        "Session",
        "ConsistentPrefix",
        "Eventual",
    )


def test_client_from_connection_string_can_list_databases(endpoint: str, key: str) -> None:
    with cosmos_support.make_client(endpoint, key) as fresh_client:
        assert isinstance(list(fresh_client.list_databases()), list)


def test_wrong_master_key_is_rejected_with_401(endpoint: str) -> None:
    wrong_key = base64.b64encode(os.urandom(64)).decode("ascii")

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        with cosmos_support.make_client(endpoint, wrong_key) as wrong_client:
            list(wrong_client.list_databases())

    assert raised.value.status_code == 401


def test_key_of_wrong_length_is_rejected_with_401(endpoint: str, key: str) -> None:
    # Same bytes as the right key minus the last one: a signature made with it never matches.
    truncated_key = base64.b64encode(base64.b64decode(key)[:-1]).decode("ascii")

    with pytest.raises(exceptions.CosmosHttpResponseError) as raised:
        with cosmos_support.make_client(endpoint, truncated_key) as wrong_client:
            list(wrong_client.list_databases())

    assert raised.value.status_code == 401
