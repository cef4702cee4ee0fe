"""The command side: appends events to a stream with optimistic concurrency.

A writer reads the stream, decides, and *creates* the event with the next version: its id is
"<streamId>-<version>" in the stream's partition, so if another writer appended that version
first the create fails with 409 Conflict and nothing is written. The writer then reads the stream
again and decides again (the withdrawal may no longer be covered).

    .venv/bin/python append.py open acct-1 Ada
    .venv/bin/python append.py deposit acct-1 100
    .venv/bin/python append.py withdraw acct-1 30
    .venv/bin/python append.py close acct-1
    .venv/bin/python append.py race acct-1      # two writers append on the same version
    .venv/bin/python append.py show acct-1      # the stream, and the projection of it

The account is read from CosmosDBConnection in local.settings.json (EventsDB/events).
"""

import json
import pathlib
import sys

from azure.cosmos import CosmosClient, exceptions

from account import fold

DATABASE = "EventsDB"
MAX_ATTEMPTS = 5


class ConcurrencyError(Exception):
    """Another writer appended this version first (the create returned 409 Conflict)."""


def read_stream(events, stream_id):
    """The stream's events, in version order."""
    return list(events.query_items(
        "SELECT * FROM c WHERE c.streamId = @stream ORDER BY c.version",
        parameters=[{"name": "@stream", "value": stream_id}],
        partition_key=stream_id,
    ))


def append(events, stream_id, expected_version, event_type, data):
    """Appends the event as version expected_version + 1; ConcurrencyError if that version exists."""
    version = expected_version + 1
    event = {"id": f"{stream_id}-{version}", "streamId": stream_id, "version": version, "type": event_type, "data": data}
    try:
        events.create_item(event)
    except exceptions.CosmosResourceExistsError as conflict:
        raise ConcurrencyError(f"{stream_id} version {version} was appended by another writer") from conflict
    return event


def execute(events, stream_id, decide):
    """Reads the stream, asks `decide(state)` for (event type, data), appends; again on a conflict."""
    for _ in range(MAX_ATTEMPTS):
        state = fold(stream_id, read_stream(events, stream_id))
        event_type, data = decide(state)
        try:
            return append(events, stream_id, state["version"], event_type, data)
        except ConcurrencyError as conflict:
            print(f"conflict: {conflict}; reading the stream again", file=sys.stderr)
    raise ConcurrencyError(f"{stream_id}: still conflicting after {MAX_ATTEMPTS} attempts")


# The commands: each checks the account's state and returns the event to append.

def open_account(owner):
    def decide(state):
        if state["status"] != "new":
            raise ValueError(f"{state['streamId']} is already {state['status']}")
        return "AccountOpened", {"owner": owner}
    return decide


def deposit(amount):
    def decide(state):
        if state["status"] != "open":
            raise ValueError(f"{state['streamId']} is {state['status']}, not open")
        return "MoneyDeposited", {"amount": amount}
    return decide


def withdraw(amount):
    def decide(state):
        if state["status"] != "open":
            raise ValueError(f"{state['streamId']} is {state['status']}, not open")
        if state["balance"] < amount:
            raise ValueError(f"{state['streamId']} has {state['balance']}, cannot withdraw {amount}")
        return "MoneyWithdrawn", {"amount": amount}
    return decide


def close_account():
    def decide(state):
        if state["status"] != "open":
            raise ValueError(f"{state['streamId']} is {state['status']}, not open")
        return "AccountClosed", {}
    return decide


def events_database():
    settings = json.loads((pathlib.Path(__file__).parent / "local.settings.json").read_text())["Values"]
    client = CosmosClient.from_connection_string(settings["CosmosDBConnection"], connection_verify=False)
    return client.get_database_client(DATABASE)


def amount(text):
    number = float(text)
    return int(number) if number.is_integer() else number


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    command, stream_id, *rest = argv
    database = events_database()
    events = database.get_container_client("events")
    if command == "show":
        for event in read_stream(events, stream_id):
            print(json.dumps({key: event[key] for key in ("id", "version", "type", "data")}))
        projections = database.get_container_client("projections")
        try:
            projection = projections.read_item(stream_id, partition_key=stream_id)
            print("projection:", json.dumps({key: value for key, value in projection.items() if not key.startswith("_")}))
        except exceptions.CosmosResourceNotFoundError:
            print("projection: none yet")
        return
    if command == "race":
        # Two writers read version n and both append n + 1: A wins, B gets 409, reads the
        # stream again and appends n + 2.
        version = fold(stream_id, read_stream(events, stream_id))["version"]
        append(events, stream_id, version, "MoneyDeposited", {"amount": 1})
        print(f"writer A appended version {version + 1}")
        try:
            append(events, stream_id, version, "MoneyDeposited", {"amount": 2})
        except ConcurrencyError as conflict:
            print(f"writer B: 409 Conflict: {conflict}")
            event = execute(events, stream_id, deposit(2))
            print(f"writer B appended version {event['version']} after reading the stream again")
        return
    commands = {
        "open": lambda: open_account(rest[0]),
        "deposit": lambda: deposit(amount(rest[0])),
        "withdraw": lambda: withdraw(amount(rest[0])),
        "close": close_account,
    }
    if command not in commands:
        sys.exit(__doc__)
    try:
        event = execute(events, stream_id, commands[command]())
    except ValueError as refused:
        sys.exit(f"refused: {refused}")
    print(json.dumps(event))


if __name__ == "__main__":
    main(sys.argv[1:])
