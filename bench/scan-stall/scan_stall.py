#!/usr/bin/env python3
"""Point reads while full-container queries run: does a long scan stall other requests?

Usage: scan_stall.py PORT KEY_BASE64 (run.sh starts the server and passes both).
Loads 100,000 items of 1 KB (bulk requests of 100), then measures point reads on one
connection for 4 s alone and for 6 s while another connection runs `SELECT * FROM c WHERE
c.n < 0` (a full scan that returns nothing) over and over. Standard library only; the HTTP
client and master-key signing are bench/peers/run_tributary.py's.
"""
import base64
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import run_tributary as T  # noqa: E402

port = int(sys.argv[1])
key = sys.argv[2]
c = T.Client(port, key)
c.request("POST", "/dbs", "dbs", "", json.dumps({"id": "bench"}).encode())
c.request("POST", "/dbs/bench/colls", "colls", "dbs/bench", json.dumps({"id": "docs", "partitionKey": {"paths": ["/customerId"], "kind": "Hash", "version": 2}}).encode())
pad = "x" * 900
for r in range(1000):
    parts = []
    for i in range(100):
        dj = json.dumps({"id": f"d{r}-{i}", "customerId": f"c{i}", "n": r, "pad": pad})
        parts.append('{"operationType":"Create","partitionKey":' + json.dumps(json.dumps([f"c{i}"])) + ',"resourceBody":' + dj + "}")
    s, _, d = c.request("POST", "/dbs/bench/colls/docs/docs", "docs", "dbs/bench/colls/docs", ("[" + ",".join(parts) + "]").encode(),
        {"x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "false", "Prefer": "return=minimal"})
    assert s == 200
def reads(seconds, out):
    rc = T.Client(port, key)
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        a = time.perf_counter()
        s, _, d = rc.request("GET", f"/dbs/bench/colls/docs/docs/d{i % 1000}-{i % 100}", "docs", f"dbs/bench/colls/docs/docs/d{i % 1000}-{i % 100}", None,
                             {"x-ms-documentdb-partitionkey": json.dumps([f"c{i % 100}"])})
        out.append(time.perf_counter() - a)
        assert s == 200, s
        i += 1
def scans(stop, count):
    qc = T.Client(port, key)
    while not stop.is_set():
        s, _, d = qc.request("POST", "/dbs/bench/colls/docs/docs", "docs", "dbs/bench/colls/docs",
                             json.dumps({"query": "SELECT * FROM c WHERE c.n < 0"}).encode(),
                             {"x-ms-documentdb-isquery": "true", "Content-Type": "application/query+json", "x-ms-documentdb-query-enablecrosspartition": "true"})
        assert s == 200, (s, d[:200])
        count.append(1)
def pct(lat):
    lat = sorted(lat); return f"n {len(lat)} p50 {lat[len(lat)//2]*1e3:.2f} ms p99 {lat[int(len(lat)*.99)]*1e3:.2f} ms max {lat[-1]*1e3:.1f} ms"
alone = []; reads(4, alone)
stop = threading.Event(); count = []
t = threading.Thread(target=scans, args=(stop, count)); t.start()
time.sleep(0.5)
busy = []; reads(6, busy)
stop.set(); t.join()
print("point reads alone:        ", pct(alone))
print("point reads during scans: ", pct(busy), f"({len(count)} full scans of 100k items)")
