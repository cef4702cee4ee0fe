"""``is_live`` for ``test_config.py``, which sets ``is_live._cache`` at import time."""


def is_live():
    """Whether tests run against a live service (always: the runner never plays back recordings)."""
    return getattr(is_live, "_cache", True)
