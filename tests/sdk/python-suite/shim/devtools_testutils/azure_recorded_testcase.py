"""``get_credential`` for ``test_config.py``: the master key under test instead of an AAD credential.

``TestConfig`` asks for a credential whenever the host is not ``https://localhost:8081/``;
it only uses it when ``COSMOS_TEST_DATA_AUTH_MODE=aad``, which this runner never sets.
"""

import os

EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


def get_credential(**_kwargs):
    """Return the master key from ``ACCOUNT_KEY`` (the emulator key when unset)."""
    return os.environ.get("ACCOUNT_KEY") or EMULATOR_KEY
