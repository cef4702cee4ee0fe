#!/usr/bin/env python3
"""Tributary (`tributary serve --http`) in the shared change-feed peer benchmark.

Adapter for the system-independent harness `workload.py` of the shared peers
directory (PostgreSQL, Redis, NATS adapters live there; this one lives in the
Tributary repository and imports the harness from `--peers-dir`, default
`../shared/peers` relative to the repository root). Standard library only.

Server:   `target/release/tributary serve --http --addr 127.0.0.1 --port <free>
          --data-dir <fresh dir under /tmp> --durability fsync`, started per
          scenario group, stopped by its PID (SIGTERM, graceful), data dir removed.
          A random master key per server, passed in TRIBUTARY_KEY.
Store:    database `bench`, container `docs`, partition key `/customerId`
          (Hash V2), default throughput = one feed range (pkrange id 0).
Writer:   plain HTTP/1.1 over one keep-alive `http.client` connection, master-key
          auth (HMAC-SHA256) computed here. single = `POST .../docs` of one item
          (`Prefer: return=minimal`); batch = one `POST .../docs` with
          `x-ms-cosmos-is-batch-request: true`, `x-ms-cosmos-batch-atomic: false`
          (bulk: the 100 docs have up to 100 different customerIds, so no
          transactional batch; every operation carries its `partitionKey`, as the
          SDKs send it; `Prefer: return=minimal`, so the results carry no bodies).
          The server hands the whole request to the group committer as one group,
          in request order: one commit, one fsync, the feed in the order sent; each
          operation still succeeds or fails on its own (NOT atomic). HTTP 200 =
          every operation succeeded; anything else fails the run.
Feed:     `GET .../docs` with `A-IM: Incremental Feed`,
          `x-ms-documentdb-partitionkeyrangeid: 0`, `x-ms-max-item-count: 1000`,
          `If-None-Match: "<lsn>"` (absent = from the beginning) and Tributary's
          long-poll extension `x-tributary-wait-ms: 1000`: with nothing new the
          server waits up to 1 s for a commit (woken by it) instead of answering
          304 at once.
Position: the response `etag` (the LSN of the page's last change), only at page
          boundaries (the exact resume points); saved to a file (write, fsync,
          rename) every >= CKPT_EVERY changes; a restarted consumer sends it as
          `If-None-Match`.
Durability: `--durability fsync` (default): the group committer commits each
          group of concurrent requests as one fjall write batch persisted with
          SyncData (fdatasync) before any request of the group is acknowledged,
          i.e. one fsync per commit group.
"""
from __future__ import annotations

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _peers_dir_from_argv() -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--peers-dir", default=os.environ.get(
        "CDC_PEERS_DIR", os.path.join(REPO, "..", "shared", "peers")))
    ns, _ = pre.parse_known_args()
    return os.path.abspath(ns.peers_dir)


PEERS_DIR = _peers_dir_from_argv()
sys.path.insert(0, PEERS_DIR)
import workload as W  # noqa: E402

DATABASE, CONTAINER = "bench", "docs"
COLL_PATH = f"/dbs/{DATABASE}/colls/{CONTAINER}/docs"
COLL_LINK = f"dbs/{DATABASE}/colls/{CONTAINER}"
API_VERSION = "2020-07-15"
PAGE_ITEMS = 1000


class TributaryError(RuntimeError):
    """The server answered a request with an unexpected status."""


