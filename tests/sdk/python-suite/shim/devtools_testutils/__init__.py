"""Stand-in for the azure-sdk-for-python repository's ``devtools_testutils`` test helpers.

The azure-cosmos sdist's ``tests/test_config.py`` imports two names from that package,
which is not published on PyPI. The suite runs here with master-key auth only, so the
stand-ins need to do very little: see the two submodules.
"""
