"""pytest plugin that adapts the azure-cosmos SDK's own test suite to a tributary server.

Loaded by ``run.sh`` with ``-p tributary_suite_plugin``. It

* registers the suite's custom markers so pytest does not warn about each of them;
* tells ``test_config.TestConfig`` that the endpoint behaves like the Cosmos DB emulator
  (``TRIBUTARY_SUITE_AS_EMULATOR``, default ``1``): the suite otherwise assumes an emulator
  only at ``https://localhost:8081/`` and, for example, leaves ``changeFeedPolicy`` off the
  all-versions-and-deletes container;
* deselects the tests listed in the skip file (``TRIBUTARY_SUITE_SKIP_FILE``), one pytest
  node id per line followed by ``# reason``. An entry matches the node id itself, its
  parametrized variants (``id[...]``) and, for a class or file, everything inside it. An
  entry without a reason, or one that matches nothing in a file that was collected, stops
  the run: the list must stay exact as the server grows.
"""

import os
from dataclasses import dataclass
from typing import List

import pytest

SUITE_MARKERS = (
    "cosmosEmulator: runs against the Cosmos DB emulator",
    "cosmosLong: long-running live tests",
    "cosmosQuery: query tests",
    "cosmosSplit: tests that trigger partition splits",
    "cosmosMultiRegion: needs a multi-region account",
    "cosmosCircuitBreaker: per-partition circuit breaker",
    "cosmosCircuitBreakerMultiRegion: circuit breaker on a multi-region account",
    "cosmosPerPartitionAutomaticFailover: per-partition automatic failover",
    "cosmosSearchQuery: full-text and vector search",
    "cosmosGSI: global secondary index",
    "cosmosAADLong: AAD variant of cosmosLong",
    "cosmosAADQuery: AAD variant of cosmosQuery",
    "cosmosAADSplit: AAD variant of cosmosSplit",
    "cosmosAADMultiRegion: AAD variant of cosmosMultiRegion",
    "cosmosAADCircuitBreaker: AAD variant of cosmosCircuitBreaker",
    "cosmosAADCircuitBreakerMultiRegion: AAD variant of cosmosCircuitBreakerMultiRegion",
    "cosmosAADPerPartitionAutomaticFailover: AAD variant of cosmosPerPartitionAutomaticFailover",
    "semanticReranker: semantic reranker inference service",
    "unittest: unit tests inside the live suite",
)

#: How many tests the skip file deselected, for the closing summary line.
DESELECTED_KEY = pytest.StashKey[int]()


@dataclass
class SkipEntry:
    """One line of the skip file."""

    node_id: str
    reason: str
    line_number: int
    used: bool = False

    def matches(self, node_id: str) -> bool:
        """Whether this entry names ``node_id``, a parametrization of it, or a scope around it."""
        return node_id == self.node_id or node_id.startswith((self.node_id + "[", self.node_id + "::"))

    @property
    def file(self) -> str:
        """The test file the entry points into."""
        return self.node_id.split("::", 1)[0]


def read_skip_file(path: str) -> List[SkipEntry]:
    """Parse the skip file; every entry must carry a ``# reason``."""
    entries = []
    with open(path, encoding="utf-8") as skip_file:
        for line_number, raw in enumerate(skip_file, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            node_id, _, reason = line.partition("#")
            node_id, reason = node_id.strip(), reason.strip()
            if not reason:
                raise pytest.UsageError(f"{path}:{line_number}: '{node_id}' needs a '# reason'")
            entries.append(SkipEntry(node_id=node_id, reason=reason, line_number=line_number))
    return entries


def pytest_configure(config: pytest.Config) -> None:
    for marker in SUITE_MARKERS:
        config.addinivalue_line("markers", marker)
    if os.environ.get("TRIBUTARY_SUITE_AS_EMULATOR", "1") == "1":
        import test_config  # the suite's own module; its directory is on sys.path by now

        test_config.TestConfig.is_emulator = True


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: List[pytest.Item]) -> None:
    skip_file = os.environ.get("TRIBUTARY_SUITE_SKIP_FILE")
    if not skip_file:
        return
    entries = read_skip_file(skip_file)
    kept, deselected = [], []
    for item in items:
        entry = next((e for e in entries if e.matches(item.nodeid)), None)
        if entry is None:
            kept.append(item)
        else:
            entry.used = True
            deselected.append(item)
    collected_files = {item.nodeid.split("::", 1)[0] for item in items}
    stale = [e for e in entries if not e.used and e.file in collected_files]
    if stale:
        listing = "\n".join(f"  {skip_file}:{e.line_number}: {e.node_id}" for e in stale)
        raise pytest.UsageError(f"skip-file entries that match no collected test (remove or fix them):\n{listing}")
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    config.stash[DESELECTED_KEY] = len(deselected)


def pytest_report_header(config: pytest.Config) -> List[str]:
    return [
        f"tributary suite: endpoint {os.environ.get('ACCOUNT_HOST', '?')}, "
        f"skip file {os.environ.get('TRIBUTARY_SUITE_SKIP_FILE', '(none)')}"
    ]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    stats = terminalreporter.stats
    counts = {outcome: len(stats.get(outcome, [])) for outcome in ("passed", "failed", "error", "skipped")}
    terminalreporter.write_line(
        "azure-cosmos suite against tributary: "
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped, {config.stash.get(DESELECTED_KEY, 0)} deselected by the skip file"
    )