# --------------------------------------------------------------------------
# HTTP + master-key auth (cosmos-wire.md section 2.1)
# --------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection that signs every request with the master key."""

    def __init__(self, port: int, key_b64: str, timeout_s: float = 60.0):
        self.port = port
        self.key = base64.b64decode(key_b64)
        self.timeout_s = timeout_s
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        self._date_s = -1
        self._date = ""

    def _x_ms_date(self) -> str:
        now = int(time.time())
        if now != self._date_s:
            self._date_s, self._date = now, email.utils.formatdate(now, usegmt=True)
        return self._date

    def _auth(self, verb: str, resource_type: str, link: str, date: str) -> str:
        text = f"{verb.lower()}\n{resource_type.lower()}\n{link}\n{date.lower()}\n\n"
        sig = base64.b64encode(hmac.new(self.key, text.encode(), hashlib.sha256).digest()).decode()
        return urllib.parse.quote(f"type=master&ver=1.0&sig={sig}", safe="-_.!~*'()")

    def request(self, verb: str, path: str, resource_type: str, link: str,
                body: bytes | None = None, headers: dict | None = None):
        """Returns (status, {lowercase header: value}, body bytes)."""
        date = self._x_ms_date()
        h = {"x-ms-date": date, "x-ms-version": API_VERSION,
             "authorization": self._auth(verb, resource_type, link, date),
             "Accept": "application/json"}
        if body is not None:
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        # reads may be retried once on a fresh connection; a write is never re-sent
        # (it may have committed), its connection error fails the run
        retries = 1 if verb == "GET" else 0
        while True:
            try:
                self.conn.request(verb, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
                if retries == 0:
                    raise
                retries -= 1

    def close(self) -> None:
        self.conn.close()


def _expect(status: int, data: bytes, ok: tuple, what: str) -> None:
    if status not in ok:
        raise TributaryError(f"{what}: HTTP {status}: {data[:500]!r}")


# --------------------------------------------------------------------------
# system
# --------------------------------------------------------------------------


class TributarySystem(W.System):
    restart_delay_s = 0.0

    def __init__(self, binary: str, wait_ms: int, durability: str, log_dir: str | None):
        self.binary = binary
        self.wait_ms = wait_ms
        self.durability = durability
        self.log_dir = log_dir
        self.name = f"tributary-{durability}"
        self.port = None
        self.dir = None
        self.key = None
        self._proc = None
        self._info = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_proc"] = None
        return d

    @property
    def positions(self) -> str:
        return os.path.join(self.dir, "positions")

    def client(self) -> Client:
        return Client(self.port, self.key)

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="cdcbench-tributary-", dir="/tmp")
        os.mkdir(self.positions)
        self.port = W.free_port()
        self.key = base64.b64encode(os.urandom(64)).decode()
        env = dict(os.environ, TRIBUTARY_KEY=self.key)
        env.setdefault("RUST_LOG", "info,fjall=warn,lsm_tree=warn")
        log = open(os.path.join(self.dir, "server.log"), "wb")
        args = [self.binary, "serve", "--http", "--addr", "127.0.0.1", "--port", str(self.port),
                "--data-dir", os.path.join(self.dir, "data"), "--durability", self.durability]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=env)
        log.close()
        W.wait_port(self.port, 30, self._proc)
        c = self.client()
        try:
            status, _, data = c.request("GET", "/", "", "")
            _expect(status, data, (200,), "GET / (account)")
            self._info["account"] = json.loads(data).get("id")
        finally:
            c.close()

    def stop(self):
        if self._proc is not None:
            W.stop_pid(self._proc, signal.SIGTERM)
            self._info.setdefault("exit_codes", []).append(self._proc.returncode)
            self._proc = None
        if self.dir and self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            src = os.path.join(self.dir, "server.log")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(self.log_dir, f"{os.path.basename(self.dir)}.log"))
        if self.dir and not os.environ.get("CDC_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def prepare(self, consumers):
        # Fresh server, empty data dir: the database and container are new, and a
        # consumer without a position file reads from the beginning.
        c = self.client()
        try:
            status, _, data = c.request("POST", "/dbs", "dbs", "",
                                        json.dumps({"id": DATABASE}).encode())
            _expect(status, data, (201,), "create database")
            definition = {"id": CONTAINER,
                          "partitionKey": {"paths": ["/customerId"], "kind": "Hash", "version": 2}}
            status, _, data = c.request("POST", f"/dbs/{DATABASE}/colls", "colls", f"dbs/{DATABASE}",
                                        json.dumps(definition).encode())
            _expect(status, data, (201,), "create container")
            status, _, data = c.request("GET", f"/dbs/{DATABASE}/colls/{CONTAINER}/pkranges",
                                        "pkranges", COLL_LINK)
            _expect(status, data, (200,), "read pkranges")
            ranges = [r["id"] for r in json.loads(data)["PartitionKeyRanges"]]
            if ranges != ["0"]:
                raise TributaryError(f"expected one feed range '0', got {ranges}")
        finally:
            c.close()
        for name in consumers:
            path = os.path.join(self.positions, name)
            if os.path.exists(path):
                os.unlink(path)

    def describe(self):
        version = subprocess.run([self.binary, "--version"], capture_output=True,
                                 text=True).stdout.strip()
        git = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %cI %s"],
                             capture_output=True, text=True).stdout.strip()
        with open(self.binary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(self.binary).st_mtime))
        return {"system": self.name,
                "settings": {"version": version, "binary": self.binary, "binary_sha256_16": digest,
                             "binary_mtime": built, "repo_head_at_run": git,
                             "transport": "HTTP/1.1 (--http), keep-alive, master-key auth",
                             "feed_range_ids": ["0"], "page_items": PAGE_ITEMS,
                             "long_poll_wait_ms": self.wait_ms,
                             "single_write": "POST docs, Prefer: return=minimal",
                             "batch_write": "bulk POST docs, x-ms-cosmos-batch-atomic: false (not atomic), "
                                            "partitionKey per operation",
                             "position": "page etag (LSN) in a file: write + fsync + rename"},
                "durability": ({"fsync": "group commit: each group of concurrent requests is one "
                                         "fjall write batch persisted with SyncData (fdatasync) before "
                                         "any of its requests is acknowledged (fsync per commit group)",
                                "relaxed": "write batch handed to the OS before the ack, no fsync "
                                           "(survives a process crash, not a power loss)"}
                               [self.durability])}

    def open_writer(self):
        return TributaryWriter(self.client())

    def open_consumer(self, name, resume):
        return TributaryConsumer(self.client(), os.path.join(self.positions, name), resume,
                                 self.wait_ms)


