# account.py
# The bank account's events and how they fold into its state: used by the projection
# (function_app.py) and by the command side (append.py), so both read a stream the same way.
#
# Events: {"id": "<streamId>-<version>", "streamId": ..., "version": n, "type": ..., "data": {...}}
#   AccountOpened  {"owner": "Ada"}
#   MoneyDeposited {"amount": 100}
#   MoneyWithdrawn {"amount": 30}
#   AccountClosed  {}


def initial_state(stream_id):
    return {"id": stream_id, "streamId": stream_id, "version": 0, "owner": None, "balance": 0, "status": "new"}


def apply_event(state, event):
    """The state after `event` (the next version of the stream); `state` is not modified."""
    state = dict(state, version=event["version"])
    data = event.get("data") or {}
    kind = event.get("type")
    if kind == "AccountOpened":
        state.update(owner=data.get("owner"), status="open")
    elif kind == "MoneyDeposited":
        state["balance"] += data["amount"]
    elif kind == "MoneyWithdrawn":
        state["balance"] -= data["amount"]
    elif kind == "AccountClosed":
        state["status"] = "closed"
    # Other types do not change an account (a newer writer's events): only the version moves.
    return state


def fold(stream_id, events):
    """The state of a stream from its events, in version order."""
    state = initial_state(stream_id)
    for event in sorted(events, key=lambda event: event["version"]):
        state = apply_event(state, event)
    return state