def _partition_key(doc_json: str) -> str:
    """The `x-ms-documentdb-partitionkey` value (a JSON array) of a workload doc."""
    start = doc_json.index('"customerId":"') + len('"customerId":"')
    return '["' + doc_json[start:doc_json.index('"', start)] + '"]'


class TributaryWriter(W.Writer):
    def __init__(self, client: Client):
        self.c = client

    def write_one(self, doc_id, doc_json):
        status, _, data = self.c.request(
            "POST", COLL_PATH, "docs", COLL_LINK, doc_json.encode(),
            {"x-ms-documentdb-partitionkey": _partition_key(doc_json), "Prefer": "return=minimal"})
        _expect(status, data, (201,), f"create {doc_id}")

    def write_batch(self, docs):
        # every operation names its partition key, as the SDKs' bulk does (the Node SDK
        # sends it as a JSON string holding the array)
        parts = []
        for _, dj in docs:
            parts.append('{"operationType":"Create","partitionKey":' + json.dumps(_partition_key(dj))
                         + ',"resourceBody":' + dj + "}")
        body = ("[" + ",".join(parts) + "]").encode()
        status, _, data = self.c.request(
            "POST", COLL_PATH, "docs", COLL_LINK, body,
            {"x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "false",
             "x-ms-cosmos-batch-continue-on-error": "true", "Prefer": "return=minimal"})
        # 200 = every operation succeeded (207 if any failed): no need to decode the body
        _expect(status, data, (200,), f"bulk of {len(docs)} starting at {docs[0][0]}")
        return None

    def close(self):
        self.c.close()


class TributaryConsumer(W.Consumer):
    def __init__(self, client: Client, position_file: str, resume: bool, wait_ms: int):
        self.c = client
        self.position_file = position_file
        self.etag = None           # None: from the beginning
        if resume and os.path.exists(position_file):
            with open(position_file) as f:
                self.etag = f.read().strip() or None
        self.headers = {"A-IM": "Incremental Feed", "x-ms-documentdb-partitionkeyrangeid": "0",
                        "x-ms-max-item-count": str(PAGE_ITEMS), "x-tributary-wait-ms": str(wait_ms)}

    def poll(self, timeout_s):
        # timeout_s is the harness' idle poll (0.2 s); the server-side wait is wait_ms
        h = dict(self.headers)
        if self.etag is not None:
            h["If-None-Match"] = self.etag
        status, headers, data = self.c.request("GET", COLL_PATH, "docs", COLL_LINK, None, h)
        if status == 304:
            self.etag = headers.get("etag", self.etag)
            return []
        _expect(status, data, (200,), "change feed")
        docs = json.loads(data)["Documents"]
        self.etag = headers["etag"]
        out = [(d, None) for d in docs]
        if out:
            # only the page end is an exact resume point
            out[-1] = (out[-1][0], self.etag)
        return out

    def checkpoint(self, etag):
        tmp = self.position_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, etag.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.position_file)

    def close(self):
        self.c.close()


def main():
    def extra(ap):
        ap.add_argument("--peers-dir", default=PEERS_DIR,
                        help="shared peers harness directory (workload.py, summarize.py)")
        ap.add_argument("--binary", default=os.environ.get(
            "TRIBUTARY_BIN", os.path.join(REPO, "target", "release", "tributary")),
            help="tributary executable (env TRIBUTARY_BIN; default target/release/tributary)")
        ap.add_argument("--wait-ms", type=int, default=int(os.environ.get("CDC_TRIBUTARY_WAIT_MS", "1000")),
                        help="x-tributary-wait-ms long-poll of the consumer (env CDC_TRIBUTARY_WAIT_MS)")
        ap.add_argument("--durability", default=os.environ.get("CDC_TRIBUTARY_DURABILITY", "fsync"),
                        choices=["fsync", "relaxed"], help="server --durability (default fsync)")
        ap.add_argument("--server-log-dir", default=os.environ.get("CDC_TRIBUTARY_LOG_DIR"),
                        help="copy each server's log here before its data dir is removed")
    p, ns = W.parse_params(extra_args=extra)
    if not os.access(ns.binary, os.X_OK):
        sys.exit(f"{ns.binary} is not an executable; build it with "
                 f"`cargo build --release -p tributary-cli` or pass --binary")
    label = f"tributary-{ns.durability}"
    if not p.out:
        p.out = os.path.join("/tmp", "peers-results", f"{label}-{time.strftime('%Y%m%dT%H%M%S')}.json")
    W.run_benchmark(lambda: TributarySystem(ns.binary, ns.wait_ms, ns.durability, ns.server_log_dir),
                    p, label)


if __name__ == "__main__":
    main()
